//! The metrics call policies record, through the `metrics` facade.
//!
//! Nothing is recorded anywhere until the application installs a recorder (the demo shop
//! installs a Prometheus one); until then each record is a no-op.

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use super::breaker::BreakerState;

/// Counter: finished policy calls, labelled `service`, `node` and `outcome` (`ok`, or the
/// error kind in snake case: `timeout`, `node_down`, `circuit_open`, ...).
pub const CALLS_TOTAL: &str = "actor_calls_total";
/// Counter: retries (attempts after the first) made by policy calls, labelled `service` and
/// `node`.
pub const CALL_RETRIES_TOTAL: &str = "actor_call_retries_total";
/// Gauge: a circuit breaker's state, labelled `service` and `node`: 0 closed, 1 half-open,
/// 2 open.
pub const BREAKER_STATE: &str = "actor_breaker_state";
/// Counter: times a circuit breaker opened (from closed, or again after a failed probe),
/// labelled `service` and `node`.
pub const BREAKER_OPENED_TOTAL: &str = "actor_breaker_opened_total";
/// Counter: calls a circuit breaker refused without trying, labelled `service` and `node`.
pub const BREAKER_SHORT_CIRCUITED_TOTAL: &str = "actor_breaker_short_circuited_total";

/// Registers units and descriptions of the policy metrics with the installed recorder, so an
/// exporter can print them (Prometheus `# HELP` lines). Call once after installing the
/// recorder; calling it again is harmless.
pub fn describe_metrics() {
    describe_counter!(
        CALLS_TOTAL,
        Unit::Count,
        "Calls made through a CallPolicy, by service, node and outcome."
    );
    describe_counter!(
        CALL_RETRIES_TOTAL,
        Unit::Count,
        "Retries (attempts after the first) made by CallPolicy calls."
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open."
    );
    describe_counter!(
        BREAKER_OPENED_TOTAL,
        Unit::Count,
        "Times a circuit breaker opened."
    );
    describe_counter!(
        BREAKER_SHORT_CIRCUITED_TOTAL,
        Unit::Count,
        "Calls a circuit breaker refused without trying."
    );
}

pub(crate) fn call_finished(service: &str, node: &str, outcome: &'static str) {
    counter!(
        CALLS_TOTAL,
        "service" => service.to_owned(),
        "node" => node.to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
}

pub(crate) fn call_retried(service: &str, node: &str) {
    counter!(CALL_RETRIES_TOTAL, "service" => service.to_owned(), "node" => node.to_owned())
        .increment(1);
}

pub(crate) fn breaker_state(service: &str, node: &str, state: BreakerState) {
    let value = match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    gauge!(BREAKER_STATE, "service" => service.to_owned(), "node" => node.to_owned()).set(value);
}

pub(crate) fn breaker_opened(service: &str, node: &str) {
    counter!(BREAKER_OPENED_TOTAL, "service" => service.to_owned(), "node" => node.to_owned())
        .increment(1);
}

pub(crate) fn breaker_short_circuited(service: &str, node: &str) {
    counter!(
        BREAKER_SHORT_CIRCUITED_TOTAL,
        "service" => service.to_owned(),
        "node" => node.to_owned(),
    )
    .increment(1);
}
