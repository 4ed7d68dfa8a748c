//! The scenarios on actix: the same [`Add`], [`Total`] and [`Ping`] messages as ours, handled
//! by actix actors and driven by the same timing code, on actix's own runtime.
//!
//! actix does not run on a multi-thread Tokio runtime: a [`System`] runs its actors on the
//! thread that drives it, and every further [`Arbiter`] is a thread with a single-threaded
//! runtime of its own. [`ActixSystem`] holds one System (driven by the report's main thread,
//! where the scenario's senders run) and one extra Arbiter, so actix gets the same two
//! threads as our two workers. Where the counter lives is the [`Layout`]; the report measures
//! both.
//!
//! Mailboxes: `do_send`, actix's tell, queues even when the mailbox is full, so tells are
//! unbounded whatever the capacity (set to ours with `set_mailbox_capacity`, which bounds
//! `send`, actix's ask). `start` returns before the actor's `started` hook has run; spawns
//! here wait for it, the promise of our `spawn`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, Addr, Arbiter, Context, Handler, System};
use actix_rt::SystemRunner;
use tokio::sync::oneshot;

use crate::BenchResult;
use crate::local::ask::{RoundTrip, time_round_trips};
use crate::local::idle::{IdleMemory, measure_idle};
use crate::local::spawn::{Ping, Spawner, time_spawns};
use crate::local::tell::{TellTarget, time_tells};
use crate::local::{Add, Total};

/// The actix release measured (as locked in `Cargo.lock`).
pub const VERSION: &str = "0.13.5";

impl actix::Message for Add {
    type Result = ();
}

impl actix::Message for Total {
    type Result = u64;
}

impl actix::Message for Ping {
    type Result = ();
}

/// Where the counter actor runs, relative to the scenario's senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// On the System's arbiter, the senders' thread: what `Actor::start` does. One thread.
    OneArbiter,
    /// On the extra Arbiter: senders and actor on two threads, like our two workers.
    OwnArbiter,
}

impl Layout {
    /// The layout in words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::OneArbiter => "actor and senders on one arbiter (Actor::start)",
            Layout::OwnArbiter => "actor on its own arbiter, senders on the system's",
        }
    }
}

/// An actix System driven by the calling thread, plus one extra Arbiter thread.
#[derive(Debug)]
pub struct ActixSystem {
    system: SystemRunner,
    arbiter: Arbiter,
}

impl ActixSystem {
    /// Starts a System on this thread and one Arbiter thread.
    pub fn start() -> Self {
        let system = System::new();
        let arbiter = Arbiter::new();
        Self { system, arbiter }
    }

    /// Runs `fut` on the System's arbiter (this thread) until it completes.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.system.block_on(fut)
    }

    /// Stops the extra Arbiter and joins its thread; the System ends when dropped.
    ///
    /// # Errors
    /// When the Arbiter's thread panicked.
    pub fn stop(self) -> BenchResult<()> {
        self.arbiter.stop();
        self.arbiter
            .join()
            .map_err(|_| "the actix arbiter thread panicked")?;
        Ok(())
    }

    /// Must run inside [`block_on`](Self::block_on): `create` spawns on the current arbiter.
    fn spawn_counter(&self, layout: Layout, capacity: usize) -> Addr<Counter> {
        let create = move |ctx: &mut Context<Counter>| {
            ctx.set_mailbox_capacity(capacity);
            Counter::default()
        };
        match layout {
            Layout::OneArbiter => Counter::create(create),
            Layout::OwnArbiter => Counter::start_in_arbiter(&self.arbiter.handle(), create),
        }
    }

    /// Spawns a [`Counter`] as `layout` says with a mailbox of `capacity`, times `n` tells
    /// (`do_send`) from `senders` tasks and one ask, and lets it stop.
    ///
    /// # Errors
    /// When the ask fails or the total is wrong.
    pub fn tell(
        &self,
        layout: Layout,
        senders: usize,
        n: u64,
        capacity: usize,
    ) -> BenchResult<Duration> {
        self.block_on(async {
            let counter = Arc::new(self.spawn_counter(layout, capacity));
            time_tells(&counter, senders, n).await
        })
    }

    /// Spawns a [`Counter`] as `layout` says with a mailbox of `capacity`, times `n`
    /// sequential asks (`send`), and lets it stop.
    ///
    /// # Errors
    /// When an ask fails.
    pub fn ask(&self, layout: Layout, n: u64, capacity: usize) -> BenchResult<Duration> {
        self.block_on(async {
            let counter = self.spawn_counter(layout, capacity);
            time_round_trips(&counter, n).await
        })
    }

    /// Times `n` spawns of [`Idle`] on the System's arbiter with a mailbox of `capacity`,
    /// then stops them, untimed.
    ///
    /// # Errors
    /// When a spawn or a stop fails.
    pub fn spawn_batch(&self, n: u64, capacity: usize) -> BenchResult<Duration> {
        self.block_on(time_spawns(IdleActors { capacity }, n))
    }

    /// `n` live [`Idle`] actors on the System's arbiter with a mailbox of `capacity`: RSS
    /// growth, spawn and stop times.
    ///
    /// # Errors
    /// When a spawn or a ping fails, or the RSS cannot be read.
    pub fn idle_memory(&self, n: usize, capacity: usize) -> BenchResult<IdleMemory> {
        self.block_on(measure_idle(IdleActors { capacity }, n))
    }
}

/// The counting actor: adds every [`Add`] into its total, answers [`Total`] with it.
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Add> for Counter {
    type Result = ();

    fn handle(&mut self, msg: Add, _: &mut Context<Self>) {
        self.total = self.total.wrapping_add(msg.0);
    }
}

impl Handler<Total> for Counter {
    type Result = u64;

    fn handle(&mut self, _: Total, _: &mut Context<Self>) -> u64 {
        self.total
    }
}

impl RoundTrip for Addr<Counter> {
    async fn round_trip(&self) -> BenchResult<u64> {
        Ok(self.send(Total).await?)
    }
}

impl TellTarget for Addr<Counter> {
    async fn add(&self, value: u64) -> BenchResult<()> {
        self.do_send(Add(value));
        Ok(())
    }
}

/// The idle actor: answers [`Ping`]. It holds the sender that tells its spawner it has
/// started until `started` runs (one pointer; `None` ever after).
#[derive(Debug, Default)]
pub struct Idle {
    started: Option<oneshot::Sender<()>>,
}

impl Actor for Idle {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
    }
}

impl Handler<Ping> for Idle {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

/// Stops the actor that handles it.
struct Stop;

impl actix::Message for Stop {
    type Result = ();
}

impl Handler<Stop> for Idle {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Spawns actix [`Idle`] actors on the current arbiter with a mailbox of `capacity`, each
/// waited on until started; `stop_all` asks each to stop.
#[derive(Debug, Clone, Copy)]
pub struct IdleActors {
    /// Each actor's mailbox capacity.
    pub capacity: usize,
}

impl Spawner for IdleActors {
    type Handle = Addr<Idle>;

    async fn spawn(&mut self) -> BenchResult<Addr<Idle>> {
        let (tx, started) = oneshot::channel();
        let capacity = self.capacity;
        let actor = Idle::create(move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            Idle { started: Some(tx) }
        });
        started.await?;
        Ok(actor)
    }

    async fn ping(&self, handle: &Addr<Idle>) -> BenchResult<()> {
        Ok(handle.send(Ping).await?)
    }

    async fn stop_all(self, handles: Vec<Addr<Idle>>) -> BenchResult<()> {
        for actor in &handles {
            actor.send(Stop).await?;
        }
        Ok(())
    }
}
