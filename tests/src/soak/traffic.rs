//! [`Traffic`]: the soak's steady mixed load, driven from the soak process, and its
//! counters.
//!
//! | flow | from | to | counted as |
//! | --- | --- | --- | --- |
//! | tells | the soak's driver node | `tally@<node>` on each node, [`Record`]`(n)` | [`TellCount`] per node |
//! | asks | the driver node | `where@<node>` on each node, [`WhereAreYou`] (the reply must name the node) | [`AskCount`] per node |
//! | group asks | the driver node | the `echo` group, [`Ping`]`(n)` (the reply must be `n`) | [`AskCount`] of the group |
//! | publishes | the soak's publisher node | [`TALLY_TOPIC`], [`OrderCreated`]`(n)`, heard by every node's tally | the number published |
//!
//! Each flow runs in its own task, paced by [`Pace`]: a rate is kept, never caught up, so a
//! sender that was held up (a tell waiting for room, an ask waiting for its reply) sends
//! less rather than in a burst afterwards.
//!
//! A tell's number counts *accepted* tells: a tell the framework refuses (its node is down)
//! is counted as refused and its number goes to the next tell. So the numbers a node's tally
//! received are gap-free unless an accepted tell was lost.
//!
//! Stopping is bounded: each task looks at the stop flag every tick, and the operation it
//! is in ends within the ask time-out (a tell waits for room at most until its connection
//! is closed).

use std::collections::BTreeMap;
use std::ops::{Add, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actor_core::{ActorRef, AskError, SendError, Topic};
use actor_remote::Node;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::cluster::{OrderCreated, TALLY_TOPIC, Tally, Where, WhereAreYou};
use crate::echo::{Echo, Ping, Record};

/// How often a paced sender wakes.
const TICK: Duration = Duration::from_millis(10);

/// A steady rate of sends: each [`due`](Pace::due) waits for the next 10 ms tick and says
/// how many sends are due then. Ticks missed while the sender was busy are skipped, not
/// made up.
#[derive(Debug)]
pub struct Pace {
    per_tick: f64,
    owed: f64,
    ticks: Interval,
}

impl Pace {
    /// `per_sec` sends per second.
    pub fn new(per_sec: u32) -> Self {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Pace {
            per_tick: f64::from(per_sec) * TICK.as_secs_f64(),
            owed: 0.0,
            ticks,
        }
    }

    /// Waits for the next tick; returns how many sends are due.
    pub async fn due(&mut self) -> u64 {
        self.ticks.tick().await;
        self.owe_one_tick()
    }

    /// Adds one tick's sends to what is owed (the fraction of a send carries over; never
    /// more than one tick's worth plus that fraction) and takes the whole sends out.
    fn owe_one_tick(&mut self) -> u64 {
        self.owed = (self.owed + self.per_tick).min(self.per_tick + 1.0);
        let due = self.owed.floor();
        self.owed -= due;
        due as u64
    }
}

/// How the tells to one node went, as counted by the sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TellCount {
    /// Tells tried.
    pub attempted: u64,
    /// Tells the framework accepted (numbered `0..accepted`).
    pub accepted: u64,
    /// Tells refused at once as `Unreachable` (the framework counts these as dropped).
    pub refused: u64,
    /// Tells refused with any other error.
    pub failed: u64,
}

/// The live counters behind a [`TellCount`].
#[derive(Debug, Default)]
pub struct TellCounter {
    attempted: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

impl TellCounter {
    /// The counts now.
    pub fn snapshot(&self) -> TellCount {
        TellCount {
            attempted: self.attempted.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// How one ask ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskOutcome {
    /// The expected reply.
    Ok,
    /// A reply, but not the expected one (a routing error).
    WrongReply,
    /// [`AskError::Timeout`].
    Timeout,
    /// [`AskError::NodeDown`].
    NodeDown,
    /// [`AskError::Unreachable`].
    Unreachable,
    /// Any other error.
    Other,
}

impl AskOutcome {
    /// The outcome of an ask that should have replied `expected`.
    pub fn of<T: PartialEq>(result: &Result<T, AskError>, expected: &T) -> Self {
        match result {
            Ok(reply) if reply == expected => AskOutcome::Ok,
            Ok(_) => AskOutcome::WrongReply,
            Err(AskError::Timeout(_)) => AskOutcome::Timeout,
            Err(AskError::NodeDown { .. }) => AskOutcome::NodeDown,
            Err(AskError::Unreachable { .. }) => AskOutcome::Unreachable,
            Err(_) => AskOutcome::Other,
        }
    }
}

/// Asks by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AskCount {
    /// Replied as expected.
    pub ok: u64,
    /// Replied, but not as expected.
    pub wrong_reply: u64,
    /// Timed out.
    pub timeout: u64,
    /// Failed with `NodeDown`.
    pub node_down: u64,
    /// Failed with `Unreachable`.
    pub unreachable: u64,
    /// Failed otherwise.
    pub other: u64,
}

impl AskCount {
    /// Every ask counted.
    pub fn total(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Every ask that did not reply as expected.
    pub fn failed(&self) -> u64 {
        self.wrong_reply + self.timeout + self.node_down + self.unreachable + self.other
    }
}

impl Add for AskCount {
    type Output = AskCount;

    fn add(self, other: AskCount) -> AskCount {
        AskCount {
            ok: self.ok + other.ok,
            wrong_reply: self.wrong_reply + other.wrong_reply,
            timeout: self.timeout + other.timeout,
            node_down: self.node_down + other.node_down,
            unreachable: self.unreachable + other.unreachable,
            other: self.other + other.other,
        }
    }
}

impl Sub for AskCount {
    type Output = AskCount;

    /// The asks counted since `other`, an earlier count of the same asks.
    fn sub(self, other: AskCount) -> AskCount {
        AskCount {
            ok: self.ok.saturating_sub(other.ok),
            wrong_reply: self.wrong_reply.saturating_sub(other.wrong_reply),
            timeout: self.timeout.saturating_sub(other.timeout),
            node_down: self.node_down.saturating_sub(other.node_down),
            unreachable: self.unreachable.saturating_sub(other.unreachable),
            other: self.other.saturating_sub(other.other),
        }
    }
}

/// The live counters behind an [`AskCount`].
#[derive(Debug, Default)]
pub struct AskCounter {
    ok: AtomicU64,
    wrong_reply: AtomicU64,
    timeout: AtomicU64,
    node_down: AtomicU64,
    unreachable: AtomicU64,
    other: AtomicU64,
}

impl AskCounter {
    /// Counts one ask that ended with `outcome`.
    pub fn record(&self, outcome: AskOutcome) {
        let counter = match outcome {
            AskOutcome::Ok => &self.ok,
            AskOutcome::WrongReply => &self.wrong_reply,
            AskOutcome::Timeout => &self.timeout,
            AskOutcome::NodeDown => &self.node_down,
            AskOutcome::Unreachable => &self.unreachable,
            AskOutcome::Other => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> AskCount {
        AskCount {
            ok: self.ok.load(Ordering::Relaxed),
            wrong_reply: self.wrong_reply.load(Ordering::Relaxed),
            timeout: self.timeout.load(Ordering::Relaxed),
            node_down: self.node_down.load(Ordering::Relaxed),
            unreachable: self.unreachable.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }
}

/// The refs one node is driven through.
#[derive(Debug, Clone)]
pub struct NodeTargets {
    /// `tally@<node>`: receives the tells, answers their count.
    pub tally: ActorRef<Tally>,
    /// `where@<node>`: answers the asks with the node's name.
    pub whereabouts: ActorRef<Where>,
}

/// Everything the traffic goes to.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Per node, by name.
    pub nodes: BTreeMap<String, NodeTargets>,
    /// The `echo` group (every node serves `echo`).
    pub echo: ActorRef<Echo>,
}

/// The rates and the ask time-out of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Tells per second to each node.
    pub tells: u32,
    /// Asks per second to each node.
    pub asks: u32,
    /// Asks per second to the `echo` group.
    pub group_asks: u32,
    /// Publishes per second.
    pub publishes: u32,
    /// The time-out of each ask.
    pub ask_timeout: Duration,
}

/// The counters of all flows, shared by the traffic tasks and whoever reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Tells per node.
    pub tells: BTreeMap<String, TellCounter>,
    /// Asks per node.
    pub asks: BTreeMap<String, AskCounter>,
    /// Asks to the `echo` group.
    pub group_asks: AskCounter,
    /// Publishes made (numbered `0..published`).
    pub published: AtomicU64,
}

impl Counters {
    /// Counters for the nodes `names`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        let names: Vec<&String> = names.into_iter().collect();
        Counters {
            tells: names
                .iter()
                .map(|n| ((*n).clone(), TellCounter::default()))
                .collect(),
            asks: names
                .iter()
                .map(|n| ((*n).clone(), AskCounter::default()))
                .collect(),
            group_asks: AskCounter::default(),
            published: AtomicU64::new(0),
        }
    }

    /// Tells accepted, summed over the nodes.
    pub fn tells_accepted(&self) -> u64 {
        self.tells.values().map(|t| t.snapshot().accepted).sum()
    }

    /// Every ask counted so far, per-node and group asks together.
    pub fn all_asks(&self) -> AskCount {
        self.asks
            .values()
            .map(AskCounter::snapshot)
            .fold(self.group_asks.snapshot(), Add::add)
    }
}

/// The running traffic: one task per flow.
#[derive(Debug)]
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Traffic {
    /// Starts every flow at `rates` (a flow at rate 0 is not started); `publisher`
    /// publishes.
    pub fn start(targets: &Targets, publisher: Node, rates: Rates) -> Traffic {
        let counters = Arc::new(Counters::new(targets.nodes.keys()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (name, target) in &targets.nodes {
            if rates.tells > 0 {
                tasks.push(tokio::spawn(tell(
                    target.tally.clone(),
                    name.clone(),
                    Arc::clone(&counters),
                    Pace::new(rates.tells),
                    Arc::clone(&stop),
                )));
            }
            if rates.asks > 0 {
                tasks.push(tokio::spawn(ask_where(
                    target.whereabouts.clone(),
                    name.clone(),
                    Arc::clone(&counters),
                    Pace::new(rates.asks),
                    rates.ask_timeout,
                    Arc::clone(&stop),
                )));
            }
        }
        if rates.group_asks > 0 {
            tasks.push(tokio::spawn(ask_group(
                targets.echo.clone(),
                Arc::clone(&counters),
                Pace::new(rates.group_asks),
                rates.ask_timeout,
                Arc::clone(&stop),
            )));
        }
        if rates.publishes > 0 {
            tasks.push(tokio::spawn(publish(
                publisher,
                Arc::clone(&counters),
                Pace::new(rates.publishes),
                Arc::clone(&stop),
            )));
        }
        Traffic {
            stop,
            tasks,
            counters,
        }
    }

    /// The counters, live.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Stops every flow and waits for the tasks, at most `bound`; returns how many had to
    /// be aborted because they did not end in time.
    pub async fn stop(self, bound: Duration) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + bound;
        let mut aborted = 0;
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                aborted += 1;
            }
        }
        aborted
    }
}

async fn tell(
    tally: ActorRef<Tally>,
    node: String,
    counters: Arc<Counters>,
    mut pace: Pace,
    stop: Arc<AtomicBool>,
) {
    let counter = &counters.tells[&node];
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..pace.due().await {
            counter.attempted.fetch_add(1, Ordering::Relaxed);
            match tally.tell(Record(next)).await {
                Ok(()) => {
                    next += 1;
                    counter.accepted.fetch_add(1, Ordering::Relaxed);
                }
                Err(SendError::Unreachable { .. }) => {
                    counter.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(%node, error = %e, "tell failed");
                    counter.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

async fn ask_where(
    whereabouts: ActorRef<Where>,
    node: String,
    counters: Arc<Counters>,
    mut pace: Pace,
    ask_timeout: Duration,
    stop: Arc<AtomicBool>,
) {
    let counter = &counters.asks[&node];
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..pace.due().await {
            let answer = whereabouts.ask_timeout(WhereAreYou, ask_timeout).await;
            let outcome = AskOutcome::of(&answer, &node);
            if matches!(outcome, AskOutcome::WrongReply | AskOutcome::Other) {
                tracing::warn!(%node, ?answer, "unexpected ask outcome");
            }
            counter.record(outcome);
        }
    }
}

async fn ask_group(
    echo: ActorRef<Echo>,
    counters: Arc<Counters>,
    mut pace: Pace,
    ask_timeout: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..pace.due().await {
            let answer = echo.ask_timeout(Ping(n), ask_timeout).await;
            let outcome = AskOutcome::of(&answer, &n);
            if matches!(outcome, AskOutcome::WrongReply | AskOutcome::Other) {
                tracing::warn!(?answer, "unexpected group ask outcome");
            }
            counters.group_asks.record(outcome);
            n += 1;
        }
    }
}

async fn publish(publisher: Node, counters: Arc<Counters>, mut pace: Pace, stop: Arc<AtomicBool>) {
    let topic = Topic::<OrderCreated>::new(TALLY_TOPIC);
    let pubsub = publisher.system().pubsub();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..pace.due().await {
            pubsub.publish(&topic, OrderCreated(n)).await;
            n += 1;
            counters.published.store(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pace_owes_its_rate_over_a_second_of_ticks_fractions_included() {
        for (per_sec, expected) in [(250, 250), (30, 30), (1, 1), (100_000, 100_000)] {
            let mut pace = Pace::new(per_sec);
            let due: u64 = (0..100).map(|_| pace.owe_one_tick()).sum();
            assert!(due.abs_diff(expected) <= 1, "{per_sec}/s: {due} due");
        }
    }

    #[test]
    fn ask_outcomes_follow_the_reply_and_the_error() {
        let node = "a".to_string();
        assert_eq!(AskOutcome::of(&Ok("a".to_string()), &node), AskOutcome::Ok);
        assert_eq!(
            AskOutcome::of(&Ok("b".to_string()), &node),
            AskOutcome::WrongReply
        );
        let down: Result<String, _> = Err(AskError::NodeDown { node: node.clone() });
        assert_eq!(AskOutcome::of(&down, &node), AskOutcome::NodeDown);
        let gone: Result<String, _> = Err(AskError::Unreachable { node: node.clone() });
        assert_eq!(AskOutcome::of(&gone, &node), AskOutcome::Unreachable);
        let slow: Result<String, _> = Err(AskError::Timeout(Duration::from_secs(1)));
        assert_eq!(AskOutcome::of(&slow, &node), AskOutcome::Timeout);
        let stopped: Result<String, _> = Err(AskError::Stopped);
        assert_eq!(AskOutcome::of(&stopped, &node), AskOutcome::Other);
    }

    #[test]
    fn ask_counts_add_and_subtract_per_outcome() {
        let counter = AskCounter::default();
        counter.record(AskOutcome::Ok);
        let earlier = counter.snapshot();
        counter.record(AskOutcome::Ok);
        counter.record(AskOutcome::NodeDown);
        let since = counter.snapshot() - earlier;
        assert_eq!((since.ok, since.node_down, since.total()), (1, 1, 2));
        assert_eq!((earlier + since).total(), 3);
    }
}
