//! [`Callee`]: what a call policy can ask, implemented for [`ActorRef`] and [`Recipient`].

use std::future::Future;
use std::time::Duration;

use crate::actor::{Handler, Message};
use crate::actor_ref::ActorRef;
use crate::error::AskError;
use crate::recipient::Recipient;

/// A handle a [`CallPolicy`](super::CallPolicy) can send asks of `M` through.
///
/// Implemented for [`ActorRef<A>`] (when `A: Handler<M>`) and [`Recipient<M>`], local or
/// remote alike: every attempt goes through their `ask_timeout` / `ask`, so the guarantees of
/// an ask hold for each attempt. Implement it for a handle of your own (a test double, a
/// load balancer) if it keeps those guarantees.
pub trait Callee<M: Message>: Send + Sync {
    /// The node the target lives on (the `node` metric label).
    fn node(&self) -> &str;

    /// The target's registered name, if it has one (the `service` metric label when the
    /// policy has no breaker).
    fn name(&self) -> Option<&str> {
        None
    }

    /// One ask of `msg`: at most `timeout`, or the handle's default ask time-out when `None`.
    /// Exactly one outcome, never later than the time-out.
    fn ask_within(
        &self,
        msg: M,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<M::Reply, AskError>> + Send;
}

impl<A, M> Callee<M> for ActorRef<A>
where
    A: Handler<M>,
    M: Message,
{
    fn node(&self) -> &str {
        ActorRef::node(self)
    }

    fn name(&self) -> Option<&str> {
        ActorRef::name(self)
    }

    async fn ask_within(&self, msg: M, timeout: Option<Duration>) -> Result<M::Reply, AskError> {
        match timeout {
            Some(timeout) => self.ask_timeout(msg, timeout).await,
            None => self.ask(msg).await,
        }
    }
}

impl<M: Message> Callee<M> for Recipient<M> {
    fn node(&self) -> &str {
        Recipient::node(self)
    }

    fn name(&self) -> Option<&str> {
        Recipient::name(self)
    }

    async fn ask_within(&self, msg: M, timeout: Option<Duration>) -> Result<M::Reply, AskError> {
        match timeout {
            Some(timeout) => self.ask_timeout(msg, timeout).await,
            None => self.ask(msg).await,
        }
    }
}
