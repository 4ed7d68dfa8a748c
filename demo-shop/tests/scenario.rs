//! The end-to-end scenario against the monolith, running in this process on 127.0.0.1.

mod support;

use demo_shop::{Deployment, Shop, scenario};
use support::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_passes_against_the_monolith() {
    let shop = Shop::start(Deployment::in_memory()).await.expect("start");
    let url = shop.base_url().expect("gateway");
    let first = scenario::run(&url).await;
    // Again on the same data: the scenario only compares before and after, so it can run
    // against a shop that is not new (a cluster started once for several runs).
    let second = scenario::run(&url).await;

    let (status, metrics) = Client::new(&shop).get_text("metrics").await;
    shop.shutdown().await;
    let first = first.expect("first run");
    second.expect("second run");
    assert!(first.checks.len() >= 20, "{:#?}", first.checks);

    assert_eq!(status, 200);
    for expected in [
        r#"shop_asks_total{service="payments",message="Charge",outcome="ok"}"#,
        r#"actor_calls_total{service="payments",node="monolith",outcome="ok"}"#,
        r#"actor_breaker_state{service="payments",node="monolith"} 0"#,
        r#"shop_service_restarts_total{service="orders"} 0"#,
        r#"shop_events_published_total{topic="order.created"}"#,
        r#"http_requests_total{method="POST",route="/orders",status="201"}"#,
        "http_request_seconds_bucket",
    ] {
        assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
    }
}
