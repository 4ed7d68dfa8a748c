//! The cost of spawning one actor, against a bare Tokio task that owns a channel receiver.
//!
//! Ours returns once the actor's `started` hook has run (that is what `spawn` promises), so
//! it includes a hand-shake with the new task. The bare baseline does not wait for the task
//! to run; [`task_spawn_started_batch`] adds that hand-shake to the baseline, to tell the
//! cost of the promise from the cost of the framework's bookkeeping.

use std::time::{Duration, Instant};

use actor_core::{Actor, ActorSystem, Context, Handler, Message, SpawnOptions};
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

/// Ours: in a fresh system, times `n` spawns of [`Idle`] with a mailbox of `capacity` (each
/// returns once the actor has started), then shuts the system down, untimed.
///
/// # Errors
/// When a spawn fails.
pub async fn actor_spawn_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    let system = ActorSystem::new();
    let mut refs = Vec::with_capacity(usize::try_from(n)?);
    let start = Instant::now();
    for _ in 0..n {
        let options = SpawnOptions::new().mailbox_capacity(capacity);
        refs.push(system.spawn_with(Idle, options).await?);
    }
    let elapsed = start.elapsed();
    system.shutdown().await;
    drop(refs);
    Ok(elapsed)
}

/// Baseline: times `n` times a channel of `capacity` plus `tokio::spawn` of a task owning its
/// receiver (not waiting for the task to run), then closes the channels and joins the
/// tasks, untimed.
///
/// # Errors
/// When a task panicked.
pub async fn task_spawn_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    let mut tasks = Vec::with_capacity(usize::try_from(n)?);
    let start = Instant::now();
    for _ in 0..n {
        tasks.push(spawn_bare_task(capacity));
    }
    let elapsed = start.elapsed();
    join_bare_tasks(tasks).await?;
    Ok(elapsed)
}

/// Baseline with the promise of our `spawn`: like [`task_spawn_batch`], but each spawn also
/// waits for a `oneshot` the new task sends when it first runs.
///
/// # Errors
/// When a task panicked or ended before signalling.
pub async fn task_spawn_started_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    let mut tasks = Vec::with_capacity(usize::try_from(n)?);
    let start = Instant::now();
    for _ in 0..n {
        let (tx, rx) = mpsc::channel(capacity);
        let (started_tx, started) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = started_tx.send(());
            bare_task(rx).await;
        });
        started.await?;
        tasks.push((tx, task));
    }
    let elapsed = start.elapsed();
    join_bare_tasks(tasks).await?;
    Ok(elapsed)
}

async fn join_bare_tasks(tasks: Vec<(BareSender, JoinHandle<()>)>) -> BenchResult<()> {
    let (senders, handles): (Vec<_>, Vec<_>) = tasks.into_iter().unzip();
    drop(senders);
    for handle in handles {
        handle.await?;
    }
    Ok(())
}
