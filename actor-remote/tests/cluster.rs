//! Three nodes on loopback that know each other only through a seed list.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actor_core::{Actor, ActorRef, Context, Handler, Message, Topic};
use actor_remote::config::{AuthConfig, NodeConfig};
use actor_remote::{Accepts, MemberEvent, MemberState, Node, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

/// Answers with the name of the node it runs on, and counts the hits it was told.
struct Where(String, u64);
impl Actor for Where {}

#[derive(Serialize, Deserialize)]
struct WhereAreYou;
impl Message for WhereAreYou {
    type Reply = String;
}
impl RemoteMessage for WhereAreYou {
    const TAG: &'static str = "test.cluster.where.v1";
}
impl Handler<WhereAreYou> for Where {
    async fn handle(&mut self, _msg: WhereAreYou, _ctx: &mut Context<Self>) -> String {
        self.0.clone()
    }
}

#[derive(Serialize, Deserialize)]
struct Hit;
impl Message for Hit {
    type Reply = ();
}
impl RemoteMessage for Hit {
    const TAG: &'static str = "test.cluster.hit.v1";
}
impl Handler<Hit> for Where {
    async fn handle(&mut self, _msg: Hit, _ctx: &mut Context<Self>) {
        self.1 += 1;
    }
}

#[derive(Serialize, Deserialize)]
struct Hits;
impl Message for Hits {
    type Reply = u64;
}
impl RemoteMessage for Hits {
    const TAG: &'static str = "test.cluster.hits.v1";
}
impl Handler<Hits> for Where {
    async fn handle(&mut self, _msg: Hits, _ctx: &mut Context<Self>) -> u64 {
        self.1
    }
}

impl RemoteActor for Where {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<WhereAreYou>()
            .message::<Hit>()
            .message::<Hits>();
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct OrderCreated(u32);
impl Message for OrderCreated {
    type Reply = ();
}
impl RemoteMessage for OrderCreated {
    const TAG: &'static str = "test.cluster.order_created.v1";
}

/// Records what it hears.
struct Ear(Arc<Mutex<Vec<String>>>);
impl Actor for Ear {}
impl Handler<OrderCreated> for Ear {
    async fn handle(&mut self, msg: OrderCreated, _ctx: &mut Context<Self>) {
        self.0.lock().expect("ear").push(format!("order {}", msg.0));
    }
}
impl Handler<MemberEvent> for Ear {
    async fn handle(&mut self, msg: MemberEvent, _ctx: &mut Context<Self>) {
        self.0.lock().expect("ear").push(format!("{msg:?}"));
    }
}

const DETECTION_BOUND: Duration = Duration::from_secs(3);

fn config(name: &str, secret: &str, seeds: Vec<String>) -> NodeConfig {
    let mut config = NodeConfig::new(name, AuthConfig::Secret(secret.into()));
    config.seeds = seeds;
    config.membership.probe_period_ms = 100;
    config.membership.probe_rtt_ms = 50;
    config.membership.suspect_to_down_ms = 500;
    config.limits.idle_timeout_ms = 3_000;
    config.limits.keep_alive_ms = 500;
    config.limits.reconnect_backoff_min_ms = 20;
    config.limits.reconnect_backoff_max_ms = 200;
    config
}

/// `a` starts a cluster; `b` and `c` join with `a` as their only seed.
async fn cluster() -> (Node, Node, Node) {
    let a = Node::start(config("a", "s", vec![])).await.expect("a");
    let seed = vec![a.local_addr().to_string()];
    let b = Node::start(config("b", "s", seed.clone()))
        .await
        .expect("b");
    let c = Node::start(config("c", "s", seed)).await.expect("c");
    for node in [&a, &b, &c] {
        wait_for("every node to see three alive members", || {
            alive(node) == ["a", "b", "c"]
        })
        .await;
    }
    (a, b, c)
}

fn alive(node: &Node) -> Vec<String> {
    node.members()
        .into_iter()
        .filter(|m| m.state == MemberState::Alive)
        .map(|m| m.name)
        .collect()
}

fn state_of(node: &Node, name: &str) -> Option<MemberState> {
    node.members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.state)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Serves `svc` on `b` and on `c`, waits until `a` knows both, and returns `a`'s group ref.
async fn group_on_b_and_c(a: &Node, b: &Node, c: &Node) -> ActorRef<Where> {
    serve_where(b, "svc").await;
    serve_where(c, "svc").await;
    wait_for("both instances to be announced", || {
        a.placements().iter().filter(|(n, _)| n == "svc").count() == 2
    })
    .await;
    a.lookup::<Where>("svc").expect("group")
}

async fn serve_where(node: &Node, name: &str) {
    let actor = node
        .system()
        .spawn_named(name, Where(node.name().to_string(), 0))
        .await
        .expect("spawn");
    node.serve(&actor).expect("serve");
}

/// Starts `c` again on `addr` with `a` as its seed (retrying, bounded, until the old socket is
/// released) and serves `svc` on it.
async fn restart_c(a: &Node, addr: std::net::SocketAddr) -> Node {
    let mut again = config("c", "s", vec![a.local_addr().to_string()]);
    again.listen = addr;
    for _ in 0..250 {
        if let Ok(node) = Node::start(again.clone()).await {
            serve_where(&node, "svc").await;
            return node;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} was not released within 5 s");
}

async fn stop(nodes: &[&Node]) {
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_with_only_a_seed_list_see_each_other() {
    let (a, b, c) = cluster().await;
    let members = b.members();
    assert_eq!(members.len(), 3);
    assert!(members.iter().any(|m| m.name == "b" && m.is_self));
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_served_on_one_node_is_found_from_another() {
    let (a, b, c) = cluster().await;
    serve_where(&c, "svc").await;
    let svc = a
        .lookup_wait::<Where>("svc", Duration::from_secs(5))
        .await
        .expect("found");
    assert_eq!(svc.node(), "c");
    assert_eq!(svc.ask(WhereAreYou).await, Ok("c".into()));
    assert!(a.placements().contains(&("svc".into(), "c".into())));
    stop(&[&c, &b, &a]).await;
}

/// Each `serve` announces the whole registry to every peer; a burst of them must leave every
/// peer with the last one, not with whatever fitted on the control stream. On one thread the
/// burst runs before any writer does, so every announcement is queued at once.
#[tokio::test(flavor = "current_thread")]
async fn every_name_of_a_burst_of_serves_is_found_from_another_node() {
    let (a, b, c) = cluster().await;
    const NAMES: usize = 300;
    let mut actors = Vec::new();
    for i in 0..NAMES {
        let name = format!("svc-{i:03}");
        let actor = b.system().spawn_named(&name, Where("b".into(), 0));
        actors.push(actor.await.expect("spawn"));
    }
    // Served back to back: 300 announcements of a growing registry (about 2.5 MB in all).
    for actor in &actors {
        b.serve(actor).expect("serve");
    }
    wait_for("all the names to be announced", || {
        a.placements().iter().filter(|(_, n)| n == "b").count() == NAMES
    })
    .await;
    let last = a
        .lookup::<Where>(&format!("svc-{:03}", NAMES - 1))
        .expect("found");
    assert_eq!(last.ask(WhereAreYou).await, Ok("b".into()));
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_two_serves_round_robin() {
    let (a, b, c) = cluster().await;
    let group = group_on_b_and_c(&a, &b, &c).await;
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(group.ask(WhereAreYou).await.expect("answer"));
    }
    assert_eq!(
        answers.iter().filter(|n| *n == "b").count(),
        5,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|n| *n == "c").count(),
        5,
        "{answers:?}"
    );
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_to_a_group_of_two_alternate_between_its_members() {
    let (a, b, c) = cluster().await;
    let group = group_on_b_and_c(&a, &b, &c).await;
    for _ in 0..10 {
        group.tell(Hit).await.expect("told");
    }
    let (on_b, on_c) = (
        b.lookup::<Where>("svc").expect("b's own"),
        c.lookup::<Where>("svc").expect("c's own"),
    );
    // Counted where they landed, until all ten have (bounded: 100 looks, 10 ms apart).
    let mut hits = (0, 0);
    for _ in 0..100 {
        hits = (
            on_b.ask(Hits).await.expect("b counts"),
            on_c.ask(Hits).await.expect("c counts"),
        );
        if hits.0 + hits.1 == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(hits, (5, 5), "each member got every other tell");
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_is_marked_down_everywhere_and_its_names_vanish() {
    let (a, b, c) = cluster().await;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let ear = a.system().spawn(Ear(heard.clone())).await.expect("ear");
    a.subscribe_members(ear.recipient());
    let group = group_on_b_and_c(&a, &b, &c).await;
    let crashed_at = tokio::time::Instant::now();
    c.crash().await;
    for node in [&a, &b] {
        wait_for("c to be marked down", || {
            state_of(node, "c") == Some(MemberState::Down)
        })
        .await;
    }
    let detected = crashed_at.elapsed();
    eprintln!("crashed node marked down everywhere after {detected:?}");
    assert!(detected < DETECTION_BOUND, "{detected:?}");
    assert!(!a.placements().iter().any(|(_, node)| node == "c"));
    for _ in 0..6 {
        assert_eq!(
            group.ask(WhereAreYou).await,
            Ok("b".into()),
            "the group stops choosing c"
        );
    }
    wait_for("the down event", || {
        heard
            .lock()
            .expect("heard")
            .iter()
            .any(|e| e == r#"Down { node: "c" }"#)
    })
    .await;
    stop(&[&b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_is_seen_as_left_not_down() {
    let (a, b, c) = cluster().await;
    c.leave().await;
    for node in [&a, &b] {
        wait_for("c to be seen as left", || {
            state_of(node, "c") == Some(MemberState::Left)
        })
        .await;
    }
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_every_subscriber_on_every_node_once() {
    let (a, b, c) = cluster().await;
    let topic = Topic::<OrderCreated>::new("order.created");
    let mut ears = Vec::new();
    for node in [&a, &b, &c] {
        node.register_topic(&topic);
        for _ in 0..2 {
            let heard = Arc::new(Mutex::new(Vec::new()));
            let ear = node.system().spawn(Ear(heard.clone())).await.expect("ear");
            node.system().pubsub().subscribe(&topic, ear.recipient());
            ears.push(heard);
        }
    }
    wait_for("the subscriptions to be announced", || {
        a.topic_nodes("order.created") == ["a", "b", "c"]
    })
    .await;
    let sent_before = a.stats().frames_sent;
    a.system().pubsub().publish(&topic, OrderCreated(7)).await;
    for heard in &ears {
        wait_for("each subscriber to hear it", || {
            heard.lock().expect("heard").len() == 1
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for heard in &ears {
        assert_eq!(
            *heard.lock().expect("heard"),
            vec!["order 7".to_string()],
            "exactly once"
        );
    }
    let frames = a.stats().frames_sent - sent_before;
    assert!(
        frames <= 2 + 4,
        "one frame per subscribed node (plus gossip): {frames}"
    );
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_cannot_join() {
    let (a, b, c) = cluster().await;
    let intruder = Node::start(config("x", "wrong", vec![a.local_addr().to_string()]))
        .await
        .expect("x");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for node in [&a, &b, &c] {
        assert_eq!(alive(node), ["a", "b", "c"], "the intruder is not a member");
    }
    assert!(intruder.peers().is_empty());
    assert!(a.stats().handshakes_refused >= 1);
    stop(&[&intruder, &c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_rejoins_and_serves_again() {
    let (a, b, c) = cluster().await;
    serve_where(&c, "svc").await;
    let svc = a
        .lookup_wait::<Where>("svc", Duration::from_secs(5))
        .await
        .expect("found");
    let old_life = a
        .lookup_instance::<Where>("svc")
        .expect("the instance on c");
    assert_eq!(old_life.ask(WhereAreYou).await, Ok("c".into()));
    let addr = c.local_addr();
    c.crash().await;
    drop(c);
    wait_for("c down", || state_of(&a, "c") == Some(MemberState::Down)).await;
    let c2 = restart_c(&a, addr).await;
    wait_for("c to be alive again", || {
        state_of(&a, "c") == Some(MemberState::Alive)
    })
    .await;
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(n) = svc
                .ask_timeout(WhereAreYou, Duration::from_millis(500))
                .await
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("served again");
    assert_eq!(answered, "c");
    assert_eq!(
        old_life.ask(WhereAreYou).await,
        Err(actor_core::AskError::NodeDown { node: "c".into() }),
        "a ref pinned to c's previous life does not reach the new instance"
    );
    stop(&[&c2, &b, &a]).await;
}

/// Records the trace it runs in, then passes the request on along `path`.
struct Hop {
    seen: Arc<Mutex<Vec<(String, u128)>>>,
    node: String,
}
impl Actor for Hop {}

#[derive(Serialize, Deserialize)]
struct Pass {
    path: Vec<String>,
}
impl Message for Pass {
    type Reply = usize;
}
impl RemoteMessage for Pass {
    const TAG: &'static str = "test.cluster.pass.v1";
}
impl Handler<Pass> for Hop {
    async fn handle(&mut self, mut msg: Pass, ctx: &mut Context<Self>) -> usize {
        let trace = actor_core::trace::TraceContext::current().map(|t| t.trace_id());
        self.seen
            .lock()
            .expect("seen")
            .push((self.node.clone(), trace.unwrap_or(0)));
        if msg.path.is_empty() {
            return 1;
        }
        let next = msg.path.remove(0);
        let Ok(next) = ctx.system().lookup::<Hop>(&next) else {
            return 0;
        };
        1 + next.ask(msg).await.unwrap_or(0)
    }
}
impl RemoteActor for Hop {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<Pass>();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_across_three_nodes_is_one_trace() {
    let (a, b, c) = cluster().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    for node in [&a, &b, &c] {
        node.register::<Hop>();
        let hop = Hop {
            seen: seen.clone(),
            node: node.name().to_string(),
        };
        let actor = node
            .system()
            .spawn_named(format!("hop-{}", node.name()), hop)
            .await
            .expect("spawn");
        node.serve(&actor).expect("serve");
    }
    for name in ["hop-b", "hop-c"] {
        a.lookup_wait::<Hop>(name, Duration::from_secs(5))
            .await
            .expect("announced");
        b.lookup_wait::<Hop>(name, Duration::from_secs(5))
            .await
            .expect("announced");
    }
    let first = a.lookup::<Hop>("hop-a").expect("local");
    let root = actor_core::trace::TraceContext::new_root();
    let hops = actor_core::trace::in_context(
        root,
        first.ask(Pass {
            path: vec!["hop-b".into(), "hop-c".into()],
        }),
    )
    .await
    .expect("passed along");
    assert_eq!(hops, 3);
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(
        seen,
        vec![
            ("a".to_string(), root.trace_id()),
            ("b".to_string(), root.trace_id()),
            ("c".to_string(), root.trace_id()),
        ]
    );
    stop(&[&c, &b, &a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_opens_while_a_node_is_down_and_closes_after_it_recovers() {
    use actor_core::AskError;
    use actor_core::policy::{BreakerConfig, BreakerState, Breakers, CallPolicy};

    let (a, b, c) = cluster().await;
    serve_where(&c, "svc").await;
    let svc = a
        .lookup_wait::<Where>("svc", Duration::from_secs(5))
        .await
        .expect("found");
    let breakers = Breakers::new(
        BreakerConfig::new()
            .open_after(3)
            .cool_down(Duration::from_millis(300)),
    );
    let policy = CallPolicy::new()
        .timeout(Duration::from_millis(300))
        .breaker(breakers.for_target("svc", "c"));
    assert_eq!(policy.ask(&svc, WhereAreYou).await, Ok("c".into()));

    let addr = c.local_addr();
    c.crash().await;
    drop(c);
    for _ in 0..3 {
        assert!(policy.ask(&svc, WhereAreYou).await.is_err(), "c is down");
    }
    assert_eq!(policy.stats().breaker, Some(BreakerState::Open));
    assert!(
        matches!(
            policy.ask(&svc, WhereAreYou).await,
            Err(AskError::CircuitOpen { .. })
        ),
        "fails fast while open"
    );

    let c2 = restart_c(&a, addr).await;
    wait_for("c to be back", || {
        state_of(&a, "c") == Some(MemberState::Alive)
    })
    .await;
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(answer) = policy.ask(&svc, WhereAreYou).await {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a probe gets through after the cool-down");
    assert_eq!(recovered, "c");
    assert_eq!(policy.stats().breaker, Some(BreakerState::Closed));
    stop(&[&c2, &b, &a]).await;
}
