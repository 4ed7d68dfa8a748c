//! The cell of one local ask: the message, its reply and the asker's waker, in one allocation
//! shared by the envelope in the mailbox, the asker's future and, weakly, the system's
//! [`Deadlines`](crate::deadline::Deadlines).
//!
//! The ask is answered exactly once, by the handler, the actor's end, or the deadline,
//! whichever comes first; later answers are ignored. Folding the message into the reply
//! channel saves the ask one allocation (and a free on another thread) against a boxed
//! envelope plus a separate channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::actor::Message;
use crate::deadline::Expire;
use crate::error::AskError;
use crate::trace::TraceContext;

struct State<M: Message> {
    /// The request, until the actor takes it to handle it.
    msg: Option<M>,
    /// The outcome, until the asker takes it.
    outcome: Option<Result<M::Reply, AskError>>,
    answered: bool,
    waker: Option<Waker>,
}

/// One ask's shared cell.
pub(crate) struct AskCell<M: Message> {
    state: Mutex<State<M>>,
    timeout: Duration,
    trace: Option<TraceContext>,
}

impl<M: Message> AskCell<M> {
    /// A new ask of `msg` with `timeout`, sent from the current trace context.
    pub(crate) fn new(msg: M, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                msg: Some(msg),
                outcome: None,
                answered: false,
                waker: None,
            }),
            timeout,
            trace: TraceContext::current(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // Nothing panics while holding this lock; recover rather than propagate poison.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the request out: the actor, to handle it, or the sender, when delivery failed.
    pub(crate) fn take_message(&self) -> Option<M> {
        self.lock().msg.take()
    }

    /// The trace context the ask was sent from.
    pub(crate) fn trace(&self) -> Option<TraceContext> {
        self.trace
    }

    /// Sets the outcome unless one was set already (and says whether it did); wakes the
    /// asker.
    pub(crate) fn answer(&self, outcome: Result<M::Reply, AskError>) -> bool {
        let mut state = self.lock();
        if state.answered {
            return false;
        }
        state.answered = true;
        state.outcome = Some(outcome);
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Answers with the error for an ask nobody will answer any more: the handler panicked
    /// (its future is being dropped while unwinding), or the message was dropped unhandled.
    pub(crate) fn abandon(&self) {
        let err = if std::thread::panicking() {
            AskError::HandlerPanicked { node: None }
        } else {
            AskError::Stopped
        };
        self.answer(Err(err));
    }
}

impl<M: Message> Expire for AskCell<M> {
    fn expire(&self) -> bool {
        self.answer(Err(AskError::Timeout(self.timeout)))
    }
}

/// The asker's view of a cell, erased to the reply type.
trait ReplyPoll<R>: Send + Sync {
    fn poll_reply(&self, cx: &mut Context<'_>) -> Poll<Result<R, AskError>>;
}

impl<M: Message> ReplyPoll<M::Reply> for AskCell<M> {
    fn poll_reply(&self, cx: &mut Context<'_>) -> Poll<Result<M::Reply, AskError>> {
        let mut state = self.lock();
        if let Some(outcome) = state.outcome.take() {
            return Poll::Ready(outcome);
        }
        if state.answered {
            // Polled again after completion.
            return Poll::Ready(Err(AskError::Stopped));
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The asker's end: resolves to the outcome.
pub(crate) struct ReplyReceiver<R> {
    cell: Arc<dyn ReplyPoll<R>>,
}

impl<R: Send + 'static> ReplyReceiver<R> {
    /// The receiving end of `cell`, and the handle the deadline keeper holds (which does not
    /// keep the cell alive).
    pub(crate) fn new<M>(cell: &Arc<AskCell<M>>) -> (Self, Weak<dyn Expire>)
    where
        M: Message<Reply = R>,
    {
        let weak: Weak<AskCell<M>> = Arc::downgrade(cell);
        let rx = Self {
            cell: Arc::clone(cell) as Arc<dyn ReplyPoll<R>>,
        };
        (rx, weak)
    }
}

impl<R: Send + 'static> Future for ReplyReceiver<R> {
    type Output = Result<R, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_reply(cx)
    }
}

/// The replying end, held by the handler's future: answers with its outcome, or, dropped
/// without one (the handler panicked, or its future was dropped), with the error.
pub(crate) struct Answer<M: Message> {
    cell: Option<Arc<AskCell<M>>>,
}

impl<M: Message> Answer<M> {
    pub(crate) fn new(cell: Arc<AskCell<M>>) -> Self {
        Self { cell: Some(cell) }
    }

    pub(crate) fn send(mut self, reply: M::Reply) {
        if let Some(cell) = self.cell.take() {
            cell.answer(Ok(reply));
        }
    }
}

impl<M: Message> Drop for Answer<M> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            // A panicking handler drops its future's locals, this one among them, while
            // unwinding (before the actor task catches the panic).
            cell.abandon();
        }
    }
}
