//! [`Recipient`]: a ref erased to one message type.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::actor::{Handler, Message};
use crate::actor_ref::ActorRef;
use crate::error::{AskError, SendError};
use crate::id::ActorId;

/// A handle that accepts one message type `M`, whatever the actor behind it.
///
/// Use it where the caller must not know the actor type (subscribers, callbacks). Same
/// guarantees as [`ActorRef`]; each send costs one extra allocation for the erased future.
pub struct Recipient<M: Message> {
    inner: Arc<dyn ErasedRef<M>>,
}

trait ErasedRef<M: Message>: Send + Sync {
    fn tell(&self, msg: M) -> BoxFuture<'_, Result<(), SendError<M>>>;
    fn try_tell(&self, msg: M) -> Result<(), SendError<M>>;
    fn ask(&self, msg: M, timeout: Option<Duration>) -> BoxFuture<'_, Result<M::Reply, AskError>>;
    fn id(&self) -> ActorId;
    fn node(&self) -> &str;
    fn name(&self) -> Option<&str>;
    fn is_alive(&self) -> bool;
}

impl<A, M> ErasedRef<M> for ActorRef<A>
where
    A: Handler<M>,
    M: Message,
{
    fn tell(&self, msg: M) -> BoxFuture<'_, Result<(), SendError<M>>> {
        Box::pin(ActorRef::tell(self, msg))
    }
    fn try_tell(&self, msg: M) -> Result<(), SendError<M>> {
        ActorRef::try_tell(self, msg)
    }
    fn ask(&self, msg: M, timeout: Option<Duration>) -> BoxFuture<'_, Result<M::Reply, AskError>> {
        match timeout {
            Some(t) => Box::pin(ActorRef::ask_timeout(self, msg, t)),
            None => Box::pin(ActorRef::ask(self, msg)),
        }
    }
    fn id(&self) -> ActorId {
        ActorRef::id(self)
    }
    fn node(&self) -> &str {
        ActorRef::node(self)
    }
    fn name(&self) -> Option<&str> {
        ActorRef::name(self)
    }
    fn is_alive(&self) -> bool {
        ActorRef::is_alive(self)
    }
}

impl<M: Message> Recipient<M> {
    pub(crate) fn new<A: Handler<M>>(actor: ActorRef<A>) -> Self {
        Self {
            inner: Arc::new(actor),
        }
    }

    /// Sends `msg`, waiting for mailbox room; see [`ActorRef::tell`].
    pub async fn tell(&self, msg: M) -> Result<(), SendError<M>> {
        self.inner.tell(msg).await
    }

    /// Sends `msg` if possible without waiting; see [`ActorRef::try_tell`].
    pub fn try_tell(&self, msg: M) -> Result<(), SendError<M>> {
        self.inner.try_tell(msg)
    }

    /// Sends `msg` and waits for the reply with the default time-out; see [`ActorRef::ask`].
    pub async fn ask(&self, msg: M) -> Result<M::Reply, AskError> {
        self.inner.ask(msg, None).await
    }

    /// Sends `msg` and waits for the reply at most `timeout`; see [`ActorRef::ask_timeout`].
    pub async fn ask_timeout(&self, msg: M, timeout: Duration) -> Result<M::Reply, AskError> {
        self.inner.ask(msg, Some(timeout)).await
    }

    /// The actor's id on its node.
    pub fn id(&self) -> ActorId {
        self.inner.id()
    }

    /// The node the actor lives on.
    pub fn node(&self) -> &str {
        self.inner.node()
    }

    /// The actor's registered name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.inner.name()
    }

    /// Whether sends may currently succeed.
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}

impl<M: Message> Clone for Recipient<M> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Message> PartialEq for Recipient<M> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id() && self.node() == other.node()
    }
}

impl<M: Message> Eq for Recipient<M> {}

impl<M: Message> Hash for Recipient<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.node().hash(state);
        self.id().hash(state);
    }
}

impl<M: Message> fmt::Debug for Recipient<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Recipient<{}>({}/{}{})",
            crate::actor_ref::short_type_name::<M>(),
            self.node(),
            self.inner.name().unwrap_or(""),
            self.id()
        )
    }
}
