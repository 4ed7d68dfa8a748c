//! The reply channel of an ask: answered exactly once, by the handler, the actor's end, or
//! the ask's deadline, whichever comes first.
//!
//! A small mutex-guarded cell shared by the sending half (in the envelope), the receiving half
//! (the asker's future) and, weakly, the system's [`Deadlines`](crate::deadline::Deadlines),
//! so one allocation serves the channel and its time-out.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::deadline::Expire;
use crate::error::AskError;

struct State<R> {
    value: Option<Result<R, AskError>>,
    answered: bool,
    waker: Option<Waker>,
}

struct Cell<R> {
    state: Mutex<State<R>>,
    timeout: Duration,
}

impl<R> Cell<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the outcome unless one was set already (and says whether it did); wakes the
    /// asker.
    fn answer(&self, outcome: Result<R, AskError>) -> bool {
        let mut state = self.lock();
        if state.answered {
            return false;
        }
        state.answered = true;
        state.value = Some(outcome);
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

impl<R: Send> Expire for Cell<R> {
    fn expire(&self) -> bool {
        self.answer(Err(AskError::Timeout(self.timeout)))
    }
}

/// A new reply channel for an ask with `timeout`.
pub(crate) fn channel<R: Send + 'static>(timeout: Duration) -> (ReplySlot<R>, ReplyReceiver<R>) {
    let cell = Arc::new(Cell {
        state: Mutex::new(State {
            value: None,
            answered: false,
            waker: None,
        }),
        timeout,
    });
    (
        ReplySlot {
            cell: Some(Arc::clone(&cell)),
        },
        ReplyReceiver { cell },
    )
}

/// The sending half, carried by the envelope. Dropped without an answer (the handler
/// panicked, or the actor stopped before handling the message), it answers with the error.
pub(crate) struct ReplySlot<R: Send + 'static> {
    cell: Option<Arc<Cell<R>>>,
}

impl<R: Send + 'static> ReplySlot<R> {
    pub(crate) fn send(mut self, outcome: Result<R, AskError>) {
        if let Some(cell) = self.cell.take() {
            cell.answer(outcome);
        }
    }
}

impl<R: Send + 'static> Drop for ReplySlot<R> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            // A panicking handler drops its future's locals, this slot among them, while
            // unwinding (before the actor task catches the panic).
            let err = if std::thread::panicking() {
                AskError::HandlerPanicked { node: None }
            } else {
                AskError::Stopped
            };
            cell.answer(Err(err));
        }
    }
}

/// The receiving half: resolves to the outcome.
pub(crate) struct ReplyReceiver<R> {
    cell: Arc<Cell<R>>,
}

impl<R: Send + 'static> ReplyReceiver<R> {
    /// The handle the deadline keeper holds: it does not keep the channel alive.
    pub(crate) fn expiry(&self) -> Weak<dyn Expire> {
        let weak: Weak<Cell<R>> = Arc::downgrade(&self.cell);
        weak
    }
}

impl<R: Send + 'static> Future for ReplyReceiver<R> {
    type Output = Result<R, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.cell.lock();
        if let Some(outcome) = state.value.take() {
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
