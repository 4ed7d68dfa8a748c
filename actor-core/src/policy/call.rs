//! [`CallPolicy`]: time-out, retries and circuit breaker around one ask.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{BreakerState, CircuitBreaker};
use super::callee::Callee;
use super::outcome::{is_breaker_failure, is_retryable, outcome_label};
use super::retry::Retry;
use super::telemetry;
use crate::actor::Message;
use crate::error::AskError;

/// A message that is safe to send more than once: handling it twice has the same effect as
/// handling it once (a read, or a write keyed by an id the handler de-duplicates).
///
/// Only such messages are ever retried, through [`CallPolicy::ask_idempotent`]; a retry
/// after a time-out may deliver a message the target already handled. Implementing the
/// trait is the sender's promise; nothing checks it.
///
/// ```
/// use actor_core::Message;
/// use actor_core::policy::Idempotent;
///
/// #[derive(Clone)]
/// struct GetPrice { sku: u32 }
/// impl Message for GetPrice { type Reply = u64; }
/// impl Idempotent for GetPrice {} // reading a price twice changes nothing
/// ```
pub trait Idempotent: Message + Clone {}

/// How to call a service: a per-attempt time-out, an overall time budget, retries with
/// back-off for idempotent messages, and a circuit breaker.
///
/// Build it once, like a sentence, and clone it into each task that calls the service;
/// clones are cheap (two reference counts) and **share one set of counters**
/// ([`stats`](Self::stats)). Each builder call makes a new policy with counters of its own,
/// so policies derived from a common base count separately.
///
/// ```
/// use std::time::Duration;
/// use actor_core::policy::{Breakers, CallPolicy, Retry};
///
/// let breakers = Breakers::default();
/// let policy = CallPolicy::new()
///     .timeout(Duration::from_millis(500))
///     .total_timeout(Duration::from_secs(2))
///     .retry(Retry::exponential(3, Duration::from_millis(20), Duration::from_millis(500)).with_jitter())
///     .breaker(breakers.for_target("payment", "n2"));
/// ```
///
/// # Guarantees
/// - Every attempt is an ask with a time-out: [`timeout`](Self::timeout), or the handle's
///   default ask time-out when none is set, shortened to what is left of
///   [`total_timeout`](Self::total_timeout).
/// - A call has exactly one outcome, a reply or an [`AskError`], never later than its total
///   time-out (when set) or `(retries + 1) × timeout` plus the back-off delays.
/// - [`ask`](Self::ask) makes exactly one attempt. Only
///   [`ask_idempotent`](Self::ask_idempotent), which requires `M:` [`Idempotent`], retries,
///   and only after a retryable failure ([`is_retryable`](super::is_retryable)). A retry
///   starts only if it can begin before the total time-out; otherwise the last error is
///   returned.
/// - With a breaker, every attempt asks the breaker first; a refused attempt ends the call
///   with [`AskError::CircuitOpen`] without reaching the target. An attempt cut short by the
///   total time-out (rather than by its own time-out) does not count against the breaker.
/// - Cancel safety: dropping the call's future abandons it; an attempt already sent may still
///   be handled, and an unfinished breaker probe is released for the next call.
#[derive(Clone, Default)]
pub struct CallPolicy {
    config: Arc<Config>,
    counters: Arc<Counters>,
}

#[derive(Debug, Clone, Default)]
struct Config {
    timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    retry: Retry,
    breaker: Option<Arc<CircuitBreaker>>,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    short_circuited: AtomicU64,
}

/// A snapshot of a [`CallPolicy`]'s counters (shared by its clones; counters only grow).
///
/// `calls = succeeded + failures + short_circuited`, counting calls that have finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyStats {
    /// Calls started through [`CallPolicy::ask`] or [`CallPolicy::ask_idempotent`].
    pub calls: u64,
    /// Attempts after the first, over all calls.
    pub retries: u64,
    /// Calls that ended in an error other than [`AskError::CircuitOpen`].
    pub failures: u64,
    /// Calls that ended in [`AskError::CircuitOpen`], refused by the breaker.
    pub short_circuited: u64,
    /// The state of the policy's breaker, if it has one.
    pub breaker: Option<BreakerState>,
}

/// One call in progress: its deadline and metric labels.
struct Call<'a> {
    deadline: Option<Instant>,
    service: &'a str,
    node: &'a str,
}

impl CallPolicy {
    /// A policy with no time-out of its own (the handle's default applies), no total
    /// time-out, no retries and no breaker: a plain ask, counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds each attempt at `timeout` (default: the handle's default ask time-out).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.timeout = Some(timeout))
    }

    /// Bounds the whole call, every attempt and back-off included, at `total` from the
    /// moment it starts (default: no bound beyond the attempts' own time-outs).
    pub fn total_timeout(self, total: Duration) -> Self {
        self.configure(|c| c.total_timeout = Some(total))
    }

    /// Retries failed calls of [`Idempotent`] messages as `retry` says (default:
    /// [`Retry::none`]). Has no effect on [`ask`](Self::ask).
    pub fn retry(self, retry: Retry) -> Self {
        self.configure(|c| c.retry = retry)
    }

    /// Guards every attempt with `breaker` (usually from
    /// [`Breakers::for_target`](super::Breakers::for_target)).
    pub fn breaker(self, breaker: Arc<CircuitBreaker>) -> Self {
        self.configure(|c| c.breaker = Some(breaker))
    }

    /// A differently configured policy is a different policy: it counts on its own.
    fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self.counters = Arc::default();
        self
    }

    /// The breaker guarding this policy's calls, if any.
    pub fn circuit_breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        self.config.breaker.as_ref()
    }

    /// A snapshot of the counters, shared by every clone of this policy.
    pub fn stats(&self) -> PolicyStats {
        let c = &self.counters;
        PolicyStats {
            calls: c.calls.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            short_circuited: c.short_circuited.load(Ordering::Relaxed),
            breaker: self.config.breaker.as_ref().map(|b| b.state()),
        }
    }

    /// Sends `msg` to `target` once, within the policy's time-outs and through its breaker,
    /// and waits for the reply. Never retries, whatever the [`Retry`] says: `M` is not known
    /// to be safe to repeat (use [`ask_idempotent`](Self::ask_idempotent) for that).
    ///
    /// # Errors
    /// The attempt's [`AskError`], `Timeout` carrying the total time-out when that ran out
    /// first, or [`AskError::CircuitOpen`] when the breaker refused the call.
    pub async fn ask<M, C>(&self, target: &C, msg: M) -> Result<M::Reply, AskError>
    where
        M: Message,
        C: Callee<M>,
    {
        let call = self.start(target);
        let outcome = self.attempt(target, msg, &call).await;
        self.finish(&call, outcome)
    }

    /// Sends `msg` to `target` like [`ask`](Self::ask), and repeats it after a retryable
    /// failure (see [`is_retryable`](super::is_retryable)) as the policy's [`Retry`] says,
    /// waiting its back-off in between, as long as the total time-out leaves room.
    ///
    /// Each attempt sends a clone of `msg`, the last one `msg` itself.
    ///
    /// # Errors
    /// As [`ask`](Self::ask); after retries, the error of the last attempt.
    pub async fn ask_idempotent<M, C>(&self, target: &C, msg: M) -> Result<M::Reply, AskError>
    where
        M: Idempotent,
        C: Callee<M>,
    {
        let call = self.start(target);
        let retry = self.config.retry;
        let mut retries = 0;
        loop {
            if retries >= retry.max_retries() {
                let outcome = self.attempt(target, msg, &call).await;
                return self.finish(&call, outcome);
            }
            let err = match self.attempt(target, msg.clone(), &call).await {
                Err(err) if is_retryable(&err) => err,
                outcome => return self.finish(&call, outcome),
            };
            retries += 1;
            let delay = retry.delay(retries);
            if let Some(deadline) = call.deadline {
                let resume = Instant::now().checked_add(delay);
                if resume.is_none_or(|at| at >= deadline) {
                    return self.finish(&call, Err(err));
                }
            }
            tracing::debug!(
                service = call.service,
                node = call.node,
                retry = retries,
                ?delay,
                error = %err,
                "retrying idempotent call"
            );
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            telemetry::call_retried(call.service, call.node);
            tokio::time::sleep(delay).await;
        }
    }

    fn start<'a, M, C>(&'a self, target: &'a C) -> Call<'a>
    where
        M: Message,
        C: Callee<M>,
    {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let service = match &self.config.breaker {
            Some(breaker) => breaker.service(),
            None => target.name().unwrap_or("anonymous"),
        };
        Call {
            deadline: self
                .config
                .total_timeout
                .and_then(|total| Instant::now().checked_add(total)),
            service,
            node: target.node(),
        }
    }

    /// One attempt: through the breaker, within the attempt's and the call's time-outs.
    async fn attempt<M, C>(&self, target: &C, msg: M, call: &Call<'_>) -> Result<M::Reply, AskError>
    where
        M: Message,
        C: Callee<M>,
    {
        let permit = match &self.config.breaker {
            Some(breaker) => Some(breaker.admit()?),
            None => None,
        };
        let outcome = match call.deadline {
            None => target.ask_within(msg, self.config.timeout).await,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let timeout = self.config.timeout.map(|t| t.min(left));
                // Without a timeout of our own the handle's default applies, which we cannot
                // see: the deadline bounds the attempt from outside.
                tokio::time::timeout_at(deadline, target.ask_within(msg, timeout))
                    .await
                    .unwrap_or(Err(AskError::Timeout(left)))
            }
        };
        let cut_short = matches!(outcome, Err(AskError::Timeout(_)))
            && call.deadline.is_some_and(|d| Instant::now() >= d);
        if let Some(permit) = permit {
            // A time-out the caller's budget forced says nothing about the target's health:
            // dropping the permit records no outcome.
            if !cut_short {
                permit.record(outcome.as_ref().err().is_some_and(is_breaker_failure));
            }
        }
        match (cut_short, self.config.total_timeout) {
            (true, Some(total)) => Err(AskError::Timeout(total)),
            _ => outcome,
        }
    }

    fn finish<R>(&self, call: &Call<'_>, outcome: Result<R, AskError>) -> Result<R, AskError> {
        let counter = match &outcome {
            Ok(_) => None,
            Err(AskError::CircuitOpen { .. }) => Some(&self.counters.short_circuited),
            Err(_) => Some(&self.counters.failures),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        telemetry::call_finished(call.service, call.node, outcome_label(&outcome));
        outcome
    }
}

impl fmt::Debug for CallPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("CallPolicy")
            .field("timeout", &c.timeout)
            .field("total_timeout", &c.total_timeout)
            .field("retry", &c.retry)
            .field("breaker", &c.breaker.as_ref().map(|b| b.target()))
            .field("stats", &self.stats())
            .finish()
    }
}
