//! Ask time-outs of one system, kept by one task instead of a Tokio timer per ask.
//!
//! Arming a Tokio timer per ask costs more than the ask itself (the timer driver's lock, and
//! waking a parked worker whenever a new timer is the earliest). Here each ask appends its
//! deadline to a queue per time-out length: with one length, deadlines arrive in order, so
//! each queue is sorted and its front is its earliest. One keeper task sleeps until the
//! earliest front and answers expired asks with `Timeout`.
//!
//! An ask answered in time leaves a dead entry (a `Weak` that no longer upgrades). Each new
//! ask first drops the dead entries at the front of its queue, so in the common case (asks
//! answered in order) a queue holds only the asks actually in flight, and an answered ask's
//! memory is released at once; a queue that doubled behind a long-running ask is compacted
//! whole, so it stays proportional to the asks in flight.
//!
//! The keeper lingers: with nothing left to watch it sleeps on for [`LINGER`], and exits only
//! if no ask came in that time (the next ask starts it again). An ask answered before the
//! keeper first looks leaves nothing to watch, so a keeper that exited at once would be
//! spawned again by nearly every ask, a task spawn (and often a parked worker woken) per ask.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::stats::SystemCounters;

/// Something that can be answered with a time-out.
pub(crate) trait Expire: Send + Sync {
    /// Answers with a time-out; returns whether that was the answer (not one already given).
    fn expire(&self) -> bool;
}

struct Entry {
    at: Instant,
    cell: Weak<dyn Expire>,
}

impl Entry {
    fn is_dead(&self) -> bool {
        self.cell.strong_count() == 0
    }
}

/// How long the keeper stays with nothing to watch before it exits, unless an ask comes.
const LINGER: Duration = Duration::from_secs(1);

/// Compaction starts at this many entries in one queue.
const MIN_COMPACT: usize = 4096;

/// The asks with one time-out length, in deadline order.
struct Queue {
    timeout: Duration,
    entries: VecDeque<Entry>,
    /// Compact (drop every dead entry) when the queue reaches this length.
    compact_at: usize,
}

impl Queue {
    /// Drops dead entries at the front, and everywhere when a long-running ask at the front
    /// has let answered ones pile up behind it (amortized: only after the queue doubled).
    fn prune(&mut self) {
        while self.entries.front().is_some_and(Entry::is_dead) {
            self.entries.pop_front();
        }
        if self.entries.len() >= self.compact_at {
            self.entries.retain(|e| !e.is_dead());
            self.compact_at = MIN_COMPACT.max(2 * self.entries.len());
        }
    }
}

struct State {
    /// A handful at most: one per time-out length in use.
    queues: Vec<Queue>,
    /// When the keeper wakes next, if it is sleeping.
    keeper_wakes_at: Option<Instant>,
    keeper_running: bool,
    keeper: Option<tokio::task::JoinHandle<()>>,
    /// An ask was watched since the keeper last looked: a keeper with nothing left lingers.
    watched: bool,
    /// The system is shutting down: a keeper with nothing left exits at once.
    closing: bool,
}

/// The deadlines of the asks in flight in one system.
pub(crate) struct Deadlines {
    state: Mutex<State>,
    wake: Notify,
    counters: Arc<SystemCounters>,
}

impl Deadlines {
    pub(crate) fn new(counters: Arc<SystemCounters>) -> Self {
        Self {
            state: Mutex::new(State {
                queues: Vec::new(),
                keeper_wakes_at: None,
                keeper_running: false,
                keeper: None,
                watched: false,
                closing: false,
            }),
            wake: Notify::new(),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers `cell` with a time-out at `at` (`timeout` after the ask began) unless it is
    /// answered, and dropped, before.
    pub(crate) fn watch(self: &Arc<Self>, at: Instant, timeout: Duration, cell: Weak<dyn Expire>) {
        let mut state = self.lock();
        let queue = match state.queues.iter().position(|q| q.timeout == timeout) {
            Some(i) => &mut state.queues[i],
            None => {
                state.queues.push(Queue {
                    timeout,
                    entries: VecDeque::new(),
                    compact_at: MIN_COMPACT,
                });
                let last = state.queues.len() - 1;
                &mut state.queues[last]
            }
        };
        queue.prune();
        queue.entries.push_back(Entry { at, cell });
        state.watched = true;
        // A keeper whose runtime dropped it never said it stopped: start another.
        let gone = state.keeper.as_ref().is_some_and(|k| k.is_finished());
        if !state.keeper_running || gone {
            state.keeper_running = true;
            state.keeper = Some(tokio::spawn(keep(Arc::clone(self))));
        } else if state.keeper_wakes_at.is_none_or(|wake| at < wake) {
            state.keeper_wakes_at = Some(at);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Drops the entries of answered asks and, if none are left, waits for the keeper to
    /// exit (used at shutdown, so no task outlives the system).
    pub(crate) async fn compact(&self) {
        let keeper = {
            let mut state = self.lock();
            state.closing = true;
            for queue in &mut state.queues {
                queue.entries.retain(|e| !e.is_dead());
            }
            state.queues.retain(|q| !q.entries.is_empty());
            if state.queues.is_empty() {
                state.keeper.take()
            } else {
                None
            }
        };
        self.wake.notify_one();
        if let Some(keeper) = keeper {
            let _ = keeper.await;
        }
    }

    /// Takes the expired entries out, drops dead fronts, and says when to wake next.
    fn expired(&self, now: Instant) -> (Vec<Weak<dyn Expire>>, Option<Instant>) {
        let mut state = self.lock();
        let mut expired = Vec::new();
        for queue in &mut state.queues {
            while let Some(front) = queue.entries.front() {
                if front.is_dead() {
                    queue.entries.pop_front();
                } else if front.at <= now {
                    if let Some(e) = queue.entries.pop_front() {
                        expired.push(e.cell);
                    }
                } else {
                    break;
                }
            }
        }
        state.queues.retain(|q| !q.entries.is_empty());
        let mut next = state
            .queues
            .iter()
            .filter_map(|q| q.entries.front().map(|e| e.at))
            .min();
        if next.is_none() && std::mem::take(&mut state.watched) && !state.closing {
            next = Some(now + LINGER);
        }
        state.keeper_wakes_at = next;
        if next.is_none() {
            state.keeper_running = false;
        }
        (expired, next)
    }
}

/// The keeper: sleeps until the earliest deadline, answers what expired, repeats.
async fn keep(deadlines: Arc<Deadlines>) {
    loop {
        let (expired, next) = deadlines.expired(Instant::now());
        for cell in expired {
            if let Some(cell) = cell.upgrade() {
                if cell.expire() {
                    crate::stats::bump(&deadlines.counters.asks_timed_out);
                }
            }
        }
        let Some(at) = next else { return };
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = deadlines.wake.notified() => {}
        }
    }
}
