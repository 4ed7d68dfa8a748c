//! [`CircuitBreaker`]: stops calling a target that keeps failing, and probes for its recovery.
//!
//! The state machine ([`Machine`]) is plain data driven by the caller's clock, with no
//! locks, logging or metrics; [`CircuitBreaker`] wraps it in a mutex and reports its
//! transitions. Time is `tokio::time::Instant`, so paused test time drives it.
//!
//! ```text
//!            N consecutive failures                cool-down elapsed,
//!   Closed ─────────────────────────▶ Open ──────── next call is the probe ───▶ HalfOpen
//!     ▲                                ▲                                            │
//!     │                                └────────────── probe failed ────────────────┤
//!     └──────────────────────────────────────────── probe succeeded ────────────────┘
//! ```

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::outcome::is_breaker_failure;
use super::telemetry;
use crate::error::AskError;

/// When a [`CircuitBreaker`] opens and how long it stays open.
///
/// ```
/// use std::time::Duration;
/// use actor_core::policy::BreakerConfig;
///
/// let config = BreakerConfig::new()
///     .open_after(3)
///     .cool_down(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    failure_threshold: u32,
    cool_down: Duration,
}

impl BreakerConfig {
    /// Consecutive failures that open a breaker by default: 5.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
    /// How long a breaker stays open by default before it lets a probe through: 10 s.
    pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(10);

    /// The defaults: open after 5 consecutive failures, probe after 10 s.
    pub const fn new() -> Self {
        Self {
            failure_threshold: Self::DEFAULT_FAILURE_THRESHOLD,
            cool_down: Self::DEFAULT_COOL_DOWN,
        }
    }

    /// Opens the breaker after `failures` consecutive failures (0 reads as 1). Any
    /// non-failure outcome resets the count.
    pub const fn open_after(mut self, failures: u32) -> Self {
        self.failure_threshold = if failures == 0 { 1 } else { failures };
        self
    }

    /// Keeps an open breaker open for `cool_down` before it lets one probe through.
    pub const fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Consecutive failures that open the breaker.
    pub const fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    /// How long the breaker stays open before probing.
    pub const fn cool_down_period(&self) -> Duration {
        self.cool_down
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// Calls fail fast with [`AskError::CircuitOpen`] until the cool-down has passed.
    Open,
    /// The cool-down has passed and one probe call is (or may be) in flight; other calls fail
    /// fast until its outcome closes or re-opens the breaker.
    HalfOpen,
}

/// A snapshot of a [`CircuitBreaker`]'s state and counters (counters only grow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerStats {
    /// The service the breaker guards.
    pub service: String,
    /// The node the breaker guards.
    pub node: String,
    /// The state at the time of the snapshot.
    pub state: BreakerState,
    /// Calls let through (probes included).
    pub calls: u64,
    /// Calls let through that ended in a failure (see
    /// [`is_breaker_failure`](super::is_breaker_failure)).
    pub failures: u64,
    /// Calls refused without trying, with [`AskError::CircuitOpen`].
    pub short_circuited: u64,
    /// Times the breaker opened (from closed, or again after a failed probe).
    pub opened: u64,
}

/// A circuit breaker for one target: a service on one node.
///
/// It lets calls through while the target is healthy, and after
/// [`failure_threshold`](BreakerConfig::failure_threshold) consecutive failures it *opens*:
/// calls then fail at once with [`AskError::CircuitOpen`], without reaching the target, so
/// callers stop waiting on (and piling onto) a target that cannot answer. Once the
/// [cool-down](BreakerConfig::cool_down) has passed, the next call goes through as a *probe*
/// (half-open); its success closes the breaker, its failure opens it for another cool-down.
///
/// # Guarantees
/// - While open, no call reaches the target; while half-open, exactly one does at a time.
/// - Only time-outs and node or transport failures count as failures
///   ([`is_breaker_failure`](super::is_breaker_failure)); any answer from the target, an
///   application error included, counts as a success.
/// - A call that is cancelled (its future dropped) counts as neither; a cancelled probe frees
///   the probe slot for the next call.
/// - An outcome that arrives after the breaker changed state since the call was let through
///   (a slow call from before it opened) is counted in the stats but changes no state.
/// - Transitions are logged with `tracing` (warn on open, info on half-open and close) and
///   recorded in the `actor_breaker_state` gauge; see the [module docs](super) for metrics.
///
/// Breakers are usually shared through a [`Breakers`](super::Breakers) registry, one per
/// (service, node).
pub struct CircuitBreaker {
    service: Arc<str>,
    node: Arc<str>,
    target: String,
    config: BreakerConfig,
    machine: Mutex<Machine>,
    calls: AtomicU64,
    failures: AtomicU64,
    short_circuited: AtomicU64,
    opened: AtomicU64,
}

impl CircuitBreaker {
    /// A closed breaker guarding `service` on `node`.
    pub fn new(service: impl Into<String>, node: impl Into<String>, config: BreakerConfig) -> Self {
        let service: String = service.into();
        let node: String = node.into();
        let breaker = Self {
            target: format!("{service}@{node}"),
            service: service.into(),
            node: node.into(),
            config,
            machine: Mutex::new(Machine::new()),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            short_circuited: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        };
        telemetry::breaker_state(&breaker.service, &breaker.node, BreakerState::Closed);
        breaker
    }

    /// The service this breaker guards.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The node this breaker guards.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `service@node`, as carried by [`AskError::CircuitOpen`].
    pub fn target(&self) -> &str {
        &self.target
    }

    /// When this breaker opens and how long it stays open.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state. An open breaker whose cool-down has passed reports `Open` until
    /// the next call arrives and becomes its probe.
    pub fn state(&self) -> BreakerState {
        self.lock().state()
    }

    /// A snapshot of the state and counters.
    pub fn stats(&self) -> BreakerStats {
        BreakerStats {
            service: self.service.to_string(),
            node: self.node.to_string(),
            state: self.state(),
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            short_circuited: self.short_circuited.load(Ordering::Relaxed),
            opened: self.opened.load(Ordering::Relaxed),
        }
    }

    /// Runs `attempt` if the breaker lets it through, and records its outcome.
    ///
    /// `attempt` is not polled at all when the breaker refuses; create it cheaply (an
    /// un-awaited `ask` does nothing until polled).
    ///
    /// # Errors
    /// [`AskError::CircuitOpen`] with this breaker's [`target`](Self::target) when refused;
    /// otherwise whatever `attempt` returns.
    pub async fn call<T>(
        &self,
        attempt: impl Future<Output = Result<T, AskError>>,
    ) -> Result<T, AskError> {
        let permit = self.admit()?;
        let outcome = attempt.await;
        permit.record(outcome.as_ref().err().is_some_and(is_breaker_failure));
        outcome
    }

    /// Lets one call through, or refuses it with `CircuitOpen`.
    pub(crate) fn admit(&self) -> Result<Permit<'_>, AskError> {
        let (ticket, change) = self.lock().admit(Instant::now(), &self.config);
        if let Some(change) = change {
            self.report(change);
        }
        match ticket {
            Some(ticket) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                Ok(Permit {
                    breaker: self,
                    ticket: Some(ticket),
                })
            }
            None => {
                self.short_circuited.fetch_add(1, Ordering::Relaxed);
                telemetry::breaker_short_circuited(&self.service, &self.node);
                Err(AskError::CircuitOpen {
                    target: self.target.clone(),
                })
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // The machine is updated in single assignments; a panic elsewhere cannot leave it
        // half-changed.
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, change: Change) {
        let (service, node) = (&*self.service, &*self.node);
        match change {
            Change::Opened { failures } => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                telemetry::breaker_opened(service, node);
                tracing::warn!(
                    service,
                    node,
                    failures,
                    cool_down = ?self.config.cool_down,
                    "circuit breaker opened: failing calls fast"
                );
            }
            Change::Reopened => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                telemetry::breaker_opened(service, node);
                tracing::warn!(
                    service,
                    node,
                    cool_down = ?self.config.cool_down,
                    "circuit breaker probe failed: open again"
                );
            }
            Change::HalfOpened => {
                tracing::info!(service, node, "circuit breaker half-open: probing");
            }
            Change::Closed => {
                tracing::info!(service, node, "circuit breaker closed: probe succeeded");
            }
        }
        telemetry::breaker_state(service, node, change.state());
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("target", &self.target)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish()
    }
}

/// A call let through by a breaker; its outcome must be recorded, or it counts as cancelled.
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Option<Ticket>,
}

impl Permit<'_> {
    /// Records the outcome of the call: a failure or not.
    pub(crate) fn record(mut self, failed: bool) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let breaker = self.breaker;
        if failed {
            breaker.failures.fetch_add(1, Ordering::Relaxed);
        }
        let change = breaker
            .lock()
            .record(ticket, failed, Instant::now(), &breaker.config);
        if let Some(change) = change {
            breaker.report(change);
        }
    }
}

impl Drop for Permit<'_> {
    // Dropped without an outcome: the call was cancelled or its outcome says nothing about
    // the target.
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.lock().release(ticket);
        }
    }
}

/// The breaker's state machine: no I/O, no clock of its own.
#[derive(Debug)]
struct Machine {
    phase: Phase,
    /// Bumped on every transition, so that outcomes of calls let through before it are
    /// recognised as stale.
    generation: u64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { since: Instant },
    HalfOpen { probing: bool },
}

/// Which call a permit was given to.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    generation: u64,
    probe: bool,
}

/// A transition, to be reported outside the lock.
#[derive(Debug, Clone, Copy)]
enum Change {
    Opened { failures: u32 },
    HalfOpened,
    Closed,
    Reopened,
}

impl Change {
    fn state(self) -> BreakerState {
        match self {
            Change::Opened { .. } | Change::Reopened => BreakerState::Open,
            Change::HalfOpened => BreakerState::HalfOpen,
            Change::Closed => BreakerState::Closed,
        }
    }
}

impl Machine {
    fn new() -> Self {
        Self {
            phase: Phase::Closed { failures: 0 },
            generation: 0,
        }
    }

    fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation += 1;
    }

    fn ticket(&self, probe: bool) -> Ticket {
        Ticket {
            generation: self.generation,
            probe,
        }
    }

    /// A ticket when the call may go through, and the transition that letting it through
    /// caused.
    fn admit(&mut self, now: Instant, config: &BreakerConfig) -> (Option<Ticket>, Option<Change>) {
        match self.phase {
            Phase::Closed { .. } => (Some(self.ticket(false)), None),
            Phase::Open { since } if now.saturating_duration_since(since) >= config.cool_down => {
                self.enter(Phase::HalfOpen { probing: true });
                (Some(self.ticket(true)), Some(Change::HalfOpened))
            }
            Phase::Open { .. } | Phase::HalfOpen { probing: true } => (None, None),
            // The previous probe was cancelled: this call becomes the probe.
            Phase::HalfOpen { probing: false } => {
                self.phase = Phase::HalfOpen { probing: true };
                (Some(self.ticket(true)), None)
            }
        }
    }

    /// Applies the outcome of the call `ticket` was given to.
    fn record(
        &mut self,
        ticket: Ticket,
        failed: bool,
        now: Instant,
        config: &BreakerConfig,
    ) -> Option<Change> {
        if ticket.generation != self.generation {
            return None;
        }
        match self.phase {
            Phase::Closed { failures } if failed => {
                let failures = failures.saturating_add(1);
                if failures >= config.failure_threshold {
                    self.enter(Phase::Open { since: now });
                    Some(Change::Opened { failures })
                } else {
                    self.phase = Phase::Closed { failures };
                    None
                }
            }
            Phase::Closed { .. } => {
                self.phase = Phase::Closed { failures: 0 };
                None
            }
            Phase::HalfOpen { .. } if failed => {
                self.enter(Phase::Open { since: now });
                Some(Change::Reopened)
            }
            Phase::HalfOpen { .. } => {
                self.enter(Phase::Closed { failures: 0 });
                Some(Change::Closed)
            }
            // Entering Open bumps the generation, so no current ticket exists while open.
            Phase::Open { .. } => None,
        }
    }

    /// Forgets the call `ticket` was given to; a forgotten probe frees the probe slot.
    fn release(&mut self, ticket: Ticket) {
        let current_probe = ticket.probe && ticket.generation == self.generation;
        if current_probe && matches!(self.phase, Phase::HalfOpen { probing: true }) {
            self.phase = Phase::HalfOpen { probing: false };
        }
    }
}
