//! The three traits a user implements: [`Actor`], [`Message`] and [`Handler`].
//!
//! Handlers are plain `async fn`s: the trait declares `impl Future + Send`, so an
//! implementation writes `async fn handle(..)` and no macro is needed.

use std::future::Future;

use crate::context::Context;
use crate::error::BoxError;

/// A unit of state that handles messages one at a time.
///
/// An actor instance is owned by its task; nothing else touches it, so handlers take
/// `&mut self` and need no locks. Each message is handled to completion before the next
/// one starts.
///
/// # Lifecycle
/// - [`started`](Actor::started) runs once per instance before the first message. An error
///   or a panic there is a *failure*: the instance never handles a message, the spawn
///   returns [`SpawnError::StartFailed`](crate::SpawnError) (first start) or the supervisor
///   counts it against its restart intensity (a restart).
/// - [`stopped`](Actor::stopped) runs when the instance stops in order: `ctx.stop()`, a stop
///   by its supervisor or the system shutdown. It does not run after a panic, since the
///   state may be broken half-way through an update.
pub trait Actor: Send + Sized + 'static {
    /// Runs before the first message of each instance (initial start and every restart).
    fn started(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs when the instance stops in order; queued messages are still in the mailbox.
    fn stopped(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }
}

/// A message an actor can handle, and the type of its reply.
///
/// Use `()` as the reply for messages that are only ever told.
pub trait Message: Send + 'static {
    /// What the handler returns to an `ask`.
    type Reply: Send + 'static;
}

/// Handling of one message type by one actor type.
pub trait Handler<M: Message>: Actor {
    /// Handles `msg`. A panic here is caught at the actor's boundary: the asker gets
    /// [`AskError::HandlerPanicked`](crate::AskError) and the supervisor restarts the actor.
    fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> impl Future<Output = M::Reply> + Send;
}
