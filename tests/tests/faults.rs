//! Process faults: a child node killed with SIGKILL in the middle of a burst of remote tells
//! and asks from the test process.
//!
//! The test process runs a node (`tester`) connected to a `test-node` child that serves
//! `echo`. A burst of 100,000 operations (50,000 tells and 50,000 asks) runs from the
//! tester; once 30% of them are done, the child is killed with `kill -9`. Every operation
//! must end within a bound, each with an outcome the guarantees allow, and the tester (the
//! survivor) must give back the memory the burst took.
//!
//! Both nodes use the short test time-outs of `NodeArgs` (QUIC idle 1.5 s, probe period
//! 100 ms, suspect to down 500 ms). Measured figures are printed on stderr (`--nocapture`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_core::{ActorRef, AskError, SendError};
use actor_remote::Node;
use tests::echo::{Echo, Ping, Record};
use tests::node_args::NodeArgs;
use tests::process::NodeProcess;
use tokio::sync::Mutex;
use tokio::time::Instant;

const SECRET: &str = "process fault test secret";
const CHILD: &str = "child";

/// Tells in a burst.
const TELLS: u64 = 50_000;
/// Asks in a burst, spread over [`ASKERS`] concurrent callers.
const ASKS: u64 = 50_000;
/// Callers asking at once; each waits for its reply before its next ask.
const ASKERS: u64 = 32;
/// The share of the burst done when the child is killed, in percent.
const KILL_AT_PERCENT: u64 = 30;
/// Every operation of a burst ends within this (the kill is detected within about 1.5 s,
/// the QUIC idle time-out; after that every send fails at once).
const BURST_BOUND: Duration = Duration::from_secs(60);
/// The time-out of each ask: longer than detection, so an ask in flight at the kill ends
/// with `NodeDown`, not `Timeout`.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// How much more resident memory the tester may hold after a burst than before it.
///
/// Everything the burst allocates is bounded and released when it ends (the asks in
/// flight, the link's queues and QUIC buffers, the killed peer's routes and names), but the
/// allocator keeps some freed pages mapped for reuse, per thread arena, and the tester keeps
/// redialing the dead peer in the background (one half-open QUIC connection at a time).
/// 8 MiB allows for that; a leak of the burst's own size would not fit (the burst moves
/// about 100,000 messages, and even 100 bytes each left behind would be about 10 MB).
const RSS_TOLERANCE_KIB: u64 = 8 * 1024;

/// One test at a time, so the memory the burst test measures is its own.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The `test-node` binary of this crate.
fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_test-node"))
}

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    tests::rss::rss_kib(std::process::id()).expect("a VmRSS line in /proc/<pid>/status")
}

/// How the operations of a burst ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Outcomes {
    tells_sent: u64,
    tells_unreachable: u64,
    replies: u64,
    node_down: u64,
    unreachable: u64,
    /// Anything else, which the guarantees do not allow here: wrong replies, time-outs,
    /// other errors, failed tells of other kinds.
    unexpected: Vec<String>,
}

impl Outcomes {
    fn asks(&self) -> u64 {
        self.replies + self.node_down + self.unreachable
    }

    fn merge(&mut self, other: Outcomes) {
        self.tells_sent += other.tells_sent;
        self.tells_unreachable += other.tells_unreachable;
        self.replies += other.replies;
        self.node_down += other.node_down;
        self.unreachable += other.unreachable;
        self.unexpected.extend(other.unexpected);
    }
}

/// A child serving `echo`, a tester connected to it, and the tester's ref to `echo`.
async fn connected(tester: &Node) -> (NodeProcess, ActorRef<Echo>) {
    let child = NodeProcess::spawn(program(), &NodeArgs::new(CHILD, SECRET))
        .await
        .expect("the child node starts");
    assert_eq!(tester.connect(child.addr()).await.expect("connects"), CHILD);
    let echo = tester
        .lookup_wait::<Echo>("echo", Duration::from_secs(5))
        .await
        .expect("finds echo on the child");
    (child, echo)
}

/// Sends [`TELLS`] tells and [`ASKS`] asks to `echo` side by side (the tells keep pace
/// with the asks, so both are under way at the kill) and kills `child` when
/// [`KILL_AT_PERCENT`] of them are done; returns how they ended and when the kill happened.
async fn burst_with_kill(echo: &ActorRef<Echo>, child: &mut NodeProcess) -> (Outcomes, Instant) {
    let done = Arc::new(AtomicU64::new(0));
    let asks_done = Arc::new(AtomicU64::new(0));
    let teller = {
        let (echo, done, asks_done) = (echo.clone(), Arc::clone(&done), Arc::clone(&asks_done));
        tokio::spawn(async move {
            let mut outcomes = Outcomes::default();
            for i in 0..TELLS {
                while i * ASKS > (asks_done.load(Ordering::Relaxed) + ASKERS) * TELLS {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                match echo.tell(Record(i)).await {
                    Ok(()) => outcomes.tells_sent += 1,
                    Err(SendError::Unreachable { .. }) => outcomes.tells_unreachable += 1,
                    Err(e) => outcomes.unexpected.push(format!("tell {i}: {e:?}")),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            outcomes
        })
    };
    let askers: Vec<_> = (0..ASKERS)
        .map(|asker| {
            let (echo, done, asks_done) = (echo.clone(), Arc::clone(&done), Arc::clone(&asks_done));
            tokio::spawn(async move {
                let mut outcomes = Outcomes::default();
                for n in (asker..ASKS).step_by(ASKERS as usize) {
                    match echo.ask_timeout(Ping(n), ASK_TIMEOUT).await {
                        Ok(reply) if reply == n => outcomes.replies += 1,
                        Err(AskError::NodeDown { node }) if node == CHILD => {
                            outcomes.node_down += 1
                        }
                        Err(AskError::Unreachable { node }) if node == CHILD => {
                            outcomes.unreachable += 1
                        }
                        other => outcomes.unexpected.push(format!("ask {n}: {other:?}")),
                    }
                    asks_done.fetch_add(1, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                outcomes
            })
        })
        .collect();

    let kill_at = (TELLS + ASKS) * KILL_AT_PERCENT / 100;
    while done.load(Ordering::Relaxed) < kill_at {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let killed = Instant::now();
    child.kill().await.expect("kill -9");

    let mut outcomes = teller.await.expect("the teller ends");
    for asker in askers {
        outcomes.merge(asker.await.expect("an asker ends"));
    }
    (outcomes, killed)
}

/// Waits (bounded) until the tester has no link left to the killed child.
async fn until_no_peers(tester: &Node) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !tester.peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the killed child's link is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_resolves_every_ask_and_the_survivor_gives_its_memory_back() {
    let _turn = SERIAL.lock().await;
    let tester = Node::start(NodeArgs::new("tester", SECRET).config())
        .await
        .expect("the tester node starts");

    // A first round brings the allocator, the runtime and QUIC to the sizes such a burst
    // needs, so that the measured round shows what a burst leaves behind, not first use.
    let (mut first, echo) = connected(&tester).await;
    let (warm_up, _) = tokio::time::timeout(BURST_BOUND, burst_with_kill(&echo, &mut first))
        .await
        .expect("the warm-up burst ends");
    assert!(warm_up.unexpected.is_empty(), "{:?}", warm_up.unexpected);
    until_no_peers(&tester).await;
    drop(first);

    let (mut child, echo) = connected(&tester).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let started = Instant::now();
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (outcomes, killed) = tokio::time::timeout(BURST_BOUND, burst_with_kill(&echo, &mut child))
        .await
        .expect("every operation of the burst ends: nothing hangs");
    let ended = started.elapsed();
    let after_kill = killed.elapsed();
    sampler.abort();

    assert_eq!(
        outcomes.unexpected,
        Vec::<String>::new(),
        "every ask ends with its reply, NodeDown or Unreachable; every tell is sent or \
         refused as Unreachable"
    );
    assert_eq!(outcomes.asks(), ASKS);
    assert_eq!(outcomes.tells_sent + outcomes.tells_unreachable, TELLS);
    assert!(
        outcomes.replies > 0,
        "some asks were answered before the kill"
    );
    assert!(
        outcomes.node_down + outcomes.unreachable > 0,
        "some asks met the kill"
    );

    until_no_peers(&tester).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "burst of {} operations, kill -9 at {KILL_AT_PERCENT}%: ended {ended:?} after it \
         started, {after_kill:?} after the kill; {outcomes:?}; tester stats {:?}",
        TELLS + ASKS,
        tester.stats()
    );
    eprintln!(
        "tester RSS: {before} KiB before the burst, {peak} KiB at its peak, {after} KiB \
         after it settled ({:+} KiB)",
        after as i64 - before as i64
    );
    assert!(
        after <= before + RSS_TOLERANCE_KIB,
        "the survivor's memory returns to its level before the burst: {before} KiB before, \
         {after} KiB after (peak {peak} KiB), tolerance {RSS_TOLERANCE_KIB} KiB"
    );
    tester.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_refused_as_unreachable_is_not_counted_as_a_dropped_tell() {
    let _turn = SERIAL.lock().await;
    let tester = Node::start(NodeArgs::new("tester", SECRET).config())
        .await
        .expect("the tester node starts");
    let (mut child, echo) = connected(&tester).await;
    child.kill().await.expect("kill -9");
    until_no_peers(&tester).await;
    let before = tester.stats().tells_dropped;
    assert_eq!(
        echo.ask_timeout(Ping(1), ASK_TIMEOUT).await,
        Err(AskError::Unreachable {
            node: CHILD.to_string()
        })
    );
    assert_eq!(
        tester.stats().tells_dropped,
        before,
        "an ask is not a tell: it failed with its own error"
    );
    tester.shutdown().await;
}
