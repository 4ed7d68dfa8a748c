//! Counters of actors and systems, and their export through the `metrics` facade.
//!
//! The hot path adds one relaxed increment to a counter the actor's own mailbox already
//! shares a cache line with; totals are summed when read, not on every message.
//! [`export_metrics`] turns a snapshot into `metrics` gauges and counters, for an exporter
//! (Prometheus, say) to scrape:
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `actor_messages_handled_total` | counter | `actor` (registered name) |
//! | `actor_handler_failures_total` | counter | `actor` |
//! | `actor_restarts_total` | counter | `actor` |
//! | `actor_mailbox_depth` | gauge | `actor` |
//! | `actor_system_actors` | gauge | `node` |
//! | `actor_system_handler_panics_total` | counter | `node` |
//! | `actor_system_restarts_total` | counter | `node` |
//! | `actor_system_asks_timed_out_total` | counter | `node` |

use std::sync::atomic::{AtomicU64, Ordering};

use crate::system::ActorSystem;

/// Per-actor counters, kept in its mailbox (they outlive restarts, as the mailbox does).
#[derive(Debug, Default)]
pub(crate) struct ActorCounters {
    pub(crate) handled: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) restarts: AtomicU64,
}

/// System-wide counters of rare events.
#[derive(Debug, Default)]
pub(crate) struct SystemCounters {
    pub(crate) spawned: AtomicU64,
    pub(crate) stopped: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) asks_timed_out: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A snapshot of one local actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorStats {
    /// Its registered name, if any.
    pub name: Option<String>,
    /// Messages waiting (queued or taken, not yet handled).
    pub mailbox_len: usize,
    /// Its mailbox capacity.
    pub mailbox_capacity: usize,
    /// Messages handled, across restarts. The messages of a run (told together, as by
    /// `try_tell_many` or a remote burst) are counted when the run's handling ends.
    pub handled: u64,
    /// Failures: panics in handlers or `started`, errors from `started`.
    pub failures: u64,
    /// Times a supervisor started a new instance after the first.
    pub restarts: u64,
}

impl ActorCounters {
    pub(crate) fn snapshot(
        &self,
        name: Option<String>,
        mailbox_len: usize,
        mailbox_capacity: usize,
    ) -> ActorStats {
        ActorStats {
            name,
            mailbox_len,
            mailbox_capacity,
            handled: read(&self.handled),
            failures: read(&self.failures),
            restarts: read(&self.restarts),
        }
    }
}

/// A snapshot of a system's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemStats {
    /// Actors alive now (spawned and not yet stopped for good).
    pub actors: u64,
    /// Actors spawned since start.
    pub spawned: u64,
    /// Panics caught in handlers and `started` hooks.
    pub handler_panics: u64,
    /// Restarts made by supervisors.
    pub restarts: u64,
    /// Asks answered with `Timeout` by the deadline keeper.
    pub asks_timed_out: u64,
}

impl SystemCounters {
    pub(crate) fn snapshot(&self) -> SystemStats {
        let spawned = read(&self.spawned);
        SystemStats {
            actors: spawned.saturating_sub(read(&self.stopped)),
            spawned,
            handler_panics: read(&self.handler_panics),
            restarts: read(&self.restarts),
            asks_timed_out: read(&self.asks_timed_out),
        }
    }
}

/// Records `system`'s counters and those of its named actors through the `metrics` facade
/// (see the table in the module docs). Call it before each scrape.
pub fn export_metrics(system: &ActorSystem) {
    let node = system.node_name().to_string();
    let s = system.stats();
    metrics::gauge!("actor_system_actors", "node" => node.clone()).set(s.actors as f64);
    metrics::counter!("actor_system_handler_panics_total", "node" => node.clone())
        .absolute(s.handler_panics);
    metrics::counter!("actor_system_restarts_total", "node" => node.clone()).absolute(s.restarts);
    metrics::counter!("actor_system_asks_timed_out_total", "node" => node)
        .absolute(s.asks_timed_out);
    for a in system.actor_stats() {
        let Some(name) = a.name else { continue };
        metrics::counter!("actor_messages_handled_total", "actor" => name.clone())
            .absolute(a.handled);
        metrics::counter!("actor_handler_failures_total", "actor" => name.clone())
            .absolute(a.failures);
        metrics::counter!("actor_restarts_total", "actor" => name.clone()).absolute(a.restarts);
        metrics::gauge!("actor_mailbox_depth", "actor" => name).set(a.mailbox_len as f64);
    }
}
