//! Peers that misbehave are cut off alone; everyone else keeps being served.

use std::time::Duration;

use actor_core::{Actor, AskError, Context, Handler, Message};
use actor_remote::config::{AuthConfig, NodeConfig};
use actor_remote::tls::generate_test_ca;
use actor_remote::{Accepts, ConnectError, Node, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

struct Echo;
impl Actor for Echo {}

#[derive(Serialize, Deserialize)]
struct Ping(u64);
impl Message for Ping {
    type Reply = u64;
}
impl RemoteMessage for Ping {
    const TAG: &'static str = "test.hostile.ping.v1";
}
impl Handler<Ping> for Echo {
    async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self>) -> u64 {
        msg.0
    }
}

#[derive(Serialize, Deserialize)]
struct Blob(Vec<u8>);
impl Message for Blob {
    type Reply = usize;
}
impl RemoteMessage for Blob {
    const TAG: &'static str = "test.hostile.blob.v1";
}
impl Handler<Blob> for Echo {
    async fn handle(&mut self, msg: Blob, _ctx: &mut Context<Self>) -> usize {
        msg.0.len()
    }
}

impl RemoteActor for Echo {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<Ping>().message::<Blob>();
    }
}

fn config(name: &str) -> NodeConfig {
    NodeConfig::new(name, AuthConfig::Secret("shared secret".into()))
}

/// `b` serves echo; `a` and `c` are connected to it.
async fn three() -> (Node, Node, Node) {
    let mut b_config = config("b");
    b_config.limits.max_frame_len = 1 << 20;
    let b = Node::start(b_config).await.expect("b");
    let echo = b.system().spawn_named("echo", Echo).await.expect("echo");
    b.serve(&echo).expect("serve");
    let mut a_config = config("a");
    a_config.limits.max_frame_len = 8 << 20;
    let a = Node::start(a_config).await.expect("a");
    let c = Node::start(config("c")).await.expect("c");
    a.connect(b.local_addr()).await.expect("a-b");
    c.connect(b.local_addr()).await.expect("c-b");
    (a, b, c)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn garbage_bytes_disconnect_only_the_sender() {
    let (a, b, c) = three().await;
    let from_c = c.lookup::<Echo>("echo").expect("lookup");
    assert_eq!(from_c.ask(Ping(1)).await, Ok(1));
    a.inject_raw(
        "b",
        &[
            0, 0, 0, 40, 0xff, 0xfe, 0xfd, 0xfc, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36,
        ],
    )
    .await
    .expect("inject");
    // (a redials at once, being a wanted peer; the count shows the cut.)
    wait_for("b to drop a", || {
        b.stats().peers_disconnected_for_violations == 1
    })
    .await;
    assert_eq!(from_c.ask(Ping(2)).await, Ok(2), "c is still served");
    assert!(b.peers().iter().any(|p| p.node == "c"));
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn an_oversized_frame_disconnects_only_the_sender() {
    let (a, b, c) = three().await;
    let from_a = a.lookup::<Echo>("echo").expect("lookup");
    let from_c = c.lookup::<Echo>("echo").expect("lookup");
    // a allows 8 MiB frames; b only 1 MiB: b cuts a off, and a's ask fails with NodeDown.
    let outcome = from_a.ask(Blob(vec![1; 2 << 20])).await;
    assert_eq!(outcome, Err(AskError::NodeDown { node: "b".into() }));
    wait_for("b to count the violation", || {
        b.stats().peers_disconnected_for_violations == 1
    })
    .await;
    assert_eq!(from_c.ask(Ping(3)).await, Ok(3), "c is still served");
    // A message within the limit still goes through, after a reconnects.
    wait_for("a to reconnect", || !a.peers().is_empty()).await;
    let small = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(n) = from_a.ask(Blob(vec![1; 1000])).await {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a is served again");
    assert_eq!(small, 1000);
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_peer_without_the_cluster_cas_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let cluster = generate_test_ca("cluster-ca", &["a", "b"]).expect("cluster pki");
    let rogue = generate_test_ca("rogue-ca", &["r"]).expect("rogue pki");
    let ca = write("ca.pem", &cluster.ca_cert_pem);
    let mtls = |cert: &actor_remote::tls::TestNodeCert, ca: std::path::PathBuf| AuthConfig::Mtls {
        cert: write(&format!("{}.crt", cert.name), &cert.cert_pem),
        key: write(&format!("{}.key", cert.name), &cert.key_pem),
        ca,
    };
    let b = Node::start(NodeConfig::new("b", mtls(&cluster.nodes[1], ca.clone())))
        .await
        .expect("b");
    let echo = b.system().spawn_named("echo", Echo).await.expect("echo");
    b.serve(&echo).expect("serve");
    let a = Node::start(NodeConfig::new("a", mtls(&cluster.nodes[0], ca.clone())))
        .await
        .expect("a");
    assert_eq!(
        a.connect(b.local_addr())
            .await
            .expect("a is in the cluster"),
        "b"
    );
    let from_a = a.lookup::<Echo>("echo").expect("lookup");
    assert_eq!(from_a.ask(Ping(4)).await, Ok(4));

    // The rogue trusts the cluster CA (so it would accept b) but holds a rogue certificate.
    let r = Node::start(NodeConfig::new("r", mtls(&rogue.nodes[0], ca)))
        .await
        .expect("r");
    let refused = r.connect(b.local_addr()).await;
    assert!(
        matches!(
            refused,
            Err(ConnectError::Connection { .. } | ConnectError::Protocol { .. })
        ),
        "{refused:?}"
    );
    assert!(!b.peers().iter().any(|p| p.node == "r"));
    assert_eq!(from_a.ask(Ping(5)).await, Ok(5), "a is still served");
    a.shutdown().await;
    b.shutdown().await;
    r.shutdown().await;
}
