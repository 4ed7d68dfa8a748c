//! A monolith restarted on the same data directory finds what was confirmed.

mod support;

use demo_shop::config::StorageConfig;
use demo_shop::{Deployment, Shop};
use serde_json::json;
use support::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_orders_users_and_stock_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment {
        storage: StorageConfig {
            data_dir: dir.path().join("data"),
            in_memory: false,
        },
        ..Deployment::in_memory()
    };

    let shop = Shop::start(deployment.clone()).await.expect("first start");
    let client = Client::new(&shop);
    let user = client.register("restart@example.com").await;
    let items = json!([{"product_id": "mug", "quantity": 3}]);
    let placed = client
        .post_with_key(
            "orders",
            json!({"user_id": user, "items": items}),
            "restart-1",
        )
        .await;
    assert_eq!(placed.status, 201, "{placed:?}");
    let kettle = json!([{"product_id": "kettle", "quantity": 1}]);
    let declined = json!({"user_id": user, "items": kettle, "card": "4000000000000002"});
    let declined = client.post("orders", declined).await;
    assert_eq!(declined.status, 422, "{declined:?}");
    let stock = client.stock().await;
    let order_id = placed.body["id"].as_u64().expect("order id");
    shop.shutdown().await;

    let shop = Shop::start(deployment).await.expect("second start");
    let client = Client::new(&shop);
    let order = client.get(&format!("orders/{order_id}")).await;
    assert_eq!(order.status, 200, "{order:?}");
    assert_eq!(order.body, placed.body, "the confirmed order is unchanged");
    let failed = client
        .get(&format!("orders/{}", declined.body["order"]["id"]))
        .await;
    assert_eq!(failed.body["status"], "FAILED", "{failed:?}");
    assert_eq!(client.stock().await, stock, "stock is as it was");
    let again = client.get(&format!("users/{user}")).await;
    assert_eq!(again.body["email"], "restart@example.com", "{again:?}");
    let dup = client
        .post(
            "users",
            json!({"email": "restart@example.com", "name": "Again"}),
        )
        .await;
    assert_eq!(dup.status, 409, "the address is still taken: {dup:?}");

    // The idempotency key still answers with the first order, and charges nothing new.
    let replay = client
        .post_with_key(
            "orders",
            json!({"user_id": user, "items": items}),
            "restart-1",
        )
        .await;
    assert_eq!(replay.status, 201, "{replay:?}");
    assert_eq!(replay.body, placed.body);
    assert_eq!(client.stock().await, stock, "a replay takes no stock");

    let next = client
        .post(
            "orders",
            json!({"user_id": user, "items": [{"product_id": "mug", "quantity": 1}]}),
        )
        .await;
    assert_eq!(next.status, 201, "{next:?}");
    assert!(
        next.body["id"].as_u64() > Some(order_id),
        "ids keep growing: {next:?}"
    );
    shop.shutdown().await;
}
