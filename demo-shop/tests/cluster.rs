//! The same scenario against three nodes in this process, placed as in deploy/cluster/.

mod support;

use std::time::{Duration, Instant};

use actor_remote::config::{AuthConfig, NodeConfig};
use demo_shop::config::{GatewayConfig, StorageConfig};
use demo_shop::services::ServiceKind;
use demo_shop::{Deployment, Shop, scenario};
use support::Client;

fn node(name: &str, services: &[ServiceKind], gateway: bool, seeds: Vec<String>) -> Deployment {
    let mut config = NodeConfig::new(name, AuthConfig::Secret("test cluster secret".into()));
    config.cluster = "demo-shop-test".into();
    config.seeds = seeds;
    Deployment {
        services: services.to_vec(),
        gateway: gateway.then(|| GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..GatewayConfig::default()
        }),
        storage: StorageConfig {
            in_memory: true,
            ..StorageConfig::default()
        },
        node: Some(config),
    }
}

/// Waits until `client`'s node finds all six services.
async fn until_all_placed(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = client.get("cluster").await;
        let placed = view.body["services"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["node"].is_string()));
        if placed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "services not placed in time: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_passes_against_three_nodes() {
    use ServiceKind::*;
    let b = Shop::start(node(
        "b",
        &[Products, Analytics, Notifications],
        false,
        Vec::new(),
    ))
    .await
    .expect("start b");
    let seed = b.node().expect("a node").local_addr().to_string();
    let a = Shop::start(node("a", &[Users, Orders], true, vec![seed.clone()]))
        .await
        .expect("start a");
    let c = Shop::start(node("c", &[Payments], true, vec![seed]))
        .await
        .expect("start c");
    let (via_a, via_c) = (Client::new(&a), Client::new(&c));
    until_all_placed(&via_a).await;
    until_all_placed(&via_c).await;

    let view = via_a.get("cluster").await;
    assert_eq!(view.body["mode"], "cluster");
    assert_eq!(
        view.body["members"].as_array().map(Vec::len),
        Some(3),
        "{view:?}"
    );
    let first = scenario::run(&a.base_url().expect("url")).await;
    let second = scenario::run(&c.base_url().expect("url")).await;
    for shop in [a, c, b] {
        shop.shutdown().await;
    }
    first.expect("scenario through node a");
    second.expect("scenario through node c");
}
