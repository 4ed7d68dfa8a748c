//! [`PendingReply`]: the reply of an ask that has been sent but not yet answered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::AskError;
use crate::remote::PendingErased;
use crate::reply::ReplyReceiver;

/// The future reply of an ask queued with [`ActorRef::send_ask`](crate::ActorRef::send_ask).
///
/// Resolves exactly once, to the reply or an [`AskError`], no later than the ask's
/// deadline. Dropping it abandons the reply; the message is still handled.
#[must_use = "a pending reply does nothing unless awaited"]
pub struct PendingReply<R: Send + 'static> {
    source: Source<R>,
}

enum Source<R: Send + 'static> {
    /// Local: the system's deadline keeper enforces the time-out.
    Local(ReplyReceiver<R>),
    /// Remote: the route enforces the time-out.
    Remote(PendingErased),
}

impl<R: Send + 'static> PendingReply<R> {
    pub(crate) fn local(rx: ReplyReceiver<R>) -> Self {
        Self {
            source: Source::Local(rx),
        }
    }

    pub(crate) fn remote(pending: PendingErased) -> Self {
        Self {
            source: Source::Remote(pending),
        }
    }
}

impl<R: Send + 'static> Future for PendingReply<R> {
    type Output = Result<R, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.source {
            Source::Local(rx) => Pin::new(rx).poll(cx),
            Source::Remote(fut) => fut.as_mut().poll(cx).map(|r| {
                r.and_then(|reply| {
                    reply.downcast::<R>().map(|b| *b).map_err(|_| {
                        AskError::Codec(format!("reply is not a {}", std::any::type_name::<R>()))
                    })
                })
            }),
        }
    }
}

impl<R: Send + 'static> std::fmt::Debug for PendingReply<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::Local(_) => "local",
            Source::Remote(_) => "remote",
        };
        f.debug_tuple("PendingReply").field(&kind).finish()
    }
}
