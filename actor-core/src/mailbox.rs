//! The mailbox: a bounded queue of envelopes plus the control signals of its actor.
//!
//! One mailbox lives as long as the actor's *name*, not its instance: a restart swaps the
//! instance and keeps the mailbox, so refs and queued messages survive.
//!
//! # Capacity
//! At most `capacity` messages are queued or taken but not yet handled; a run of tells queued
//! together ([`Mailbox::try_push_run`]) counts each of its messages. `push` waits for room;
//! `try_push` refuses with the envelope handed back. The receiver takes everything queued in
//! one lock (a batch) and frees the batch's room when it comes back for more, which is when
//! every message of the batch has been handled.
//!
//! # Signals
//! Supervisors and the system steer the actor's task through a few flags beside the queue
//! (start, stop, terminate). They are checked between messages, so a signal never interrupts
//! a handler half-way.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};

use crate::actor::{Actor, Handler, Message};
use crate::envelope::{Enqueue, Envelope, Run};
use crate::feeder::{FeederSlot, WakeParked};
use crate::id::ActorId;
use crate::remote::Feeder;
use crate::stats::{ActorCounters, ActorStats};
use crate::system::SystemInfo;

/// A control signal to an actor's task, in increasing priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Create an instance and run it (from idle).
    Start,
    /// The actor asked to stop from outside its handler (like `ctx.stop()`).
    StopSelf,
    /// The parent stops the instance; the mailbox is kept for a later start.
    Stop,
    /// Stop for good: close the mailbox, reject what is queued, free the name.
    Terminate,
}

impl Signal {
    /// Takes the highest-priority signal raised in `bits`, clearing only that one, so a
    /// `Start` raised beside a lower-value signal is not lost.
    pub(crate) fn take(bits: &AtomicU8) -> Option<Signal> {
        let raised = bits.load(Ordering::Acquire);
        if raised == 0 {
            return None;
        }
        let signal = [
            Signal::Terminate,
            Signal::Stop,
            Signal::StopSelf,
            Signal::Start,
        ]
        .into_iter()
        .find(|s| raised & s.bit() != 0)?;
        bits.fetch_and(!signal.bit(), Ordering::AcqRel);
        Some(signal)
    }

    /// Raises this signal in `bits`.
    pub(crate) fn raise(self, bits: &AtomicU8) {
        bits.fetch_or(self.bit(), Ordering::AcqRel);
    }

    const fn bit(self) -> u8 {
        match self {
            Signal::Start => 1,
            Signal::StopSelf => 2,
            Signal::Stop => 4,
            Signal::Terminate => 8,
        }
    }
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    Full,
    Closed,
}

/// What the receiver gets next.
pub(crate) enum Received<A: Actor> {
    Message(Envelope<A>),
    Signal(Signal),
}

struct Queue<A: Actor> {
    queue: VecDeque<Envelope<A>>,
    /// Messages in `queue` (a run holds several).
    queued: usize,
    /// Messages taken by the receiver and not yet handled.
    in_hand: usize,
    closed: bool,
    rx_waker: Option<Waker>,
    /// Senders waiting for room; all are woken when room is made and each retries.
    tx_waiters: Vec<Waker>,
    /// The feeders (see [`crate::feeder`]).
    #[allow(
        clippy::box_collection,
        reason = "8 bytes in every mailbox instead of 24: few actors have feeders"
    )]
    feeders: Option<Box<Vec<Arc<FeederSlot>>>>,
    /// The receiver waits in [`Mailbox::recv`] with its waker in `rx_waker`: woken there,
    /// it runs its feeders.
    parked: bool,
    /// The receiver took a feeder's wake-up ([`WakeParked`]): it polls the feeders next, or
    /// hands them to their helpers.
    feeders_owed: bool,
}

impl<A: Actor> Queue<A> {
    /// Messages queued or taken by the receiver, not yet handled.
    fn waiting(&self) -> usize {
        self.queued + self.in_hand
    }
}

/// The shared half of an actor: identity, queue and signals. Refs point here.
pub(crate) struct Mailbox<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) system: Arc<SystemInfo>,
    capacity: usize,
    signals: AtomicU8,
    pub(crate) counters: ActorCounters,
    state: Mutex<Queue<A>>,
}

impl<A: Actor> WakeParked for Mailbox<A> {
    fn wake_parked(&self) -> bool {
        let mut q = self.lock();
        if !q.parked {
            return false;
        }
        q.parked = false;
        let Some(waker) = q.rx_waker.take() else {
            return false;
        };
        q.feeders_owed = true;
        drop(q);
        waker.wake();
        true
    }
}

impl<A: Actor> Mailbox<A> {
    pub(crate) fn new(
        id: ActorId,
        name: Option<Arc<str>>,
        capacity: usize,
        system: Arc<SystemInfo>,
    ) -> Self {
        Self {
            id,
            name,
            system,
            capacity: capacity.max(1),
            signals: AtomicU8::new(0),
            counters: ActorCounters::default(),
            state: Mutex::new(Queue {
                queue: VecDeque::new(),
                queued: 0,
                in_hand: 0,
                closed: false,
                rx_waker: None,
                tx_waiters: Vec::new(),
                feeders: None,
                parked: false,
                feeders_owed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<A>> {
        // No code panics while holding this lock; recover rather than propagate poison.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The mailbox capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages queued or in hand, not yet handled.
    pub(crate) fn len(&self) -> usize {
        self.lock().waiting()
    }

    /// How many more messages fit now.
    fn room(&self, q: &Queue<A>) -> usize {
        self.capacity.saturating_sub(q.waiting())
    }

    /// A snapshot of this actor's counters.
    pub(crate) fn stats(&self) -> ActorStats {
        self.counters.snapshot(
            self.name.as_deref().map(str::to_string),
            self.len(),
            self.capacity,
        )
    }

    /// Whether the mailbox still accepts messages.
    pub(crate) fn is_open(&self) -> bool {
        !self.lock().closed
    }

    /// Queues `env` if there is room, else hands it back.
    pub(crate) fn try_push<E: Enqueue<A>>(&self, env: E) -> Result<(), (PushError, E)> {
        let q = self.lock();
        if q.closed {
            return Err((PushError::Closed, env));
        }
        if self.room(&q) == 0 {
            return Err((PushError::Full, env));
        }
        queue_and_wake(q, env.into_envelope(), 1);
        Ok(())
    }

    /// Queues the messages at the front of `msgs`, in order, as many as there is room for,
    /// as one run: one envelope, one lock, at most one wake-up. Returns how many were queued;
    /// the rest stay in `msgs`.
    pub(crate) fn try_push_run<M>(&self, msgs: &mut VecDeque<M>) -> Result<usize, PushError>
    where
        A: Handler<M>,
        M: Message,
    {
        // Boxed before the lock, for all of them: they almost always fit.
        let mut run = Run::new(std::mem::take(msgs));
        let q = self.lock();
        let closed = q.closed;
        let n = if closed {
            0
        } else {
            self.room(&q).min(run.len())
        };
        if n < run.len() {
            // What does not fit goes back, in order (rare: the mailbox is full or closed).
            *msgs = run.split_off(n);
        }
        if n == 0 {
            return if closed {
                Err(PushError::Closed)
            } else {
                Ok(0)
            };
        }
        queue_and_wake(q, Envelope::Run(run), n);
        Ok(n)
    }

    /// Queues `env`, waiting for room. Hands it back if the mailbox is closed.
    ///
    /// Cancel-safe: dropping the future before it completes leaves nothing queued.
    pub(crate) async fn push<E: Enqueue<A>>(&self, env: E) -> Result<(), E> {
        let mut env = Some(env);
        poll_fn(|cx| {
            let mut q = self.lock();
            let Some(e) = env.take() else {
                return Poll::Ready(Ok(()));
            };
            if q.closed {
                return Poll::Ready(Err(e));
            }
            if self.room(&q) == 0 {
                q.tx_waiters.push(cx.waker().clone());
                env = Some(e);
                return Poll::Pending;
            }
            queue_and_wake(q, e.into_envelope(), 1);
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Hands `feeder` over: from now on it runs in the actor's task while the actor waits
    /// for messages, and in a helper task while it is busy (see [`crate::feeder`]). Handed
    /// back if the mailbox is closed, or when called outside a Tokio runtime.
    pub(crate) fn attach_feeder(self: &Arc<Self>, feeder: Feeder) -> Result<(), Feeder> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(feeder);
        };
        let mut q = self.lock();
        if q.closed {
            return Err(feeder);
        }
        let actor = Arc::downgrade(self) as Weak<dyn WakeParked>;
        let slot = FeederSlot::new(feeder, actor);
        q.feeders.get_or_insert_default().push(Arc::clone(&slot));
        drop(q);
        // Closed meanwhile, the helper finds the slot closed and ends.
        slot.start_helper(&runtime);
        Ok(())
    }

    /// Raises `signal` and wakes the actor's task.
    pub(crate) fn signal(&self, signal: Signal) {
        signal.raise(&self.signals);
        let waker = self.lock().rx_waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether a signal is raised and not yet taken.
    pub(crate) fn has_signal(&self) -> bool {
        self.signals.load(Ordering::Acquire) != 0
    }

    fn take_signal(&self) -> Option<Signal> {
        Signal::take(&self.signals)
    }

    /// The next signal or message. Signals come first; messages come from `batch`, which is
    /// refilled with everything queued when empty. When nothing is queued, the feeders run
    /// here, in the actor's task: what they push is taken in the same poll, without a
    /// wake-up. `None` once closed and drained.
    pub(crate) async fn recv(&self, batch: &mut VecDeque<Envelope<A>>) -> Received<A> {
        poll_fn(|cx| {
            if let Some(s) = self.take_signal() {
                self.leave_feeders();
                return Poll::Ready(Received::Signal(s));
            }
            if let Some(env) = batch.pop_front() {
                return Poll::Ready(Received::Message(env));
            }
            let mut q = self.lock();
            q.parked = false;
            let owed = std::mem::take(&mut q.feeders_owed);
            let mut room_waiters = self.refill(&mut q, batch);
            // When idle, or woken for them even if messages came meanwhile.
            let polled = if batch.is_empty() || owed {
                q.feeders.take()
            } else {
                None
            };
            if let Some(mut feeders) = polled {
                // Polled without the lock: they deliver into this mailbox. Only this task
                // takes them out and closes the mailbox, so none is missed meanwhile.
                drop(q);
                feeders.retain(|feeder| !feeder.poll());
                q = self.lock();
                put_back(&mut q, feeders);
                if batch.is_empty() {
                    // Room waiters are woken after the poll: a feeder among them has just
                    // used the room, and waking it first would send its helper after it.
                    room_waiters.extend(self.refill(&mut q, batch));
                }
            }
            if let Some(env) = batch.pop_front() {
                drop(q);
                room_waiters.into_iter().for_each(Waker::wake);
                return Poll::Ready(Received::Message(env));
            }
            register(&mut q.rx_waker, cx.waker());
            q.parked = true;
            drop(q);
            room_waiters.into_iter().for_each(Waker::wake);
            // A signal raised between the first check and the registration found no waker.
            match self.take_signal() {
                Some(s) => {
                    self.leave_feeders();
                    Poll::Ready(Received::Signal(s))
                }
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The receiver leaves [`recv`](Self::recv) for a signal, and no longer parked there:
    /// the feeders' wake-ups go to their helpers, and one it took is passed on to them.
    fn leave_feeders(&self) {
        let mut q = self.lock();
        q.parked = false;
        if !std::mem::take(&mut q.feeders_owed) {
            return;
        }
        let feeders = q.feeders.take();
        drop(q);
        let Some(feeders) = feeders else { return };
        feeders.iter().for_each(|f| f.wake_helper());
        put_back(&mut self.lock(), feeders);
    }

    /// Waits for the next signal, leaving messages queued.
    pub(crate) async fn wait_signal(&self) -> Signal {
        poll_fn(|cx| {
            if let Some(s) = self.take_signal() {
                return Poll::Ready(s);
            }
            let mut q = self.lock();
            register(&mut q.rx_waker, cx.waker());
            q.parked = false;
            drop(q);
            match self.take_signal() {
                Some(s) => Poll::Ready(s),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Moves every queued message into `batch` (empty on entry), freeing the room of the
    /// previous batch, whose messages have all been handled by now. Returns the senders to
    /// wake (after the lock is released) when that made room.
    fn refill(&self, q: &mut Queue<A>, batch: &mut VecDeque<Envelope<A>>) -> Vec<Waker> {
        std::mem::swap(&mut q.queue, batch);
        q.in_hand = std::mem::take(&mut q.queued);
        if q.in_hand < self.capacity {
            std::mem::take(&mut q.tx_waiters)
        } else {
            Vec::new()
        }
    }

    /// Stops the feeders for good (after [`close`](Self::close): none is attached since).
    pub(crate) fn close_feeders(&self) {
        let feeders = self.lock().feeders.take();
        feeders
            .iter()
            .flat_map(|f| f.iter())
            .for_each(|f| f.close());
    }

    /// Waits until the mailbox is closed for good.
    pub(crate) async fn closed(&self) {
        poll_fn(|cx| {
            let mut q = self.lock();
            if q.closed {
                return Poll::Ready(());
            }
            // Woken on close (and, harmlessly, when room is made: then it registers again).
            q.tx_waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Closes the mailbox for good and returns everything still queued, for rejection.
    pub(crate) fn close(&self) -> VecDeque<Envelope<A>> {
        let mut q = self.lock();
        q.closed = true;
        q.in_hand = 0;
        q.queued = 0;
        let rest = std::mem::take(&mut q.queue);
        let waiters = std::mem::take(&mut q.tx_waiters);
        drop(q);
        for w in waiters {
            w.wake();
        }
        rest
    }
}

/// Puts `feeders` back into the queue, before any attached meanwhile.
#[allow(
    clippy::box_collection,
    reason = "the queue keeps its feeders boxed, see `Queue::feeders`"
)]
fn put_back<A: Actor>(q: &mut Queue<A>, mut feeders: Box<Vec<Arc<FeederSlot>>>) {
    if let Some(attached) = q.feeders.take() {
        feeders.extend(*attached);
    }
    if !feeders.is_empty() {
        q.feeders = Some(feeders);
    }
}

/// Queues `env`, holding `count` messages, releases the lock and wakes the receiver if it
/// waits: the one way into the queue, so the count of queued messages stays true.
fn queue_and_wake<A: Actor>(mut q: MutexGuard<'_, Queue<A>>, env: Envelope<A>, count: usize) {
    q.queue.push_back(env);
    q.queued += count;
    let waker = q.rx_waker.take();
    drop(q);
    if let Some(w) = waker {
        w.wake();
    }
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
