//! The order saga when a service it needs is gone: orders fail with a clear reason, and what
//! was done for them is undone.

mod support;

use demo_shop::services::ServiceKind;
use demo_shop::{Deployment, Shop};
use serde_json::json;
use support::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_fail_cleanly_and_release_stock_while_payments_is_down() {
    let shop = Shop::start(Deployment::in_memory()).await.expect("start");
    let client = Client::new(&shop);
    let user = client.register("patient@example.com").await;
    let stock = client.stock().await;

    shop.supervisor(ServiceKind::Payments)
        .expect("payments runs here")
        .stop()
        .await;
    let health = client.get("health").await;
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.body["status"], "degraded");

    let order = json!({"user_id": user, "items": [{"product_id": "kettle", "quantity": 2}]});
    let failed = client.post("orders", order).await;
    assert_eq!(failed.status, 503, "{failed:?}");
    assert_eq!(failed.body["code"], "service_unavailable");
    assert_eq!(failed.body["order"]["status"], "FAILED");
    assert_eq!(failed.body["order"]["failure"], "service_unavailable");
    let reason = failed.body["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("payment"),
        "the reason names the payment: {reason}"
    );
    assert_eq!(
        client.stock().await,
        stock,
        "the reserved kettles were released"
    );

    let id = &failed.body["order"]["id"];
    let stored = client.get(&format!("orders/{id}")).await;
    assert_eq!(stored.body["status"], "FAILED", "{stored:?}");
    assert_eq!(stored.body["reason"], reason);
    shop.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_place_one_order() {
    let shop = Shop::start(Deployment::in_memory()).await.expect("start");
    let client = Client::new(&shop);
    let user = client.register("eager@example.com").await;
    let stock = client.stock().await;
    let order = json!({"user_id": user, "items": [{"product_id": "mug", "quantity": 1}]});
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let (client, order) = (client.clone(), order.clone());
            tokio::spawn(async move { client.post_with_key("orders", order, "double-click").await })
        })
        .collect();
    let mut ids = Vec::new();
    for answer in tries {
        let answer = answer.await.expect("request task");
        assert_eq!(answer.status, 201, "{answer:?}");
        ids.push(answer.body["id"].as_u64());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for all eight requests: {ids:?}");
    let mug = |stock: &[(String, u64)]| stock.iter().find(|(id, _)| id == "mug").map(|s| s.1);
    let after = client.stock().await;
    assert_eq!(mug(&after), mug(&stock).map(|n| n - 1), "one mug taken");
    let analytics = client.get("analytics").await;
    assert_eq!(
        analytics.body["revenue_cents"], 1_200,
        "charged once: {analytics:?}"
    );
    shop.shutdown().await;
}
