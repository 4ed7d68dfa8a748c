//! Feeders: sources of messages for one actor (a transport's stream) run by whichever task
//! is free to run them.
//!
//! A feeder runs in the actor's own task while the actor is idle, and in a helper task of
//! its own while the actor is busy. A request-reply exchange is then one task: what wakes
//! the feeder wakes the idle actor itself, which reads the message, handles it and sends the
//! reply, with no task in between. (Tokio runs at most three woken tasks in a row on one
//! worker before it wakes another worker to share them; a task fewer keeps a round trip on
//! one worker.) A flood instead finds the actor busy, so the helper reads on while the actor
//! handles, on another worker. And a slow handler never holds up the feeder: the other
//! targets a stream carries keep being served.
//!
//! Which task runs the feeder is decided when it is woken: the waker it is polled with is
//! the slot's own, which wakes the actor if it is parked waiting for messages and the helper
//! otherwise. One poll at a time: a wake during a poll makes the poller poll again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

use crate::remote::Feeder;

/// Nobody polls the feeder and no wake is pending.
const IDLE: u8 = 0;
/// A task is polling it.
const POLLING: u8 = 1;
/// A task is polling it and it was woken meanwhile: the poller polls again.
const NOTIFIED: u8 = 2;
/// It completed, panicked or was closed: nobody polls it again.
const DONE: u8 = 3;

/// Polls in a row by one task when woken meanwhile, before it hands the feeder over.
const MAX_REPOLLS: usize = 4;

/// Wakes an actor's task if it is parked waiting for messages (there it runs its feeders).
pub(crate) trait WakeParked: Send + Sync {
    /// Wakes the actor's task if it is parked in its mailbox; returns whether it was.
    fn wake_parked(&self) -> bool;
}

/// One feeder, shared by the actor's task and its helper.
pub(crate) struct FeederSlot {
    state: AtomicU8,
    /// Woken since its last poll began: a poll now may find work. A feeder not woken since
    /// is left alone (its last poll ended waiting, with its waker registered).
    woken: AtomicBool,
    feeder: Mutex<Option<Feeder>>,
    /// The helper task's waker.
    helper: AtomicWaker,
    actor: Weak<dyn WakeParked>,
}

impl FeederSlot {
    /// Makes the slot of `feeder` for the actor `actor`. Nothing runs it until its helper is
    /// [started](Self::start_helper).
    pub(crate) fn new(feeder: Feeder, actor: Weak<dyn WakeParked>) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(IDLE),
            woken: AtomicBool::new(true),
            feeder: Mutex::new(Some(feeder)),
            helper: AtomicWaker::new(),
            actor,
        })
    }

    /// Starts the helper task on `runtime`; it runs the feeder first (the actor takes over
    /// when the feeder is woken while the actor is parked).
    pub(crate) fn start_helper(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        runtime.spawn(help(Arc::clone(self)));
    }

    /// Hands the feeder to its helper: the actor took a wake-up meant for it and will not
    /// poll it now.
    pub(crate) fn wake_helper(&self) {
        self.helper.wake();
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Polls the feeder unless another task is polling it, again while it is woken
    /// meanwhile (a few times; then the wake is passed on as any other). Returns whether it
    /// is done.
    pub(crate) fn poll(self: &Arc<Self>) -> bool {
        if !self.woken.load(Ordering::Acquire) || self.swap_state(IDLE, POLLING).is_err() {
            return self.is_done();
        }
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        let mut polls = 0;
        loop {
            self.woken.store(false, Ordering::Release);
            if self.poll_once(&mut cx) {
                self.finish();
                return true;
            }
            polls += 1;
            let again = if polls < MAX_REPOLLS { POLLING } else { IDLE };
            match self.swap_state(POLLING, IDLE) {
                Ok(()) => return false,
                // Woken while polling: what woke it is looked at now, or passed on.
                Err(NOTIFIED) => match self.swap_state(NOTIFIED, again) {
                    Ok(()) if again == POLLING => {}
                    Ok(()) => {
                        self.route();
                        return false;
                    }
                    Err(_) => break,
                },
                Err(_) => break,
            }
        }
        // Closed while polling: the poller drops it.
        self.drop_feeder();
        true
    }

    fn swap_state(&self, from: u8, to: u8) -> Result<(), u8> {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// Polls the feeder once; returns whether it is done (completed or panicked).
    fn poll_once(&self, cx: &mut Context<'_>) -> bool {
        let mut feeder = self.feeder.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = feeder.as_mut() else {
            return true;
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(())) => true,
            Err(_) => {
                tracing::error!("a message feeder panicked; it is dropped");
                true
            }
        }
    }

    /// The feeder completed or panicked: drops it and ends the helper.
    fn finish(&self) {
        self.state.store(DONE, Ordering::Release);
        self.drop_feeder();
        self.helper.wake();
    }

    /// Drops the feeder (it may hold a stream, which then ends). A panic in its drop is
    /// caught: the actor whose task may be dropping it is not its caller.
    fn drop_feeder(&self) {
        let feeder = self
            .feeder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if std::panic::catch_unwind(AssertUnwindSafe(|| drop(feeder))).is_err() {
            tracing::error!("a message feeder panicked while dropped");
        }
    }

    /// Stops the feeder for good (the actor stopped): dropped now, or by its poller once the
    /// poll under way returns.
    pub(crate) fn close(&self) {
        if self.state.swap(DONE, Ordering::AcqRel) == IDLE {
            self.drop_feeder();
        }
        self.helper.wake();
    }

    /// Wakes whichever task should run the feeder now.
    fn route(&self) {
        let parked = self.actor.upgrade().is_some_and(|a| a.wake_parked());
        if !parked {
            self.helper.wake();
        }
    }
}

impl Wake for FeederSlot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        let mut state = self.state.load(Ordering::SeqCst);
        loop {
            match state {
                IDLE => return self.route(),
                POLLING => match self.swap_state(POLLING, NOTIFIED) {
                    Ok(()) => return,
                    Err(now) => state = now,
                },
                _ => return,
            }
        }
    }
}

/// The helper task: runs the feeder whenever it is woken, until the feeder is done. Dropped
/// before that (the runtime shuts down), it closes the slot: the feeder, which may hold what
/// holds the actor, does not outlive both of the tasks that run it.
async fn help(slot: Arc<FeederSlot>) {
    let closing = CloseOnDrop(slot);
    let slot = &closing.0;
    std::future::poll_fn(|cx| {
        slot.helper.register(cx.waker());
        if slot.poll() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

struct CloseOnDrop(Arc<FeederSlot>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl std::fmt::Debug for FeederSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeederSlot")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
