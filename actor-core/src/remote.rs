//! The seam through which a transport crate delivers through the same [`ActorRef`].
//!
//! `actor-core` knows nothing of sockets. A ref's route is either a local mailbox or a
//! [`RemoteRoute`] that a transport supplies (see [`ActorRef::from_remote`]). Local sends
//! never touch this module: the local route is checked first and is a direct channel push.
//! A [`Resolver`] installed on the [`ActorSystem`](crate::ActorSystem) lets `lookup` find
//! names that live elsewhere.
//!
//! [`ActorRef`]: crate::ActorRef
//! [`ActorRef::from_remote`]: crate::ActorRef::from_remote

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{AskError, SendError};
use crate::id::ActorId;

/// A message erased to `Any`, with its type identity, for a route that must encode it.
pub struct ErasedMessage {
    /// `TypeId` of the message type.
    pub type_id: TypeId,
    /// Rust type name of the message, for errors.
    pub type_name: &'static str,
    /// The message itself.
    pub value: Box<dyn Any + Send>,
}

impl ErasedMessage {
    /// Erases `msg`.
    pub fn new<M: Send + 'static>(msg: M) -> Self {
        Self {
            type_id: TypeId::of::<M>(),
            type_name: std::any::type_name::<M>(),
            value: Box::new(msg),
        }
    }

    /// Borrows it, for a route's encoding, keeping it to hand back on refusal.
    pub fn as_message_ref(&self) -> MessageRef<'_> {
        MessageRef {
            type_id: self.type_id,
            type_name: self.type_name,
            value: &*self.value,
        }
    }

    /// Recovers the typed message, or gives the erased one back on a type mismatch.
    pub fn downcast<M: 'static>(self) -> Result<M, Self> {
        let ErasedMessage {
            type_id,
            type_name,
            value,
        } = self;
        value
            .downcast::<M>()
            .map(|b| *b)
            .map_err(|value| ErasedMessage {
                type_id,
                type_name,
                value,
            })
    }
}

impl fmt::Debug for ErasedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErasedMessage({})", self.type_name)
    }
}

/// A message borrowed as `Any`, for a route that encodes it before the send returns: the
/// sender keeps the message (nothing is boxed) and gets it back if the route refuses it.
#[derive(Clone, Copy)]
pub struct MessageRef<'a> {
    /// `TypeId` of the message type.
    pub type_id: TypeId,
    /// Rust type name of the message, for errors.
    pub type_name: &'static str,
    /// The message itself.
    pub value: &'a (dyn Any + Send),
}

impl<'a> MessageRef<'a> {
    /// Borrows `msg`.
    pub fn new<M: Send + 'static>(msg: &'a M) -> Self {
        Self {
            type_id: TypeId::of::<M>(),
            type_name: std::any::type_name::<M>(),
            value: msg,
        }
    }
}

impl fmt::Debug for MessageRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageRef({})", self.type_name)
    }
}

/// How far a remote tell got without waiting.
pub enum Sending<'a> {
    /// Encoded and queued; nothing left to do.
    Sent,
    /// Encoded; queued once this resolves (the route is waiting for room: flow control).
    Waiting(BoxFuture<'a, Result<(), SendError<()>>>),
}

impl fmt::Debug for Sending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sending::Sent => f.write_str("Sent"),
            Sending::Waiting(_) => f.write_str("Waiting"),
        }
    }
}

/// A reply erased to `Any`; the ref downcasts it to the message's `Reply` type.
pub type ErasedReply = Box<dyn Any + Send>;

/// Delivery to an actor that is not in this process's mailbox table (a peer node, or a group).
///
/// Implementations must keep the guarantees of [`crate`]: per-sender order for tells, exactly
/// one outcome per ask within `timeout`, and no unbounded queue between sender and receiver.
pub trait RemoteRoute: Send + Sync + 'static {
    /// The actor's id on its node.
    fn id(&self) -> ActorId;
    /// The node the actor lives on.
    fn node(&self) -> &str;
    /// The actor's registered name, if any.
    fn name(&self) -> Option<&str>;
    /// Whether sends may currently succeed (the node is connected and the actor not known dead).
    fn is_alive(&self) -> bool;
    /// Encodes a tell now and queues it, or returns the future that queues it once there is
    /// room (flow control). The caller keeps the message; an error stands for it (`()`).
    fn tell(&self, msg: MessageRef<'_>) -> Result<Sending<'_>, SendError<()>>;
    /// Delivers a tell if that is possible without waiting.
    fn try_tell(&self, msg: MessageRef<'_>) -> Result<(), SendError<()>>;
    /// Queues an ask for sending (waiting for room if needed) and returns its pending reply,
    /// which must resolve, with the reply or an error, within `timeout` of this call.
    fn send_ask(
        &self,
        msg: ErasedMessage,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PendingErased, SendError<ErasedMessage>>>;
    /// The time-out of an `ask` without an explicit one.
    fn ask_timeout(&self) -> Duration;
}

/// A source of messages for one actor, run by whichever task is free to run it: see
/// [`ActorRef::attach_feeder`](crate::ActorRef::attach_feeder).
pub type Feeder = BoxFuture<'static, ()>;

/// The pending reply of an ask queued through a [`RemoteRoute`].
pub type PendingErased = BoxFuture<'static, Result<ErasedReply, AskError>>;

/// Resolves names that this system does not host (installed by a transport crate).
pub trait Resolver: Send + Sync + 'static {
    /// A route to an actor named `name` whose Rust type is `actor_type`, if one is known.
    fn resolve(&self, name: &str, actor_type: TypeId) -> Option<Arc<dyn RemoteRoute>>;
}
