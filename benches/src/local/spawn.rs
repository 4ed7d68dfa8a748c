//! The cost of spawning one actor, against a bare Tokio task that owns a channel receiver.
//!
//! Ours returns once the actor's `started` hook has run (that is what `spawn` promises), so
//! it includes a hand-shake with the new task. The bare baseline does not wait for the task
//! to run; [`task_spawn_started_batch`] adds that hand-shake to the baseline, to tell the
//! cost of the promise from the cost of the framework's bookkeeping.
//!
//! Every kind of actor (ours, a bare task, another framework's) is driven through one
//! [`Spawner`]: [`time_spawns`] times its spawns here, and
//! [`measure_idle`](super::idle::measure_idle) keeps many of them alive for the memory figure.

use std::future::Future;
use std::time::{Duration, Instant};

use actor_core::{Actor, ActorRef, ActorSystem, Context, Handler, Message, SpawnOptions};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::BenchResult;

/// Spawns per timed batch: at most this many live at once, then they are torn down untimed.
pub const SPAWN_BATCH: u64 = 10_000;

/// An actor with no state and no hooks: its whole cost is the framework's.
#[derive(Debug, Default, Clone, Copy)]
pub struct Idle;

impl Actor for Idle {}

/// Asks an actor (or a bare task) to prove it is alive.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

impl Message for Ping {
    type Reply = ();
}

impl Handler<Ping> for Idle {
    async fn handle(&mut self, _msg: Ping, _ctx: &mut Context<Self>) {}
}

/// The sending side of a bare task: a `Ping` is a `oneshot` the task answers.
pub type BareSender = mpsc::Sender<oneshot::Sender<()>>;

/// Creates a bounded channel of `capacity` and spawns a task that owns its receiver and
/// answers every ping until the channel closes: the "bare Tokio task with a channel".
pub fn spawn_bare_task(capacity: usize) -> (BareSender, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let task = tokio::spawn(bare_task(rx));
    (tx, task)
}

async fn bare_task(mut rx: mpsc::Receiver<oneshot::Sender<()>>) {
    while let Some(reply) = rx.recv().await {
        let _ = reply.send(());
    }
}

/// Pings a bare task and waits for the answer.
///
/// # Errors
/// When the task has ended.
pub async fn ping_bare_task(tx: &BareSender) -> BenchResult<()> {
    let (reply, answered) = oneshot::channel();
    tx.send(reply).await.map_err(|_| "bare task ended")?;
    Ok(answered.await?)
}

/// Spawns idle actors of one kind, proves one alive, and stops them all: the one interface
/// through which the spawn and idle-memory scenarios drive ours, the bare-task baselines and
/// other frameworks' actors.
pub trait Spawner {
    /// What the harness keeps per actor (a ref, a sender, a join handle).
    type Handle;

    /// Spawns one idle actor, returning when the kind's spawn promises (ours: once started).
    fn spawn(&mut self) -> impl Future<Output = BenchResult<Self::Handle>>;

    /// Asks one actor to answer, to prove it is alive.
    fn ping(&self, handle: &Self::Handle) -> impl Future<Output = BenchResult<()>>;

    /// Stops every actor and waits until they have ended.
    fn stop_all(self, handles: Vec<Self::Handle>) -> impl Future<Output = BenchResult<()>>;
}

/// Times `n` spawns, then stops them all, untimed. Returns the timed part.
///
/// # Errors
/// When a spawn or the stopping fails.
pub async fn time_spawns<S: Spawner>(mut spawner: S, n: u64) -> BenchResult<Duration> {
    let mut handles = Vec::with_capacity(usize::try_from(n)?);
    let start = Instant::now();
    for _ in 0..n {
        handles.push(spawner.spawn().await?);
    }
    let elapsed = start.elapsed();
    spawner.stop_all(handles).await?;
    Ok(elapsed)
}

/// Ours: [`Idle`] actors with a mailbox of `capacity` in a system of their own.
#[derive(Debug)]
pub struct OurIdleActors {
    system: ActorSystem,
    capacity: usize,
}

impl OurIdleActors {
    /// A fresh system whose actors get a mailbox of `capacity`.
    pub fn new(capacity: usize) -> Self {
        Self {
            system: ActorSystem::new(),
            capacity,
        }
    }
}

impl Spawner for OurIdleActors {
    type Handle = ActorRef<Idle>;

    async fn spawn(&mut self) -> BenchResult<ActorRef<Idle>> {
        let options = SpawnOptions::new().mailbox_capacity(self.capacity);
        Ok(self.system.spawn_with(Idle, options).await?)
    }

    async fn ping(&self, handle: &ActorRef<Idle>) -> BenchResult<()> {
        Ok(handle.ask(Ping).await?)
    }

    async fn stop_all(self, handles: Vec<ActorRef<Idle>>) -> BenchResult<()> {
        self.system.shutdown().await;
        drop(handles);
        Ok(())
    }
}

/// Baseline: bare tasks, each owning the receiver of a channel of `capacity`.
#[derive(Debug, Clone, Copy)]
pub struct BareTasks {
    /// The capacity of each task's channel.
    pub capacity: usize,
    /// Whether each spawn waits for the new task to run once (the promise of our spawn).
    pub wait_started: bool,
}

impl Spawner for BareTasks {
    type Handle = (BareSender, JoinHandle<()>);

    async fn spawn(&mut self) -> BenchResult<Self::Handle> {
        if !self.wait_started {
            return Ok(spawn_bare_task(self.capacity));
        }
        let (tx, rx) = mpsc::channel(self.capacity);
        let (started_tx, started) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = started_tx.send(());
            bare_task(rx).await;
        });
        started.await?;
        Ok((tx, task))
    }

    async fn ping(&self, handle: &Self::Handle) -> BenchResult<()> {
        ping_bare_task(&handle.0).await
    }

    async fn stop_all(self, handles: Vec<Self::Handle>) -> BenchResult<()> {
        let (senders, tasks): (Vec<_>, Vec<_>) = handles.into_iter().unzip();
        drop(senders);
        for task in tasks {
            task.await?;
        }
        Ok(())
    }
}

/// Ours: in a fresh system, times `n` spawns of [`Idle`] with a mailbox of `capacity` (each
/// returns once the actor has started), then shuts the system down, untimed.
///
/// # Errors
/// When a spawn fails.
pub async fn actor_spawn_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    time_spawns(OurIdleActors::new(capacity), n).await
}

/// Baseline: times `n` times a channel of `capacity` plus `tokio::spawn` of a task owning its
/// receiver (not waiting for the task to run), then closes the channels and joins the
/// tasks, untimed.
///
/// # Errors
/// When a task panicked.
pub async fn task_spawn_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    let bare = BareTasks {
        capacity,
        wait_started: false,
    };
    time_spawns(bare, n).await
}

/// Baseline with the promise of our `spawn`: like [`task_spawn_batch`], but each spawn also
/// waits for a `oneshot` the new task sends when it first runs.
///
/// # Errors
/// When a task panicked or ended before signalling.
pub async fn task_spawn_started_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    let bare = BareTasks {
        capacity,
        wait_started: true,
    };
    time_spawns(bare, n).await
}
