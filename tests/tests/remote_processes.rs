//! Two nodes as separate OS processes on 127.0.0.1: each test runs a node in the test
//! process (`tester`) and a `test-node` child process (`child`) that serves the `echo`
//! actor, connects the two and talks to `echo` through an ordinary `ActorRef`.
//!
//! Both nodes run with the short test time-outs of `NodeArgs` (idle 1.5 s, keep-alive
//! 250 ms). Measured failure-detection and reconnection times are printed on stderr: run
//! with `--nocapture` to see them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use actor_core::{ActorRef, AskError, SendError};
use actor_remote::{ConnectError, Node};
use tests::echo::{Boom, Echo, Ping, Record, SLOW_REPLY, Slow, Summary};
use tests::node_args::NodeArgs;
use tests::process::{NodeProcess, ProcessError};
use tokio::time::Instant;

const SECRET: &str = "multi-process test secret";
const CHILD: &str = "child";

/// Every test holds this while it runs, and the flood of tells holds it alone: beside the
/// other tests' node processes (debug builds on two cores) the flood delayed the answers to
/// health probes past even the production timing (the child declared the tester down in 1
/// of 10 runs of this binary, with the test on its own in 0 of 10).
static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The `test-node` binary of this crate.
fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_test-node"))
}

async fn spawn_child(args: NodeArgs) -> NodeProcess {
    NodeProcess::spawn(program(), &args)
        .await
        .expect("the child node starts")
}

/// The test process's own node, configured like its children.
async fn start_tester() -> Node {
    start_tester_with(|args| args).await
}

/// As [`start_tester`], from `NodeArgs` changed by `configure`.
async fn start_tester_with(configure: impl Fn(NodeArgs) -> NodeArgs) -> Node {
    Node::start(configure(NodeArgs::new("tester", SECRET)).config())
        .await
        .expect("the tester node starts")
}

/// A child serving `echo`, a tester connected to it, and the tester's ref to that `echo`.
async fn connected_pair() -> (Node, NodeProcess, ActorRef<Echo>) {
    connected_pair_with(|args| args).await
}

/// As [`connected_pair`], both nodes started from `NodeArgs` changed by `configure`.
async fn connected_pair_with(
    configure: impl Fn(NodeArgs) -> NodeArgs,
) -> (Node, NodeProcess, ActorRef<Echo>) {
    let child = spawn_child(configure(NodeArgs::new(CHILD, SECRET))).await;
    let tester = start_tester_with(&configure).await;
    assert_eq!(tester.connect(child.addr()).await.expect("connects"), CHILD);
    let echo = tester
        .lookup_wait::<Echo>("echo", Duration::from_secs(5))
        .await
        .expect("finds echo on the child");
    (tester, child, echo)
}

/// Starts a child on `addr`, retrying (bounded) while the killed one's socket is released.
async fn respawn_on(addr: SocketAddr) -> NodeProcess {
    let args = NodeArgs::new(CHILD, SECRET).listen(addr);
    for _ in 0..20 {
        match NodeProcess::spawn(program(), &args).await {
            Ok(child) => return child,
            Err(ProcessError::ExitedEarly { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restarting the child failed: {e}"),
        }
    }
    panic!("address {addr} was not released");
}

/// Waits (bounded) until the tester no longer has a live connection to the child.
async fn until_unreachable(echo: &ActorRef<Echo>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while echo.is_alive() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the killed child is detected down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_ask_to_a_child_process_replies() {
    let _shared = LOAD.read().await;
    let (tester, _child, echo) = connected_pair().await;
    assert!(!echo.is_local());
    assert_eq!(echo.node(), CHILD);
    assert_eq!(
        echo.ask_timeout(Ping(42), Duration::from_secs(5)).await,
        Ok(42)
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_tells_to_a_child_process_arrive_in_send_order() {
    let _alone = LOAD.write().await;
    const COUNT: u64 = 100_000;
    // A flood of tells from a debug build, beside the other tests' node processes on two
    // cores, can hold a node's answers to health probes longer than the short test timing
    // allows (a 50 ms probe, down after 500 ms). This test is about order, not failure
    // detection: both nodes use the production timing.
    let (tester, _child, echo) =
        connected_pair_with(|args| args.membership_timing(500, 200, 1_000)).await;
    for i in 0..COUNT {
        echo.tell(Record(i)).await.expect("tell");
    }
    assert_eq!(
        echo.ask_timeout(Summary, Duration::from_secs(30)).await,
        Ok((COUNT, true))
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_to_a_slow_remote_handler_times_out_and_a_later_ask_works() {
    let _shared = LOAD.read().await;
    let (tester, _child, echo) = connected_pair().await;
    let timeout = Duration::from_millis(100);
    let asked = Instant::now();
    assert_eq!(
        echo.ask_timeout(Slow(2_000), timeout).await,
        Err(AskError::Timeout(timeout))
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the time-out is kept: {:?}",
        asked.elapsed()
    );
    // Queued behind the slow handler, which finishes within its 2 s.
    assert_eq!(
        echo.ask_timeout(Ping(7), Duration::from_secs(10)).await,
        Ok(7)
    );
    assert_eq!(
        echo.ask_timeout(Slow(0), Duration::from_secs(5)).await,
        Ok(SLOW_REPLY.to_string())
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_handler_panic_comes_back_typed_and_the_child_restarts_the_actor() {
    let _shared = LOAD.read().await;
    let (tester, _child, echo) = connected_pair().await;
    let timeout = Duration::from_secs(5);
    echo.tell(Record(0)).await.expect("tell");
    assert_eq!(echo.ask_timeout(Summary, timeout).await, Ok((1, true)));
    assert_eq!(
        echo.ask_timeout(Boom, timeout).await,
        Err(AskError::HandlerPanicked {
            node: Some(CHILD.to_string())
        })
    );
    assert_eq!(
        echo.ask_timeout(Summary, timeout).await,
        Ok((0, true)),
        "a fresh instance answers through the same ref"
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_in_flight_fail_with_node_down_promptly_when_the_child_is_killed() {
    let _shared = LOAD.read().await;
    const ASKS: usize = 20;
    let (tester, mut child, echo) = connected_pair().await;
    let in_flight: Vec<_> = (0..ASKS)
        .map(|_| {
            let echo = echo.clone();
            tokio::spawn(async move {
                echo.ask_timeout(Slow(30_000), Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(in_flight.iter().all(|ask| !ask.is_finished()));

    let killed = Instant::now();
    child.kill().await.expect("kill -9");
    let outcomes = tokio::time::timeout(Duration::from_secs(20), async {
        let mut outcomes = Vec::with_capacity(ASKS);
        for ask in in_flight {
            outcomes.push(ask.await.expect("join"));
        }
        outcomes
    })
    .await
    .expect("every ask in flight ends");
    let detected = killed.elapsed();
    eprintln!("asks in flight failed {detected:?} after kill -9");

    for outcome in outcomes {
        assert_eq!(
            outcome,
            Err(AskError::NodeDown {
                node: CHILD.to_string()
            })
        );
    }
    assert!(
        detected < Duration::from_secs(5),
        "NodeDown within 5 s of kill -9 (idle time-out 1.5 s), took {detected:?}"
    );
    assert!(tester.stats().asks_failed_node_down >= ASKS as u64);
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tell_to_a_killed_child_fails_with_unreachable_and_is_counted() {
    let _shared = LOAD.read().await;
    let (tester, mut child, echo) = connected_pair().await;
    child.kill().await.expect("kill -9");
    until_unreachable(&echo).await;
    let dropped = tester.stats().tells_dropped;
    match echo.tell(Record(0)).await {
        Err(SendError::Unreachable { msg, node }) => {
            assert_eq!(node, CHILD);
            assert_eq!(msg, Record(0), "the message comes back");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(tester.stats().tells_dropped, dropped + 1);
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_restarted_on_the_same_address_is_reconnected_and_the_old_ref_works_again() {
    let _shared = LOAD.read().await;
    let (tester, mut child, echo) = connected_pair().await;
    assert_eq!(
        echo.ask_timeout(Ping(1), Duration::from_secs(5)).await,
        Ok(1)
    );
    let addr = child.addr();
    child.kill().await.expect("kill -9");
    let restarted = respawn_on(addr).await;
    assert_eq!(restarted.addr(), addr);

    let since = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(n) = echo.ask_timeout(Ping(2), Duration::from_millis(500)).await {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the old ref works once the tester has reconnected");
    eprintln!("old ref answered {:?} after the restart", since.elapsed());
    assert_eq!(answered, 2);
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_with_another_secret_refuses_the_connection_as_unauthorized() {
    let _shared = LOAD.read().await;
    let child = spawn_child(NodeArgs::new(CHILD, "another secret")).await;
    let tester = start_tester().await;
    match tester.connect(child.addr()).await {
        Err(ConnectError::Refused { rejection, .. }) => assert!(
            rejection.to_string().contains("unauthorized"),
            "{rejection}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(tester.peers().is_empty());
    assert!(
        child
            .wait_for_stderr("incoming connection refused", Duration::from_secs(5))
            .await,
        "the child logs the refusal; its stderr:\n{}",
        child.stderr()
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_dials_the_tester_is_reachable_over_the_connection_it_made() {
    let _shared = LOAD.read().await;
    let tester = start_tester().await;
    let _child = spawn_child(NodeArgs::new(CHILD, SECRET).connect(tester.local_addr())).await;
    // The child prints its address once its dial is done; the tester installs the
    // connection a moment later.
    tokio::time::timeout(Duration::from_secs(5), async {
        while tester.peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the child's connection is accepted");
    let peers = tester.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].node, CHILD);
    assert!(!peers[0].dialed_by_us);
    let echo = tester
        .lookup_wait::<Echo>("echo", Duration::from_secs(5))
        .await
        .expect("finds echo on the child");
    assert_eq!(
        echo.ask_timeout(Ping(9), Duration::from_secs(5)).await,
        Ok(9)
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_leaves_gracefully_answers_the_asks_in_flight_first() {
    let _shared = LOAD.read().await;
    const ASKS: usize = 5;
    let (tester, mut child, echo) = connected_pair().await;
    let in_flight: Vec<_> = (0..ASKS)
        .map(|_| {
            let echo = echo.clone();
            tokio::spawn(async move { echo.ask_timeout(Slow(200), Duration::from_secs(60)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(in_flight.iter().all(|ask| !ask.is_finished()));

    // The child withdraws its names, drains the work it has, then leaves.
    let stopped = tokio::spawn(async move {
        let status = child.stop(Duration::from_secs(10)).await;
        (child, status)
    });
    for ask in in_flight {
        let outcome = tokio::time::timeout(Duration::from_secs(10), ask)
            .await
            .expect("the ask ends")
            .expect("join");
        assert_eq!(outcome, Ok(SLOW_REPLY.to_string()));
    }
    let (child, status) = stopped.await.expect("join");
    let status = status.expect("the child exits");
    assert!(status.success(), "{status}; stderr:\n{}", child.stderr());
    tester.shutdown().await;
}
