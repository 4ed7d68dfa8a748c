//! The one path by which shop code calls a service: find it by name, ask it under a policy.
//!
//! Callers never learn where the service runs: the name resolves to a local mailbox in a
//! monolith and to a remote ref in a cluster, and the ask is the same call. Three kinds of
//! call, chosen at the call site:
//!
//! | method | attempts | for |
//! | --- | --- | --- |
//! | `Calls::ask` | one | messages that must not repeat (registering a user, placing an order) |
//! | `Calls::ask_idempotent` | up to 3, with jittered back-off | reads, and writes keyed by an id the service de-duplicates |
//! | `Calls::ask_guarded` | as `ask_idempotent`, through a circuit breaker per (service, node) | payments |
//!
//! Every call is counted in `shop_asks_total{service, message, outcome}` and timed in
//! `shop_ask_seconds`; the policies add `actor_calls_total`, `actor_call_retries_total` and
//! `actor_breaker_state`.

use std::time::{Duration, Instant};

use actor_core::policy::{BreakerConfig, Breakers, CallPolicy, Idempotent, Retry};
use actor_core::{ActorRef, ActorSystem, AskError, Handler, Message};

use crate::services::Service;

/// How long a call waits for its service's name to appear while the process is young (in a
/// cluster, the nodes are still joining) before it reports the service unavailable.
const LOOKUP_WAIT: Duration = Duration::from_millis(1_000);
/// After this long, a service whose name is missing is unavailable at once: waiting for it
/// would only stall callers while its node is down.
const WARM_UP: Duration = Duration::from_secs(10);

/// Retries of idempotent calls: up to 2 more attempts, 20 ms then 40 ms, jittered.
const RETRY: Retry = Retry::exponential(2, Duration::from_millis(20), Duration::from_millis(200));

/// Breakers open after 5 consecutive failures and probe again after 3 s.
const BREAKER: BreakerConfig = BreakerConfig::new()
    .open_after(5)
    .cool_down(Duration::from_secs(3));

/// Why a call produced no reply. The service is named; the framework's detail is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// The service is not running, its node cannot be reached, or its breaker is open.
    #[error("the {service} service is unavailable")]
    Unavailable {
        /// The service called.
        service: &'static str,
    },
    /// The service did not answer in time (the request may still take effect).
    #[error("the {service} service did not answer within {timeout:?}")]
    Timeout {
        /// The service called.
        service: &'static str,
        /// The time-out of the call.
        timeout: Duration,
    },
    /// The service crashed or could not decode the request.
    #[error("the {service} service failed while handling the request")]
    Failed {
        /// The service called.
        service: &'static str,
    },
}

/// How this process calls services; holds the circuit breakers every caller shares.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Calls {
    breakers: Breakers,
    started: Instant,
}

impl Default for Calls {
    fn default() -> Self {
        Self {
            breakers: Breakers::new(BREAKER),
            started: Instant::now(),
        }
    }
}

impl Calls {
    /// Asks service `A` once, waiting at most `timeout`.
    pub(crate) async fn ask<A, M>(
        &self,
        system: &ActorSystem,
        msg: M,
        timeout: Duration,
    ) -> Result<M::Reply, CallError>
    where
        A: Service + Handler<M>,
        M: Message,
    {
        let target = self.find::<A, M>(system).await?;
        let policy = CallPolicy::new().timeout(timeout);
        let started = Instant::now();
        let result = policy.ask(&target, msg).await;
        finish::<A, M>(&target, timeout, started, result)
    }

    /// Asks service `A`, repeating after a time-out or a lost node; each attempt waits at
    /// most `timeout`, the whole call at most three times that.
    pub(crate) async fn ask_idempotent<A, M>(
        &self,
        system: &ActorSystem,
        msg: M,
        timeout: Duration,
    ) -> Result<M::Reply, CallError>
    where
        A: Service + Handler<M>,
        M: Idempotent,
    {
        let target = self.find::<A, M>(system).await?;
        let policy = retrying(timeout);
        let started = Instant::now();
        let result = policy.ask_idempotent(&target, msg).await;
        finish::<A, M>(&target, timeout, started, result)
    }

    /// Like [`ask_idempotent`](Self::ask_idempotent), through the circuit breaker of `A` on
    /// the node it runs on: while open, calls fail at once as unavailable.
    pub(crate) async fn ask_guarded<A, M>(
        &self,
        system: &ActorSystem,
        msg: M,
        timeout: Duration,
    ) -> Result<M::Reply, CallError>
    where
        A: Service + Handler<M>,
        M: Idempotent,
    {
        let target = self.find::<A, M>(system).await?;
        let breaker = self.breakers.for_target(A::NAME, target.node());
        let policy = retrying(timeout).breaker(breaker);
        let started = Instant::now();
        let result = policy.ask_idempotent(&target, msg).await;
        finish::<A, M>(&target, timeout, started, result)
    }
}

fn retrying(timeout: Duration) -> CallPolicy {
    CallPolicy::new()
        .timeout(timeout)
        .total_timeout(timeout * 3)
        .retry(RETRY.with_jitter())
}

impl Calls {
    /// Finds `A` by name, waiting for it only while the process is young.
    async fn find<A, M>(&self, system: &ActorSystem) -> Result<ActorRef<A>, CallError>
    where
        A: Service + Handler<M>,
        M: Message,
    {
        let found = if self.started.elapsed() < WARM_UP {
            system.lookup_wait::<A>(A::NAME, LOOKUP_WAIT).await
        } else {
            system.lookup::<A>(A::NAME)
        };
        found.map_err(|e| {
            tracing::warn!(service = A::NAME, error = %e, "service not found");
            record(A::NAME, short_type_name::<M>(), "unavailable");
            CallError::Unavailable { service: A::NAME }
        })
    }
}

fn finish<A, M>(
    target: &ActorRef<A>,
    timeout: Duration,
    started: Instant,
    result: Result<M::Reply, AskError>,
) -> Result<M::Reply, CallError>
where
    A: Service + Handler<M>,
    M: Message,
{
    let (service, message) = (A::NAME, short_type_name::<M>());
    metrics::histogram!("shop_ask_seconds", "service" => service, "message" => message)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(reply) => {
            record(service, message, "ok");
            Ok(reply)
        }
        Err(e) => {
            let (error, outcome) = match e {
                AskError::Timeout(_) => (CallError::Timeout { service, timeout }, "timeout"),
                AskError::HandlerPanicked { .. }
                | AskError::Codec(_)
                | AskError::UnknownMessage { .. }
                | AskError::NotRemote { .. }
                | AskError::Remote { .. } => (CallError::Failed { service }, "failed"),
                AskError::CircuitOpen { .. } => {
                    (CallError::Unavailable { service }, "circuit_open")
                }
                _ => (CallError::Unavailable { service }, "unavailable"),
            };
            tracing::warn!(service, message, %target, error = %e, "call failed");
            record(service, message, outcome);
            Err(error)
        }
    }
}

fn record(service: &'static str, message: &'static str, outcome: &'static str) {
    metrics::counter!(
        "shop_asks_total",
        "service" => service,
        "message" => message,
        "outcome" => outcome
    )
    .increment(1);
}

/// `demo_shop::services::product::Reserve` -> `Reserve`.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}
