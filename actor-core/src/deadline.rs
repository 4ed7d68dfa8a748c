//! Ask time-outs of one system, kept by one task instead of a Tokio timer per ask.
//!
//! Arming a Tokio timer per ask costs more than the ask itself (the timer driver's lock, and
//! waking a parked worker whenever a new timer is the earliest). Here each ask adds its
//! deadline to a heap; one keeper task sleeps until the earliest deadline and answers expired
//! asks with `Timeout`. Asks answered in time leave a dead entry (a `Weak` that no longer
//! upgrades), dropped when it reaches the top or when the heap is compacted, which happens
//! when it has doubled since the last compaction, so the heap stays proportional to the asks
//! actually in flight. The keeper exits when nothing is left to watch and is started again by
//! the next ask.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

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

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest deadline on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

const MIN_COMPACT: usize = 1024;

struct State {
    heap: BinaryHeap<Entry>,
    compact_at: usize,
    keeper_running: bool,
    keeper: Option<tokio::task::JoinHandle<()>>,
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
                heap: BinaryHeap::new(),
                compact_at: MIN_COMPACT,
                keeper_running: false,
                keeper: None,
            }),
            wake: Notify::new(),
            counters,
        }
    }
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers `cell` with a time-out at `at` unless it is answered (and dropped) before.
    pub(crate) fn watch(self: &Arc<Self>, at: Instant, cell: Weak<dyn Expire>) {
        let mut state = self.lock();
        let earliest = state.heap.peek().map(|e| e.at);
        state.heap.push(Entry { at, cell });
        if state.heap.len() >= state.compact_at {
            state.heap.retain(|e| e.cell.strong_count() > 0);
            state.compact_at = MIN_COMPACT.max(2 * state.heap.len());
        }
        if !state.keeper_running {
            state.keeper_running = true;
            state.keeper = Some(tokio::spawn(keep(Arc::clone(self))));
        } else if earliest.is_none_or(|e| at < e) {
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Drops the entries of answered asks and, if none are left, waits for the keeper to
    /// exit (used at shutdown, so no task outlives the system).
    pub(crate) async fn compact(&self) {
        let keeper = {
            let mut state = self.lock();
            state.heap.retain(|e| e.cell.strong_count() > 0);
            state.compact_at = MIN_COMPACT.max(2 * state.heap.len());
            if state.heap.is_empty() {
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
}

/// The keeper: sleeps until the earliest deadline, answers what expired, repeats.
async fn keep(deadlines: Arc<Deadlines>) {
    loop {
        let mut expired = Vec::new();
        let next = {
            let mut state = deadlines.lock();
            let now = Instant::now();
            let next = loop {
                let Some(top) = state.heap.peek() else {
                    break None;
                };
                if top.cell.strong_count() == 0 {
                    state.heap.pop();
                } else if top.at <= now {
                    if let Some(e) = state.heap.pop() {
                        expired.push(e.cell);
                    }
                } else {
                    break Some(top.at);
                }
            };
            if next.is_none() {
                state.keeper_running = false;
            }
            next
        };
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
