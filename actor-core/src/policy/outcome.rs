//! How a call policy reads an [`AskError`]: may the attempt be repeated, and does it count
//! against the target's circuit breaker.
//!
//! One exhaustive match holds the whole table (see the [module docs](super)), so a new
//! `AskError` variant cannot be added without deciding both questions for it.

use crate::error::AskError;

/// What one failed attempt means to a call policy.
struct Verdict {
    /// The `outcome` label of the `actor_calls_total` metric.
    label: &'static str,
    /// Repeating the attempt may succeed (for idempotent messages only).
    retryable: bool,
    /// The target, its node or the path to it is unhealthy.
    breaker_failure: bool,
}

const fn verdict(label: &'static str, retryable: bool, breaker_failure: bool) -> Verdict {
    Verdict {
        label,
        retryable,
        breaker_failure,
    }
}

fn classify(err: &AskError) -> Verdict {
    match err {
        // No answer in time: the target is slow or gone; the message may or may not have
        // been handled, which is why only idempotent messages are repeated.
        AskError::Timeout(_) => verdict("timeout", true, true),
        AskError::NodeDown { .. } => verdict("node_down", true, true),
        AskError::Unreachable { .. } => verdict("unreachable", true, true),
        // The target said "not now": back-off is exactly what it asks for.
        AskError::Overloaded { .. } => verdict("overloaded", true, true),
        AskError::Full => verdict("full", true, true),
        // The node failed for a reason it named: unhealthy, but not known to be transient.
        AskError::Remote { .. } => verdict("remote", false, true),
        // The mailbox survives restarts, so `Stopped` means stopped for good: the same ref
        // will keep failing, fast. A fresh look-up is needed, not a retry.
        AskError::Stopped => verdict("stopped", false, false),
        // The target received the message and answered: the path is healthy, and the same
        // message would fail the same way again.
        AskError::HandlerPanicked { .. } => verdict("handler_panicked", false, false),
        AskError::UnknownActor { .. } => verdict("unknown_actor", false, false),
        AskError::UnknownMessage { .. } => verdict("unknown_message", false, false),
        AskError::NotRemote { .. } => verdict("not_remote", false, false),
        AskError::Codec(_) => verdict("codec", false, false),
        AskError::Unauthorized { .. } => verdict("unauthorized", false, false),
        // Refused by a breaker without trying: nothing was learnt about the target.
        AskError::CircuitOpen { .. } => verdict("circuit_open", false, false),
    }
}

/// Whether an attempt that failed with `err` may be repeated, if its message is
/// [`Idempotent`](super::Idempotent).
///
/// True for `Timeout`, `NodeDown`, `Unreachable`, `Overloaded` and `Full`; false for
/// everything else (see the table in the [module docs](super)).
pub fn is_retryable(err: &AskError) -> bool {
    classify(err).retryable
}

/// Whether an attempt that failed with `err` counts as a failure for the target's
/// [`CircuitBreaker`](super::CircuitBreaker).
///
/// True for time-outs and node or transport failures (`Timeout`, `NodeDown`, `Unreachable`,
/// `Overloaded`, `Full`, `Remote`); false when the target answered, even with an error
/// (`HandlerPanicked`, `UnknownMessage`, `Codec`, ...). A reply is never a failure.
pub fn is_breaker_failure(err: &AskError) -> bool {
    classify(err).breaker_failure
}

/// The `outcome` label of a finished call.
pub(crate) fn outcome_label<R>(outcome: &Result<R, AskError>) -> &'static str {
    match outcome {
        Ok(_) => "ok",
        Err(e) => classify(e).label,
    }
}
