//! [`PendingReply`]: the reply of an ask that has been sent but not yet answered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::error::AskError;
use crate::remote::PendingErased;

pin_project_lite::pin_project! {
    /// The future reply of an ask queued with [`ActorRef::send_ask`](crate::ActorRef::send_ask).
    ///
    /// Resolves exactly once, to the reply or an [`AskError`], no later than the ask's
    /// deadline. Dropping it abandons the reply; the message is still handled.
    #[must_use = "a pending reply does nothing unless awaited"]
    pub struct PendingReply<R> {
        source: Source<R>,
        timeout: Duration,
        #[pin]
        deadline: Sleep,
    }
}

enum Source<R> {
    Local(oneshot::Receiver<Result<R, AskError>>),
    Remote(PendingErased),
    Done,
}

impl<R: Send + 'static> PendingReply<R> {
    pub(crate) fn local(
        rx: oneshot::Receiver<Result<R, AskError>>,
        deadline: Instant,
        timeout: Duration,
    ) -> Self {
        Self {
            source: Source::Local(rx),
            timeout,
            deadline: tokio::time::sleep_until(deadline),
        }
    }

    /// The remote route enforces the same deadline; this one guards against a route that
    /// does not.
    pub(crate) fn remote(pending: PendingErased, deadline: Instant, timeout: Duration) -> Self {
        Self {
            source: Source::Remote(pending),
            timeout,
            deadline: tokio::time::sleep_until(deadline),
        }
    }
}

impl<R: Send + 'static> Future for PendingReply<R> {
    type Output = Result<R, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let ready = match this.source {
            Source::Local(rx) => match Pin::new(rx).poll(cx) {
                // The reply slot always answers; a closed channel means the actor is gone.
                Poll::Ready(r) => Some(r.unwrap_or(Err(AskError::Stopped))),
                Poll::Pending => None,
            },
            Source::Remote(fut) => match fut.as_mut().poll(cx) {
                Poll::Ready(r) => Some(r.and_then(|reply| {
                    reply.downcast::<R>().map(|b| *b).map_err(|_| {
                        AskError::Codec(format!("reply is not a {}", std::any::type_name::<R>()))
                    })
                })),
                Poll::Pending => None,
            },
            Source::Done => panic!("PendingReply polled after completion"),
        };
        if let Some(outcome) = ready {
            *this.source = Source::Done;
            return Poll::Ready(outcome);
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => {
                *this.source = Source::Done;
                Poll::Ready(Err(AskError::Timeout(*this.timeout)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R> std::fmt::Debug for PendingReply<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingReply")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
