//! The scenarios on ractor: one actor type per role, driven by the same timing code as ours.
//!
//! ractor's mailbox is unbounded (it has no bounded mailbox), so `cast` never waits for room.
//! `call` without a time-out is its ask; `Actor::spawn` returns once `pre_start` has run, the
//! promise of our `spawn`. Runs on the report's Tokio runtime, like ours.

use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::BenchResult;
use crate::local::ask::{RoundTrip, time_round_trips};
use crate::local::idle::{IdleMemory, measure_idle};
use crate::local::spawn::{Spawner, time_spawns};
use crate::local::tell::{TellTarget, time_tells};

/// The ractor release measured (as locked in `Cargo.lock`).
pub const VERSION: &str = "0.16.5";

/// The counter's messages: ractor actors take one message type.
#[derive(Debug)]
pub enum CounterMsg {
    /// Add the payload to the total (cast).
    Add(u64),
    /// Reply with the total (call).
    Total(RpcReplyPort<u64>),
}

/// The counting actor: adds every `Add` into its state, answers `Total` with it.
#[derive(Debug, Clone, Copy)]
pub struct Counter;

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<CounterMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<CounterMsg>,
        msg: CounterMsg,
        total: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Add(v) => *total = total.wrapping_add(v),
            CounterMsg::Total(reply) => {
                let _ = reply.send(*total);
            }
        }
        Ok(())
    }
}

impl RoundTrip for ActorRef<CounterMsg> {
    async fn round_trip(&self) -> BenchResult<u64> {
        match self.call(CounterMsg::Total, None).await? {
            CallResult::Success(total) => Ok(total),
            other => Err(format!("ractor call failed: {other:?}").into()),
        }
    }
}

impl TellTarget for ActorRef<CounterMsg> {
    async fn add(&self, value: u64) -> BenchResult<()> {
        Ok(self.cast(CounterMsg::Add(value))?)
    }
}

/// The idle actor: no state, answers a ping.
#[derive(Debug, Clone, Copy)]
pub struct Idle;

impl Actor for Idle {
    type Msg = RpcReplyPort<()>;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        reply: RpcReplyPort<()>,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(());
        Ok(())
    }
}

/// Spawns ractor [`Idle`] actors; `stop_all` stops each and joins its task.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdleActors;

impl Spawner for IdleActors {
    type Handle = (ActorRef<RpcReplyPort<()>>, JoinHandle<()>);

    async fn spawn(&mut self) -> BenchResult<Self::Handle> {
        Ok(Actor::spawn(None, Idle, ()).await?)
    }

    async fn ping(&self, handle: &Self::Handle) -> BenchResult<()> {
        match handle.0.call(|reply| reply, None).await? {
            CallResult::Success(()) => Ok(()),
            other => Err(format!("ractor ping failed: {other:?}").into()),
        }
    }

    async fn stop_all(self, handles: Vec<Self::Handle>) -> BenchResult<()> {
        for (actor, _) in &handles {
            actor.stop(None);
        }
        for (_, task) in handles {
            task.await?;
        }
        Ok(())
    }
}

/// Spawns a [`Counter`], times `n` casts from `senders` tasks and one call, stops it.
///
/// # Errors
/// When the spawn, a cast or the call fails, or the total is wrong.
pub async fn tell(senders: usize, n: u64) -> BenchResult<Duration> {
    let (counter, task) = Actor::spawn(None, Counter, ()).await?;
    let counter = std::sync::Arc::new(counter);
    let elapsed = time_tells(&counter, senders, n).await;
    counter.stop(None);
    task.await?;
    elapsed
}

/// Spawns a [`Counter`], times `n` sequential calls, stops it.
///
/// # Errors
/// When the spawn or a call fails.
pub async fn ask(n: u64) -> BenchResult<Duration> {
    let (counter, task) = Actor::spawn(None, Counter, ()).await?;
    let elapsed = time_round_trips(&counter, n).await;
    counter.stop(None);
    task.await?;
    elapsed
}

/// Times `n` spawns of [`Idle`], then stops them, untimed.
///
/// # Errors
/// When a spawn fails.
pub async fn spawn_batch(n: u64) -> BenchResult<Duration> {
    time_spawns(IdleActors, n).await
}

/// `n` live [`Idle`] actors: RSS growth, spawn and stop times.
///
/// # Errors
/// When a spawn or a ping fails, or the RSS cannot be read.
pub async fn idle_memory(n: usize) -> BenchResult<IdleMemory> {
    measure_idle(IdleActors, n).await
}
