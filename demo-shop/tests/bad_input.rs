//! Bad input gets the fitting status and a JSON error, and changes nothing.

mod support;

use demo_shop::{Deployment, Shop};
use serde_json::{Value, json};
use support::{Answer, Client};

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.body["code"], code, "{answer:?}");
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "an error message: {answer:?}"
    );
}

/// What bad input must not change: stock, event counts, orders.
async fn state(client: &Client) -> (Vec<(String, u64)>, Value, u16) {
    let analytics = client.get("analytics").await.body;
    let first_order = client.get("orders/1").await.status;
    (client.stock().await, analytics, first_order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_get_the_fitting_status_and_change_nothing() {
    let shop = Shop::start(Deployment::in_memory()).await.expect("start");
    let client = Client::new(&shop);
    let user = client.register("careful@example.com").await;
    let before = state(&client).await;
    assert_eq!(before.2, 404, "no order yet");

    let malformed = client
        .post_raw(
            "orders",
            b"{\"user_id\": 1, \"items\": [".to_vec(),
            Some("application/json"),
        )
        .await;
    assert_error(&malformed, 400, "invalid_json");

    let wrong_type = client
        .post(
            "orders",
            json!({"user_id": user, "items": [{"product_id": "mug", "quantity": "two"}]}),
        )
        .await;
    assert_error(&wrong_type, 400, "invalid_json");

    let unknown_field = client
        .post(
            "orders",
            json!({"user_id": user, "items": [], "coupon": "FREE"}),
        )
        .await;
    assert_error(&unknown_field, 400, "invalid_json");

    let no_content_type = client.post_raw("orders", b"{}".to_vec(), None).await;
    assert_error(&no_content_type, 415, "unsupported_media_type");

    let unknown_product = client
        .post(
            "orders",
            json!({"user_id": user, "items": [{"product_id": "unicorn", "quantity": 1}]}),
        )
        .await;
    assert_error(&unknown_product, 404, "unknown_product");

    let unknown_user = client
        .post(
            "orders",
            json!({"user_id": 999_999, "items": [{"product_id": "mug", "quantity": 1}]}),
        )
        .await;
    assert_error(&unknown_user, 404, "unknown_user");

    for quantity in [-1, 0] {
        let answer = client
            .post(
                "orders",
                json!({"user_id": user, "items": [{"product_id": "mug", "quantity": quantity}]}),
            )
            .await;
        assert_error(&answer, 400, "invalid_input");
    }

    let no_items = client
        .post("orders", json!({"user_id": user, "items": []}))
        .await;
    assert_error(&no_items, 400, "invalid_input");

    let mug = json!([{"product_id": "mug", "quantity": 1}]);
    let bad_card = json!({"user_id": user, "items": mug, "card": "12ab"});
    let bad_card = client.post("orders", bad_card).await;
    assert_error(&bad_card, 400, "invalid_input");

    let huge = vec![b' '; 1024 * 1024];
    let too_large = client
        .post_raw("orders", huge, Some("application/json"))
        .await;
    assert_error(&too_large, 413, "body_too_large");
    assert_eq!(
        too_large
            .headers
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close"),
        "the body was not read, so the connection is not reused"
    );

    assert_eq!(state(&client).await, before, "bad input changed nothing");
    shop.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_users_and_paths_get_the_fitting_status() {
    let shop = Shop::start(Deployment::in_memory()).await.expect("start");
    let client = Client::new(&shop);
    client.register("first@example.com").await;
    let before = client.get("analytics").await.body;

    let invalid = client
        .post("users", json!({"email": "nobody", "name": "X"}))
        .await;
    assert_error(&invalid, 400, "invalid_email");
    let no_name = client
        .post("users", json!({"email": "x@example.com", "name": " "}))
        .await;
    assert_error(&no_name, 400, "invalid_name");
    let taken = client
        .post(
            "users",
            json!({"email": "FIRST@example.com", "name": "Again"}),
        )
        .await;
    assert_error(&taken, 409, "email_taken");
    let missing = client
        .post("users", json!({"email": "y@example.com"}))
        .await;
    assert_error(&missing, 400, "invalid_json");

    assert_error(&client.get("users/999").await, 404, "unknown_user");
    assert_error(&client.get("users/abc").await, 400, "invalid_input");
    assert_error(&client.get("orders/-3").await, 400, "invalid_input");
    assert_error(&client.get("orders/42").await, 404, "unknown_order");
    assert_error(
        &client.get("notifications?limit=many").await,
        400,
        "invalid_input",
    );
    assert_error(&client.get("nowhere").await, 404, "not_found");
    assert_error(&client.delete("products").await, 405, "method_not_allowed");

    assert_eq!(
        client.get("analytics").await.body,
        before,
        "nothing was counted"
    );
    shop.shutdown().await;
}
