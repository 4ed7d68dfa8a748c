//! Call policies: time-outs, retries and circuit breakers around asks to a service.
//!
//! A [`CallPolicy`] wraps an ask to any [`ActorRef`](crate::ActorRef) or
//! [`Recipient`](crate::Recipient), local or remote alike (every attempt is an ordinary
//! `ask_timeout` through the same ref), with:
//! - a **time-out** on every attempt, and optionally a **total time-out** for the whole call;
//! - **retries** with exponential back-off and jitter ([`Retry`]), only for messages marked
//!   [`Idempotent`];
//! - a **circuit breaker** per (service, node) ([`CircuitBreaker`], shared through
//!   [`Breakers`]) that fails fast while the target keeps failing and probes for its
//!   recovery;
//! - **counters** ([`CallPolicy::stats`], [`CircuitBreaker::stats`]), `metrics` and `tracing`.
//!
//! ```
//! use std::time::Duration;
//! use actor_core::{Actor, ActorSystem, Context, Handler, Message};
//! use actor_core::policy::{Breakers, BreakerState, CallPolicy, Idempotent, Retry};
//!
//! struct Prices;
//! impl Actor for Prices {}
//!
//! #[derive(Clone)]
//! struct GetPrice { sku: u32 }
//! impl Message for GetPrice { type Reply = u64; }
//! impl Idempotent for GetPrice {} // reading a price twice changes nothing
//!
//! impl Handler<GetPrice> for Prices {
//!     async fn handle(&mut self, msg: GetPrice, _ctx: &mut Context<Self>) -> u64 {
//!         u64::from(msg.sku) * 100
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let system = ActorSystem::new();
//!     let prices = system.spawn_named("prices", Prices).await?;
//!
//!     let breakers = Breakers::default(); // one per process, shared by every caller
//!     let policy = CallPolicy::new()
//!         .timeout(Duration::from_millis(500))
//!         .retry(Retry::exponential(3, Duration::from_millis(20), Duration::from_millis(500)).with_jitter())
//!         .breaker(breakers.for_target("prices", prices.node()));
//!
//!     assert_eq!(policy.ask_idempotent(&prices, GetPrice { sku: 7 }).await?, 700);
//!
//!     let stats = policy.stats();
//!     assert_eq!((stats.calls, stats.retries, stats.failures), (1, 0, 0));
//!     assert_eq!(stats.breaker, Some(BreakerState::Closed));
//!     system.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Retries only for idempotent messages, checked by the compiler
//! A retry after a time-out may deliver a message the target already handled, so only a
//! message whose sender promises that this is harmless may be repeated. The promise is the
//! marker trait [`Idempotent`], and the distinction is made by the type checker rather than
//! at run time: [`CallPolicy::ask`] accepts any message and makes exactly one attempt;
//! [`CallPolicy::ask_idempotent`] retries, and only compiles for `M: Idempotent`. One policy
//! can therefore serve both kinds of message, and a reader sees at the call site whether a
//! call may be repeated.
//!
//! ```compile_fail
//! # use actor_core::{Actor, ActorRef, Context, Handler, Message};
//! # use actor_core::policy::CallPolicy;
//! # struct Payments;
//! # impl Actor for Payments {}
//! #[derive(Clone)]
//! struct Charge { cents: u64 } // not Idempotent: charging twice charges twice
//! impl Message for Charge { type Reply = (); }
//! # impl Handler<Charge> for Payments {
//! #     async fn handle(&mut self, _msg: Charge, _ctx: &mut Context<Self>) {}
//! # }
//! async fn charge(policy: &CallPolicy, payments: &ActorRef<Payments>) {
//!     let _ = policy.ask_idempotent(payments, Charge { cents: 100 }).await; // does not compile
//! }
//! ```
//!
//! # Which outcomes are retried, and which count against the breaker
//! | outcome | retried (idempotent only) | breaker failure | why |
//! | --- | --- | --- | --- |
//! | reply | - | no (success) | |
//! | `Timeout` | yes | yes | slow or gone; the message may have been handled |
//! | `NodeDown` | yes | yes | the node may come back or the link reconnect |
//! | `Unreachable` | yes | yes | as above |
//! | `Overloaded` | yes | yes | the target asks to come back later: back-off is the answer |
//! | `Full` | yes | yes | as above |
//! | `Remote` | no | yes | the node failed for a reason it named; not known to pass |
//! | `Stopped` | no | no | mailboxes survive restarts, so this is for good: look up again |
//! | `HandlerPanicked` | no | no | the target answered; the same message would fail again |
//! | `UnknownActor`, `UnknownMessage`, `NotRemote`, `Codec`, `Unauthorized` | no | no | a configuration or version mismatch; repeating cannot help |
//! | `CircuitOpen` | no | - | refused without trying |
//!
//! "Breaker failure no" means the outcome counts as a success: the target was reached and
//! answered, so the path to it is healthy. [`is_retryable`] and [`is_breaker_failure`] give
//! the table as functions.
//!
//! # Circuit breaker
//! Closed, it lets calls through and counts consecutive failures; after
//! [`BreakerConfig::open_after`] of them it opens and refuses calls with
//! [`AskError::CircuitOpen`](crate::AskError::CircuitOpen) without reaching the target. After
//! [`BreakerConfig::cool_down`], the next call goes through as a single probe (half-open):
//! success closes the breaker, failure opens it for another cool-down. Time is
//! `tokio::time::Instant`, so paused test time drives it. Breakers are per (service, node):
//! ask [`Breakers::for_target`] so that all callers of one target share one breaker.
//!
//! # Metrics and tracing
//! Recorded through the `metrics` facade (no-ops until the application installs a recorder;
//! [`describe_metrics`] registers their descriptions):
//!
//! | name | kind | labels | meaning |
//! | --- | --- | --- | --- |
//! | `actor_calls_total` | counter | `service`, `node`, `outcome` | finished calls; `outcome` is `ok` or the error in snake case (`timeout`, `node_down`, `circuit_open`, ...) |
//! | `actor_call_retries_total` | counter | `service`, `node` | attempts after the first |
//! | `actor_breaker_state` | gauge | `service`, `node` | 0 closed, 1 half-open, 2 open |
//! | `actor_breaker_opened_total` | counter | `service`, `node` | openings, from closed or after a failed probe |
//! | `actor_breaker_short_circuited_total` | counter | `service`, `node` | calls refused while open or half-open |
//!
//! `service` is the breaker's service when the policy has one, else the target's registered
//! name, else `anonymous`; `node` is the node of the ref called. Breaker transitions are
//! logged with `tracing` (`warn` on open, `info` on half-open and close, with `service` and
//! `node` fields); each retry is logged at `debug` with its delay and the error it follows.

mod breaker;
mod breakers;
mod call;
mod callee;
mod outcome;
mod retry;
mod telemetry;

pub use breaker::{BreakerConfig, BreakerState, BreakerStats, CircuitBreaker};
pub use breakers::Breakers;
pub use call::{CallPolicy, Idempotent, PolicyStats};
pub use callee::Callee;
pub use outcome::{is_breaker_failure, is_retryable};
pub use retry::{Jitter, Retry};
pub use telemetry::{
    BREAKER_OPENED_TOTAL, BREAKER_SHORT_CIRCUITED_TOTAL, BREAKER_STATE, CALL_RETRIES_TOTAL,
    CALLS_TOTAL, describe_metrics,
};
