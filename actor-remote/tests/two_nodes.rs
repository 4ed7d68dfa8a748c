//! Two nodes in one process on loopback: location-transparent refs over QUIC.

use std::sync::Arc;
use std::time::Duration;

use actor_core::{
    Actor, ActorRef, AskError, Backoff, ChildSpec, Context, Handler, LookupError, Message,
    SendError, Supervisor,
};
use actor_remote::config::{AuthConfig, NodeConfig};
use actor_remote::{Accepts, ConnectError, Node, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Echoes, records tells in order, sleeps and panics on request.
#[derive(Default)]
struct Echo {
    received: u64,
    in_order: bool,
    gate: Option<Arc<Semaphore>>,
}
impl Actor for Echo {}

#[derive(Serialize, Deserialize)]
struct Ping(u64);
impl Message for Ping {
    type Reply = u64;
}
impl RemoteMessage for Ping {
    const TAG: &'static str = "test.echo.ping.v1";
}
impl Handler<Ping> for Echo {
    async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self>) -> u64 {
        msg.0
    }
}

#[derive(Serialize, Deserialize)]
struct Record(u64);
impl Message for Record {
    type Reply = ();
}
impl RemoteMessage for Record {
    const TAG: &'static str = "test.echo.record.v1";
}
impl Handler<Record> for Echo {
    async fn handle(&mut self, msg: Record, _ctx: &mut Context<Self>) {
        if self.received == 0 {
            self.in_order = true;
        }
        self.in_order &= msg.0 == self.received;
        self.received += 1;
        if let Some(gate) = &self.gate {
            let _ = gate.acquire().await.map(|p| p.forget());
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Summary;
impl Message for Summary {
    type Reply = (u64, bool);
}
impl RemoteMessage for Summary {
    const TAG: &'static str = "test.echo.summary.v1";
}
impl Handler<Summary> for Echo {
    async fn handle(&mut self, _msg: Summary, _ctx: &mut Context<Self>) -> (u64, bool) {
        (self.received, self.in_order)
    }
}

#[derive(Serialize, Deserialize)]
struct Slow(u64);
impl Message for Slow {
    type Reply = String;
}
impl RemoteMessage for Slow {
    const TAG: &'static str = "test.echo.slow.v1";
}
impl Handler<Slow> for Echo {
    async fn handle(&mut self, msg: Slow, _ctx: &mut Context<Self>) -> String {
        tokio::time::sleep(Duration::from_millis(msg.0)).await;
        "done".into()
    }
}

#[derive(Serialize, Deserialize)]
struct Boom;
impl Message for Boom {
    type Reply = ();
}
impl RemoteMessage for Boom {
    const TAG: &'static str = "test.echo.boom.v1";
}
impl Handler<Boom> for Echo {
    async fn handle(&mut self, _msg: Boom, _ctx: &mut Context<Self>) {
        panic!("boom requested");
    }
}

#[derive(Serialize, Deserialize)]
struct Blob(Vec<u8>);
impl Message for Blob {
    type Reply = usize;
}
impl RemoteMessage for Blob {
    const TAG: &'static str = "test.echo.blob.v1";
}
impl Handler<Blob> for Echo {
    async fn handle(&mut self, msg: Blob, _ctx: &mut Context<Self>) -> usize {
        msg.0.len()
    }
}

/// A reply whose `Serialize` panics: a bug in user code on the serving side.
#[derive(Debug, PartialEq, Deserialize)]
struct Unsendable;
impl Serialize for Unsendable {
    fn serialize<S: serde::Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        panic!("this reply cannot be serialized")
    }
}

#[derive(Serialize, Deserialize)]
struct Unanswerable;
impl Message for Unanswerable {
    type Reply = Unsendable;
}
impl RemoteMessage for Unanswerable {
    const TAG: &'static str = "test.echo.unanswerable.v1";
}
impl Handler<Unanswerable> for Echo {
    async fn handle(&mut self, _msg: Unanswerable, _ctx: &mut Context<Self>) -> Unsendable {
        Unsendable
    }
}

/// Handled locally but not declared remote.
struct LocalOnly;
impl Message for LocalOnly {
    type Reply = ();
}
impl Handler<LocalOnly> for Echo {
    async fn handle(&mut self, _msg: LocalOnly, _ctx: &mut Context<Self>) {}
}

impl RemoteActor for Echo {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<Ping>()
            .message::<Record>()
            .message::<Summary>()
            .message::<Slow>()
            .message::<Boom>()
            .message::<Blob>()
            .message::<Unanswerable>();
    }
}

/// The same actor as the caller believes it to be: it also sends a tag the host lacks.
mod newer {
    use super::*;

    pub(crate) struct Echo;
    impl Actor for Echo {}
    impl Handler<Ping> for Echo {
        async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self>) -> u64 {
            msg.0
        }
    }
    #[derive(Serialize, Deserialize)]
    pub(crate) struct Unknown;
    impl Message for Unknown {
        type Reply = ();
    }
    impl RemoteMessage for Unknown {
        const TAG: &'static str = "test.echo.added_later.v2";
    }
    impl Handler<Unknown> for Echo {
        async fn handle(&mut self, _msg: Unknown, _ctx: &mut Context<Self>) {}
    }
    impl RemoteActor for Echo {
        fn accepts(accepts: &mut Accepts<Self>) {
            accepts.message::<Ping>().message::<Unknown>();
        }
    }
}

fn config(name: &str, secret: &str) -> NodeConfig {
    let mut config = NodeConfig::new(name, AuthConfig::Secret(secret.into()));
    // The default idle time-out (10 s): at 2 s, a 100,000-tell flood in a debug build
    // under the whole suite's load once went 2 s without an ACK reaching the sender, and
    // the connection timed out. Nothing here waits for an idle time-out.
    config.limits.reconnect_backoff_min_ms = 20;
    config.limits.reconnect_backoff_max_ms = 200;
    config
}

/// Sends the nodes' logs (`actor_remote=info`, or `RUST_LOG`) to the test's captured
/// output, so a failing test shows why a connection closed or a member went down.
fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("actor_remote=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Node `b` hosts a supervised `echo`; node `a` is connected to it.
async fn pair() -> (Node, Node) {
    capture_logs();
    let b = Node::start(config("b", "s3cret")).await.expect("start b");
    b.system()
        .spawn_supervisor(
            Supervisor::one_for_one()
                .backoff(Backoff::none())
                .max_restarts(100, Duration::from_secs(10))
                .child(ChildSpec::new("echo", Echo::default)),
        )
        .await
        .expect("echo");
    let echo = b.system().lookup::<Echo>("echo").expect("echo");
    b.serve(&echo).expect("serve");
    let a = Node::start(config("a", "s3cret")).await.expect("start a");
    assert_eq!(a.connect(b.local_addr()).await.expect("connect"), "b");
    (a, b)
}

async fn remote_echo(a: &Node) -> ActorRef<Echo> {
    a.lookup::<Echo>("echo").expect("lookup")
}

/// An [`Echo`] served on `b` as `name` whose `Record` handler waits for a permit of the
/// returned gate (none at first), and `a`'s ref to it.
async fn held_echo(a: &Node, b: &Node, name: &str) -> (ActorRef<Echo>, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let held = b
        .system()
        .spawn_named(
            name,
            Echo {
                gate: Some(gate.clone()),
                ..Echo::default()
            },
        )
        .await
        .expect("held");
    b.serve(&held).expect("serve");
    let held = a
        .lookup_wait::<Echo>(name, Duration::from_secs(5))
        .await
        .expect("lookup");
    (held, gate)
}

/// Asks `actor` for `msg` (time-out 30 s) in a task of its own, and checks that the ask is
/// still waiting 100 ms later (`why` says why it should be).
async fn waiting_ask<M>(
    actor: &ActorRef<Echo>,
    msg: M,
    why: &str,
) -> tokio::task::JoinHandle<Result<M::Reply, AskError>>
where
    Echo: Handler<M>,
    M: Message,
{
    let ask = tokio::spawn({
        let actor = actor.clone();
        async move { actor.ask_timeout(msg, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!ask.is_finished(), "{why}");
    ask
}

fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"boom requested") {
            default(info);
        }
    }));
}

#[tokio::test]
async fn a_remote_ask_replies_through_an_ordinary_ref() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    assert!(!echo.is_local());
    assert_eq!(echo.node(), "b");
    assert_eq!(echo.ask(Ping(42)).await, Ok(42));
    // The system's own lookup finds it too, once the node has learned the name.
    assert_eq!(
        a.system().lookup::<Echo>("echo").expect("system lookup"),
        echo
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_tells_arrive_in_send_order() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    for i in 0..100_000 {
        echo.tell(Record(i)).await.expect("tell");
    }
    let summary = echo
        .ask_timeout(Summary, Duration::from_secs(30))
        .await
        .expect("summary");
    assert_eq!(summary, (100_000, true));
    assert!(
        a.stats().frames_per_write() > 1.0,
        "writes are batched: {:?}",
        a.stats()
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_of_two_types_through_two_refs_to_one_actor_arrive_in_send_order() {
    let (a, b) = pair().await;
    // Two look-ups, two refs: both send on the one stream to `echo`, and each keeps the
    // header of its own last tell.
    let (first, second) = (remote_echo(&a).await, remote_echo(&a).await);
    for i in 0..20_000 {
        let to = if i % 3 == 0 { &first } else { &second };
        to.tell(Record(i)).await.expect("tell");
        if i % 7 == 0 {
            to.tell(Ping(i)).await.expect("tell of another type");
        }
    }
    let summary = first
        .ask_timeout(Summary, Duration::from_secs(30))
        .await
        .expect("summary");
    assert_eq!(summary, (20_000, true));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_slow_remote_handler_times_the_ask_out_and_later_asks_work() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    let outcome = echo
        .ask_timeout(Slow(2_000), Duration::from_millis(100))
        .await;
    assert_eq!(outcome, Err(AskError::Timeout(Duration::from_millis(100))));
    assert_eq!(
        echo.ask_timeout(Slow(0), Duration::from_secs(10)).await,
        Ok("done".into())
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_remote_panic_comes_back_typed_and_the_remote_supervisor_restarts_the_actor() {
    quiet_panics();
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    echo.tell(Record(0)).await.expect("tell");
    assert_eq!(echo.ask(Summary).await, Ok((1, true)));
    assert_eq!(
        echo.ask(Boom).await,
        Err(AskError::HandlerPanicked {
            node: Some("b".into())
        })
    );
    assert_eq!(
        echo.ask(Summary).await,
        Ok((0, false)),
        "a fresh instance answers"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_actor_that_stops_answers_its_queued_asks_stopped_and_the_node_serves_on() {
    let (a, b) = pair().await;
    let (held, gate) = held_echo(&a, &b, "held").await;
    held.tell(Record(0)).await.expect("tell");
    let queued = waiting_ask(&held, Ping(1), "queued behind the held tell").await;
    let local = b.system().lookup::<Echo>("held").expect("local ref");
    assert!(local.stop());
    gate.add_permits(1);
    let outcome = tokio::time::timeout(Duration::from_secs(5), queued)
        .await
        .expect("the queued ask is answered")
        .expect("the asking task ran");
    assert_eq!(outcome, Err(AskError::Stopped));
    assert_eq!(remote_echo(&a).await.ask(Ping(7)).await, Ok(7));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_reply_that_cannot_be_serialized_fails_its_ask_alone() {
    quiet_panics();
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    echo.tell(Record(0)).await.expect("tell");
    assert!(
        matches!(echo.ask(Unanswerable).await, Err(AskError::Codec(_))),
        "the encoding failure comes back typed"
    );
    assert_eq!(
        echo.ask(Summary).await,
        Ok((1, true)),
        "the same instance answers: the handler did not fail"
    );
    let local = b.system().lookup::<Echo>("echo").expect("echo");
    assert_eq!(local.stats().map(|s| s.restarts), Some(0));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn unknown_names_and_tags_get_typed_errors() {
    let (a, b) = pair().await;
    assert_eq!(
        a.lookup::<Echo>("nobody"),
        Err(LookupError::NotFound("nobody".into()))
    );
    let newer = a.lookup::<newer::Echo>("echo").expect("compatible lookup");
    assert_eq!(newer.ask(Ping(7)).await, Ok(7));
    assert_eq!(
        newer.ask(newer::Unknown).await,
        Err(AskError::UnknownMessage {
            tag: "test.echo.added_later.v2".into()
        })
    );
    let echo = remote_echo(&a).await;
    assert!(matches!(
        echo.tell(LocalOnly).await,
        Err(SendError::NotRemote { .. })
    ));
    assert!(b.unserve("echo"));
    assert_eq!(
        echo.ask(Ping(1)).await,
        Err(AskError::UnknownActor {
            node: "b".into(),
            name: "echo".into()
        })
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn asks_in_flight_fail_with_node_down_when_the_peer_crashes() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    let in_flight: Vec<_> = (0..10)
        .map(|_| {
            let echo = echo.clone();
            tokio::spawn(
                async move { echo.ask_timeout(Slow(3_000), Duration::from_secs(60)).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let crashing = tokio::spawn(async move { b.crash().await });
    for ask in in_flight {
        assert_eq!(
            ask.await.expect("join"),
            Err(AskError::NodeDown { node: "b".into() })
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failed promptly"
    );
    crashing.await.expect("b crashed");
    assert!(matches!(
        echo.tell(Record(1)).await,
        Err(SendError::Unreachable { .. })
    ));
    assert!(a.stats().asks_failed_node_down >= 10);
    a.shutdown().await;
}

#[tokio::test]
async fn a_graceful_leave_answers_asks_in_flight_then_takes_no_new_work() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let echo = echo.clone();
            tokio::spawn(async move { echo.ask_timeout(Slow(300), Duration::from_secs(10)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.leave().await;
    for ask in in_flight {
        assert_eq!(ask.await.expect("join"), Ok("done".to_string()));
    }
    assert!(
        a.system().lookup::<Echo>("echo").is_err(),
        "its names are withdrawn"
    );
    assert!(echo.ask(Ping(1)).await.is_err(), "no new work reaches it");
    a.shutdown().await;
    b.shutdown().await;
}

/// Binds a new node on `addr`, waiting (bounded) for the old socket to be released.
async fn restart_on(config: NodeConfig) -> Node {
    for _ in 0..100 {
        match Node::start(config.clone()).await {
            Ok(node) => return node,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("address {} not released", config.listen);
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected_and_refs_work_again() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    assert_eq!(echo.ask(Ping(1)).await, Ok(1));
    let addr = b.local_addr();
    b.shutdown().await;
    drop(b);
    let mut config = config("b", "s3cret");
    config.listen = addr;
    let b2 = restart_on(config).await;
    let echo2 = b2
        .system()
        .spawn_named("echo", Echo::default())
        .await
        .expect("echo");
    b2.serve(&echo2).expect("serve");
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(v) = echo.ask_timeout(Ping(2), Duration::from_millis(500)).await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the old ref works once reconnected");
    assert_eq!(answered, 2);
    a.shutdown().await;
    b2.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_on_both_sides() {
    let b = Node::start(config("b", "right")).await.expect("start b");
    let a = Node::start(config("a", "wrong")).await.expect("start a");
    match a.connect(b.local_addr()).await {
        Err(ConnectError::Refused { rejection, .. }) => {
            assert!(
                rejection.to_string().contains("unauthorized"),
                "{rejection}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(a.peers().is_empty());
    assert!(b.peers().is_empty());
    tokio::time::timeout(Duration::from_secs(2), async {
        while b.stats().handshakes_refused != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the acceptor counts the refusal");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_wrong_cluster_name_is_refused_with_the_names() {
    let b = Node::start(config("b", "s")).await.expect("start b");
    let mut other = config("a", "s");
    other.cluster = "elsewhere".into();
    let a = Node::start(other).await.expect("start a");
    match a.connect(b.local_addr()).await {
        Err(ConnectError::Refused { rejection, .. }) => {
            let text = rejection.to_string();
            assert!(
                text.contains("default") && text.contains("elsewhere"),
                "{text}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_large_message_does_not_stall_small_ones_to_other_actors() {
    let (a, b) = pair().await;
    // A second actor on b whose handler is held shut: its stream backs up.
    let (stuck, gate) = held_echo(&a, &b, "stuck").await;
    let echo = remote_echo(&a).await;
    let flood = {
        let stuck = stuck.clone();
        tokio::spawn(async move {
            stuck.tell(Record(0)).await.expect("first");
            for _ in 0..8 {
                let _ = stuck
                    .ask_timeout(Blob(vec![7; 1 << 20]), Duration::from_secs(60))
                    .await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..50 {
        assert_eq!(
            echo.ask_timeout(Ping(i), Duration::from_secs(2)).await,
            Ok(i)
        );
    }
    assert!(
        !flood.is_finished(),
        "the large messages are still held back"
    );
    gate.add_permits(1_000);
    tokio::time::timeout(Duration::from_secs(30), flood)
        .await
        .expect("flood completes once released")
        .expect("join");
    a.shutdown().await;
    b.shutdown().await;
}

/// Fills the lane to an actor whose handler is held shut (its mailbox, the stream's flow
/// control window and the lane's queue all fill up), then asks it: the ask waits for room, and
/// once the actor is released it is answered after every tell sent before it, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_behind_a_full_lane_is_answered_after_every_tell_before_it() {
    let (a, b) = pair().await;
    let (held, gate) = held_echo(&a, &b, "held").await;
    let mut sent = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match held.try_tell(Record(sent)) {
            Ok(()) => sent += 1,
            Err(SendError::Full(_)) => break,
            Err(e) => panic!("unexpected refusal after {sent} tells: {e:?}"),
        }
        if sent % 1024 == 0 {
            // Let the transport move what it can, so only a full path refuses.
            tokio::task::yield_now().await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "the lane never filled ({sent} tells)"
            );
        }
    }
    let ask = waiting_ask(&held, Summary, "the ask waits behind the held tells").await;
    gate.add_permits(10_000_000);
    let summary = tokio::time::timeout(Duration::from_secs(30), ask)
        .await
        .expect("answered once released")
        .expect("join");
    assert_eq!(summary, Ok((sent, true)));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_ask_whose_stream_the_peer_drops_fails_at_once_and_later_asks_use_a_new_stream() {
    let (a, b) = pair().await;
    let (held, gate) = held_echo(&a, &b, "held").await;
    // The lane to `held` is open on both sides once an ask on it is answered.
    assert_eq!(held.ask(Ping(1)).await, Ok(1));
    let ask = waiting_ask(&held, Record(0), "the held actor has not answered").await;
    b.drop_streams_from("a").expect("connected");
    let outcome = tokio::time::timeout(Duration::from_secs(30), ask)
        .await
        .expect("the ask ends")
        .expect("join");
    assert_eq!(
        outcome,
        Err(AskError::Unreachable { node: "b".into() }),
        "its reply can no longer come: it fails now, not at its time-out"
    );
    gate.add_permits(10);
    assert_eq!(
        held.ask(Ping(7)).await,
        Ok(7),
        "a new stream carries later asks"
    );
    assert_eq!(
        a.stats().asks_failed_node_down,
        0,
        "the connection stayed up"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// `tasks` tasks, each asking `echo` for `asks` pings in turn (task `t`'s `i`-th carries
/// `base + t * 1000 + i`) and asserting each comes back.
fn spawn_askers(
    echo: &ActorRef<Echo>,
    tasks: u64,
    asks: u64,
    base: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let echo = echo.clone();
            tokio::spawn(async move {
                for i in 0..asks {
                    let n = base + t * 1_000 + i;
                    assert_eq!(
                        echo.ask_timeout(Ping(n), Duration::from_secs(20)).await,
                        Ok(n)
                    );
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_askers_on_one_lane_all_get_their_own_replies() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    let askers = spawn_askers(&echo, 32, 50, 0);
    for asker in askers {
        asker.await.expect("every asker got its replies");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn several_asks_awaited_together_in_one_task_all_get_their_replies() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    // One task waits for four asks at once (one waker for all four) while other tasks ask
    // on the same lane: each ask that ends must leave the others waiting, and read.
    let others = spawn_askers(&echo, 2, 100, 10_000);
    let timeout = Duration::from_secs(20);
    for round in 0..50u64 {
        let n = round * 4;
        let replies = tokio::join!(
            echo.ask_timeout(Ping(n), timeout),
            echo.ask_timeout(Ping(n + 1), timeout),
            echo.ask_timeout(Ping(n + 2), timeout),
            echo.ask_timeout(Ping(n + 3), timeout),
        );
        assert_eq!(replies, (Ok(n), Ok(n + 1), Ok(n + 2), Ok(n + 3)));
    }
    for other in others {
        other.await.expect("the other askers got their replies");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn when_the_asker_reading_the_replies_gives_up_another_takes_over() {
    let (a, b) = pair().await;
    let echo = remote_echo(&a).await;
    assert_eq!(echo.ask(Ping(0)).await, Ok(0));
    // This ask reads the lane's replies while it waits, and gives up at its time-out,
    // before the actor (busy with it) answers anything.
    let reader = tokio::spawn({
        let echo = echo.clone();
        async move {
            echo.ask_timeout(Slow(500), Duration::from_millis(100))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // These wait behind it, and are answered after it gave up.
    let waiting: Vec<_> = (1..=4u64)
        .map(|n| {
            let echo = echo.clone();
            tokio::spawn(async move { echo.ask_timeout(Ping(n), Duration::from_secs(20)).await })
        })
        .collect();
    assert_eq!(
        reader.await.expect("join"),
        Err(AskError::Timeout(Duration::from_millis(100)))
    );
    // Answered well before their own time-outs (20 s): nobody would read the stream for
    // them if the one that read it took its turn away with it.
    for (n, ask) in (1..=4u64).zip(waiting) {
        let answered = tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .expect("answered once the actor is free, not at the time-out")
            .expect("join");
        assert_eq!(answered, Ok(n));
    }
    a.shutdown().await;
    b.shutdown().await;
}
