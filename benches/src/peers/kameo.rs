//! The scenarios on kameo: the same [`Add`], [`Total`] and [`Ping`] messages as ours, handled
//! by kameo actors and driven by the same timing code.
//!
//! Mailboxes are bounded with our capacity (kameo's own default for `spawn` is 64), so `tell`
//! waits for room as ours does. Its `spawn` returns at once; each spawn here also waits for
//! `wait_for_startup`, the promise of our `spawn`. Runs on the report's Tokio runtime, like
//! ours.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};

use crate::BenchResult;
use crate::local::ask::{RoundTrip, time_round_trips};
use crate::local::idle::{IdleMemory, measure_idle};
use crate::local::spawn::{Ping, Spawner, time_spawns};
use crate::local::tell::{TellTarget, time_tells};
use crate::local::{Add, Total};

/// The kameo release measured (as locked in `Cargo.lock`).
pub const VERSION: &str = "0.22.2";

/// The counting actor: adds every [`Add`] into its total, answers [`Total`] with it.
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
}

impl kameo::Actor for Counter {
    type Args = Self;
    type Error = Infallible;

    async fn on_start(counter: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(counter)
    }
}

impl Message<Add> for Counter {
    type Reply = ();

    async fn handle(&mut self, msg: Add, _: &mut Context<Self, ()>) {
        self.total = self.total.wrapping_add(msg.0);
    }
}

impl Message<Total> for Counter {
    type Reply = u64;

    async fn handle(&mut self, _: Total, _: &mut Context<Self, u64>) -> u64 {
        self.total
    }
}

impl RoundTrip for ActorRef<Counter> {
    async fn round_trip(&self) -> BenchResult<u64> {
        self.ask(Total).await.map_err(|e| e.to_string().into())
    }
}

impl TellTarget for ActorRef<Counter> {
    async fn add(&self, value: u64) -> BenchResult<()> {
        self.tell(Add(value))
            .await
            .map_err(|e| e.to_string().into())
    }
}

/// The idle actor: no state, answers [`Ping`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Idle;

impl kameo::Actor for Idle {
    type Args = Self;
    type Error = Infallible;

    async fn on_start(idle: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(idle)
    }
}

impl Message<Ping> for Idle {
    type Reply = ();

    async fn handle(&mut self, _: Ping, _: &mut Context<Self, ()>) {}
}

/// Spawns kameo [`Idle`] actors with bounded mailboxes of `capacity`, each waited on until
/// started; `stop_all` stops each gracefully and waits for its shutdown.
#[derive(Debug, Clone, Copy)]
pub struct IdleActors {
    /// Each actor's mailbox capacity.
    pub capacity: usize,
}

impl Spawner for IdleActors {
    type Handle = ActorRef<Idle>;

    async fn spawn(&mut self) -> BenchResult<ActorRef<Idle>> {
        let actor = Idle::spawn_with_mailbox(Idle, mailbox::bounded(self.capacity));
        actor.wait_for_startup().await;
        Ok(actor)
    }

    async fn ping(&self, handle: &ActorRef<Idle>) -> BenchResult<()> {
        handle.ask(Ping).await.map_err(|e| e.to_string().into())
    }

    async fn stop_all(self, handles: Vec<ActorRef<Idle>>) -> BenchResult<()> {
        for actor in &handles {
            actor.stop_gracefully().await?;
        }
        for actor in &handles {
            actor.wait_for_shutdown().await;
        }
        Ok(())
    }
}

async fn spawn_counter(capacity: usize) -> ActorRef<Counter> {
    let counter = Counter::spawn_with_mailbox(Counter::default(), mailbox::bounded(capacity));
    counter.wait_for_startup().await;
    counter
}

async fn stop(counter: &ActorRef<Counter>) -> BenchResult<()> {
    counter.stop_gracefully().await?;
    counter.wait_for_shutdown().await;
    Ok(())
}

/// Spawns a [`Counter`] with a mailbox of `capacity`, times `n` tells from `senders` tasks
/// and one ask, stops it.
///
/// # Errors
/// When a tell or the ask fails, or the total is wrong.
pub async fn tell(senders: usize, n: u64, capacity: usize) -> BenchResult<Duration> {
    let counter = Arc::new(spawn_counter(capacity).await);
    let elapsed = time_tells(&counter, senders, n).await;
    stop(&counter).await?;
    elapsed
}

/// Spawns a [`Counter`] with a mailbox of `capacity`, times `n` sequential asks, stops it.
///
/// # Errors
/// When an ask fails.
pub async fn ask(n: u64, capacity: usize) -> BenchResult<Duration> {
    let counter = spawn_counter(capacity).await;
    let elapsed = time_round_trips(&counter, n).await;
    stop(&counter).await?;
    elapsed
}

/// Times `n` spawns of [`Idle`] with a mailbox of `capacity`, then stops them, untimed.
///
/// # Errors
/// When stopping fails.
pub async fn spawn_batch(n: u64, capacity: usize) -> BenchResult<Duration> {
    time_spawns(IdleActors { capacity }, n).await
}

/// `n` live [`Idle`] actors with a mailbox of `capacity`: RSS growth, spawn and stop times.
///
/// # Errors
/// When a ping fails or the RSS cannot be read.
pub async fn idle_memory(n: usize, capacity: usize) -> BenchResult<IdleMemory> {
    measure_idle(IdleActors { capacity }, n).await
}
