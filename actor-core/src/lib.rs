//! Typed actors with bounded mailboxes, supervision trees and local pub/sub.
//!
//! An actor is a value that owns its state and handles messages one at a time. You talk to
//! it through an [`ActorRef`], which is the same type whether the actor lives in this process
//! or (through `actor-remote`) on another node.
//!
//! ```
//! use actor_core::{Actor, ActorSystem, Context, Handler, Message};
//!
//! struct Counter { total: u64 }
//! impl Actor for Counter {}
//!
//! struct Add(u64);
//! impl Message for Add { type Reply = (); }
//!
//! struct Get;
//! impl Message for Get { type Reply = u64; }
//!
//! impl Handler<Add> for Counter {
//!     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) {
//!         self.total += msg.0;
//!     }
//! }
//!
//! impl Handler<Get> for Counter {
//!     async fn handle(&mut self, _msg: Get, _ctx: &mut Context<Self>) -> u64 {
//!         self.total
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let system = ActorSystem::new();
//!     let counter = system.spawn_named("counter", Counter { total: 0 }).await?;
//!     counter.tell(Add(2)).await?;
//!     counter.tell(Add(3)).await?;
//!     assert_eq!(counter.ask(Get).await?, 5);
//!
//!     let same = system.lookup::<Counter>("counter")?;
//!     assert_eq!(same, counter);
//!     system.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Guarantees
//! - **tell**: at-most-once; messages from one sender to one receiver arrive in send order,
//!   local or remote. There is no ordering between different senders.
//! - **ask**: exactly one outcome, the reply or a typed [`AskError`], never later than its
//!   time-out (default 5 s, per call with [`ActorRef::ask_timeout`]).
//! - **Isolation**: a panic in one actor is caught at its task's boundary; it never stops
//!   another actor or the process.
//! - **Restarts keep identity**: a supervised actor's ref, id, name and mailbox outlive its
//!   restarts; queued messages go to the new instance; the message whose handler panicked
//!   fails its ask with [`AskError::HandlerPanicked`].
//! - **Bounded**: every mailbox has a capacity (default 1024). `tell` waits for room,
//!   `try_tell` returns [`SendError::Full`] with the message. Nothing is queued without bound.
//! - **Undeliverable says so**: a send to an actor that stopped for good fails with
//!   `Stopped` and hands the message back.
//! - **Orderly shutdown**: [`ActorSystem::shutdown`] stops actors in reverse start order,
//!   runs `stopped`, answers queued asks with `Stopped`, and returns when every task ended.
//! - **Local sends never serialize**: the mailbox carries the typed message.
//!
//! # Parts
//! - [`actor`](Actor): the `Actor`, `Message` and `Handler` traits and the lifecycle hooks.
//! - [`ActorRef`] / [`Recipient`]: handles; `tell`, `try_tell`, `ask`.
//! - [`Context`]: the actor's own ref, `stop`, children, timers.
//! - [`ActorSystem`]: spawning, the name registry, shutdown.
//! - [`supervisor`]: supervision trees, restart strategies, intensity and back-off.
//! - [`pubsub`]: typed topics.
//! - [`policy`]: call policies: per-call time-outs, retries for idempotent messages, circuit
//!   breakers.
//! - [`remote`]: the seam a transport crate plugs into.
//! - [`trace`]: trace context that follows a request across actors and nodes.

mod actor;
mod actor_ref;
mod cell;
mod context;
mod deadline;
mod envelope;
mod error;
mod feeder;
mod id;
mod mailbox;
mod pending;
pub mod policy;
pub mod pubsub;
mod recipient;
mod registry;
pub mod remote;
mod reply;
pub mod stats;
pub mod supervisor;
mod system;
pub mod trace;

pub use actor::{Actor, Handler, Message};
pub use actor_ref::ActorRef;
pub use context::{Context, TimerHandle};
pub use error::{AskError, BoxError, LookupError, SendError, SpawnError};
pub use id::ActorId;
pub use pending::PendingReply;
pub use policy::{Breakers, CallPolicy, CircuitBreaker, Idempotent, Retry};
pub use pubsub::{PubSub, RemotePublish, Topic};
pub use recipient::Recipient;
pub use stats::{ActorStats, SystemStats, export_metrics};
pub use supervisor::{
    Backoff, Child, ChildSpec, ExitReason, Restart, Strategy, Supervisor, SupervisorRef,
};
pub use system::{
    ActorSystem, ActorSystemBuilder, DEFAULT_ASK_TIMEOUT, DEFAULT_MAILBOX_CAPACITY, SpawnOptions,
};
