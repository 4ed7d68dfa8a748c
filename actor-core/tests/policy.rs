//! Call policies: per-call time-outs, retries for idempotent messages only, back-off with
//! jitter, circuit breakers per (service, node), counters and metrics.
//!
//! Timing is virtual (`start_paused`): the runtime jumps to the next timer when idle, so the
//! schedules below are exact up to Tokio's 1 ms timer resolution.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::Duration;

use actor_core::policy::{
    BreakerConfig, BreakerState, Breakers, CallPolicy, CircuitBreaker, Idempotent, Retry,
};
use actor_core::{
    Actor, ActorRef, ActorSystem, AskError, Backoff, ChildSpec, Context, Handler, Message,
    Supervisor,
};
use tokio::time::Instant;

/// Every attempt's time-out in these tests.
const TIMEOUT: Duration = Duration::from_millis(100);
/// How long a slow answer takes: longer than `TIMEOUT`, so the asker gives up first.
const SLOW: Duration = Duration::from_millis(120);
/// The breakers' cool-down in these tests.
const COOL_DOWN: Duration = Duration::from_secs(10);
/// Tokio's timer resolution: a sleep may end up to this much after its deadline.
const TICK: Duration = Duration::from_millis(1);

/// What a backend has seen, shared with the test.
#[derive(Clone, Default)]
struct Seen {
    handled: Arc<AtomicU32>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Seen {
    fn handled(&self) -> u32 {
        self.handled.load(Ordering::SeqCst)
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("arrivals").clone()
    }
}

/// Answers each message with how many it has handled; the first `slow` answers take `SLOW`.
struct Backend {
    seen: Seen,
    slow: u32,
}

impl Backend {
    async fn serve(&mut self) -> u32 {
        self.seen
            .arrivals
            .lock()
            .expect("arrivals")
            .push(Instant::now());
        let n = self.seen.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.slow {
            tokio::time::sleep(SLOW).await;
        }
        n
    }
}

impl Actor for Backend {}

/// A read: safe to repeat.
#[derive(Clone)]
struct Fetch;
impl Message for Fetch {
    type Reply = u32;
}
impl Idempotent for Fetch {}
impl Handler<Fetch> for Backend {
    async fn handle(&mut self, _msg: Fetch, _ctx: &mut Context<Self>) -> u32 {
        self.serve().await
    }
}

/// A write that must not be repeated (deliberately not `Clone` either).
struct Charge;
impl Message for Charge {
    type Reply = u32;
}
impl Handler<Charge> for Backend {
    async fn handle(&mut self, _msg: Charge, _ctx: &mut Context<Self>) -> u32 {
        self.serve().await
    }
}

/// Panics in the handler; marked idempotent so that only the outcome prevents a retry.
#[derive(Clone)]
struct Crash;
impl Message for Crash {
    type Reply = ();
}
impl Idempotent for Crash {}
impl Handler<Crash> for Backend {
    async fn handle(&mut self, _msg: Crash, _ctx: &mut Context<Self>) {
        self.seen.handled.fetch_add(1, Ordering::SeqCst);
        panic!("crash requested");
    }
}

/// A system on node `n1` with a backend named `backend` whose first `slow` answers are slow.
async fn start(slow: u32) -> (ActorSystem, ActorRef<Backend>, Seen) {
    let system = ActorSystem::builder().node_name("n1").build();
    let seen = Seen::default();
    let backend = Backend {
        seen: seen.clone(),
        slow,
    };
    let backend = system
        .spawn_named("backend", backend)
        .await
        .expect("spawn backend");
    (system, backend, seen)
}

/// A policy with the test time-out and a breaker that opens after 3 failures.
fn guarded(breakers: &Breakers) -> CallPolicy {
    CallPolicy::new()
        .timeout(TIMEOUT)
        .breaker(breakers.for_target("backend", "n1"))
}

fn breakers() -> Breakers {
    Breakers::new(BreakerConfig::new().open_after(3).cool_down(COOL_DOWN))
}

/// Opens the policy's breaker with three timed-out calls (the backend's first three answers
/// must be slow).
async fn open_breaker(policy: &CallPolicy, backend: &ActorRef<Backend>) {
    for _ in 0..3 {
        assert_eq!(
            policy.ask(backend, Fetch).await,
            Err(AskError::Timeout(TIMEOUT))
        );
    }
    assert_eq!(policy.stats().breaker, Some(BreakerState::Open));
}

fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"crash requested") {
            default(info);
        }
    }));
}

#[tokio::test(start_paused = true)]
async fn per_call_timeout_bounds_each_attempt() {
    let (system, backend, _seen) = start(1).await;
    let policy = CallPolicy::new().timeout(TIMEOUT);

    let started = Instant::now();
    assert_eq!(
        policy.ask(&backend, Fetch).await,
        Err(AskError::Timeout(TIMEOUT))
    );
    let waited = started.elapsed();
    assert!(waited >= TIMEOUT && waited <= TIMEOUT + TICK, "{waited:?}");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn without_a_timeout_the_refs_default_applies() {
    let default = Duration::from_millis(50); // shorter than a slow answer
    let system = ActorSystem::builder().ask_timeout(default).build();
    let backend = system
        .spawn(Backend {
            seen: Seen::default(),
            slow: 1,
        })
        .await
        .expect("spawn");

    assert_eq!(
        CallPolicy::new().ask(&backend, Fetch).await,
        Err(AskError::Timeout(default))
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn idempotent_message_is_retried_after_timeouts_and_succeeds_on_the_third_attempt() {
    let (system, backend, seen) = start(2).await;
    let policy = CallPolicy::new().timeout(TIMEOUT).retry(Retry::exponential(
        3,
        Duration::from_millis(50),
        Duration::from_secs(1),
    ));

    assert_eq!(policy.ask_idempotent(&backend, Fetch).await, Ok(3));
    assert_eq!(seen.handled(), 3);
    let stats = policy.stats();
    assert_eq!((stats.calls, stats.retries, stats.failures), (1, 2, 0));
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_message_is_never_retried() {
    let (system, backend, seen) = start(u32::MAX).await;
    let policy = CallPolicy::new().timeout(TIMEOUT).retry(Retry::exponential(
        5,
        Duration::from_millis(10),
        Duration::from_millis(10),
    ));

    assert_eq!(
        policy.ask(&backend, Charge).await,
        Err(AskError::Timeout(TIMEOUT))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.handled(), 1, "sent once");
    assert_eq!(policy.stats().retries, 0);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn handler_panicked_is_not_retried() {
    quiet_panics();
    let system = ActorSystem::new();
    let seen = Seen::default();
    let for_factory = seen.clone();
    let _tree =
        system
            .spawn_supervisor(Supervisor::one_for_one().backoff(Backoff::none()).child(
                ChildSpec::new("backend", move || Backend {
                    seen: for_factory.clone(),
                    slow: 0,
                }),
            ))
            .await
            .expect("supervisor");
    let backend = system.lookup::<Backend>("backend").expect("lookup");
    let policy = CallPolicy::new().timeout(TIMEOUT).retry(Retry::exponential(
        3,
        Duration::from_millis(10),
        Duration::from_millis(10),
    ));

    assert_eq!(
        policy.ask_idempotent(&backend, Crash).await,
        Err(AskError::HandlerPanicked { node: None })
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        seen.handled(),
        1,
        "a restarted instance would have taken a retry"
    );
    assert_eq!(policy.stats().retries, 0);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn retry_delays_grow_and_stay_within_equal_jitter_bounds() {
    let (system, backend, seen) = start(u32::MAX).await;
    let base = Duration::from_millis(100);
    let policy = CallPolicy::new()
        .timeout(TIMEOUT)
        .retry(Retry::exponential(3, base, Duration::from_secs(1)).with_equal_jitter());

    assert_eq!(
        policy.ask_idempotent(&backend, Fetch).await,
        Err(AskError::Timeout(TIMEOUT))
    );

    // Each attempt starts when the previous one timed out plus the back-off delay.
    let arrivals = seen.arrivals();
    assert_eq!(arrivals.len(), 4, "one attempt and three retries");
    let delays: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0] - TIMEOUT).collect();
    for (i, delay) in delays.iter().enumerate() {
        let cap = base * 2u32.pow(u32::try_from(i).expect("small"));
        assert!(
            *delay >= cap / 2 && *delay <= cap + 2 * TICK,
            "retry {}: {delay:?} outside [{:?}, {cap:?}]",
            i + 1,
            cap / 2
        );
    }
    assert!(
        delays.windows(2).all(|w| w[1] >= w[0]),
        "delays never shrink: {delays:?}"
    );
    assert_eq!(policy.stats().retries, 3);
    system.shutdown().await;
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let retry = Retry::exponential(6, Duration::from_millis(10), Duration::from_millis(50));
    let caps: Vec<u128> = (1..=6).map(|n| retry.backoff(n).as_millis()).collect();
    assert_eq!(caps, [10, 20, 40, 50, 50, 50]);
    assert_eq!(
        retry.delay(3),
        Duration::from_millis(40),
        "no jitter by default"
    );
}

#[test]
fn full_jitter_delays_stay_between_zero_and_the_cap() {
    let retry =
        Retry::exponential(4, Duration::from_millis(10), Duration::from_secs(1)).with_jitter();
    for n in 1..=4 {
        let cap = retry.backoff(n);
        for _ in 0..1_000 {
            assert!(retry.delay(n) <= cap);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn total_timeout_bounds_the_whole_call_across_retries() {
    let (system, backend, seen) = start(u32::MAX).await;
    let total = Duration::from_millis(400);
    let policy = CallPolicy::new()
        .timeout(TIMEOUT)
        .total_timeout(total)
        .retry(Retry::exponential(
            10,
            Duration::from_millis(50),
            Duration::from_millis(50),
        ));

    let started = Instant::now();
    assert_eq!(
        policy.ask_idempotent(&backend, Fetch).await,
        Err(AskError::Timeout(total))
    );
    let waited = started.elapsed();
    assert!(waited <= total + TICK, "{waited:?}");
    assert!(seen.handled() < 11, "ran out of time before retries");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_after_n_failures_and_then_fails_fast_without_reaching_the_actor() {
    let (system, backend, seen) = start(3).await;
    let breakers = breakers();
    let policy = guarded(&breakers);
    open_breaker(&policy, &backend).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.handled(), 3);

    let started = Instant::now();
    assert_eq!(
        policy.ask(&backend, Fetch).await,
        Err(AskError::CircuitOpen {
            target: "backend@n1".into()
        })
    );
    assert_eq!(started.elapsed(), Duration::ZERO, "failed fast");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.handled(), 3, "the actor was not reached");

    let stats = policy.stats();
    assert_eq!(
        (stats.calls, stats.failures, stats.short_circuited),
        (4, 3, 1)
    );
    let breaker = breakers.for_target("backend", "n1").stats();
    assert_eq!(
        (
            breaker.calls,
            breaker.failures,
            breaker.short_circuited,
            breaker.opened
        ),
        (3, 3, 1, 1)
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn after_the_cool_down_a_successful_probe_closes_the_breaker() {
    let (system, backend, seen) = start(3).await;
    let breakers = breakers();
    let policy = guarded(&breakers);
    open_breaker(&policy, &backend).await;

    tokio::time::sleep(COOL_DOWN).await;
    assert_eq!(
        policy.ask(&backend, Fetch).await,
        Ok(4),
        "the probe got through"
    );
    assert_eq!(policy.stats().breaker, Some(BreakerState::Closed));
    assert_eq!(policy.ask(&backend, Fetch).await, Ok(5));
    assert_eq!(seen.handled(), 5);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker() {
    let (system, backend, seen) = start(4).await;
    let breakers = breakers();
    let policy = guarded(&breakers);
    open_breaker(&policy, &backend).await;

    tokio::time::sleep(COOL_DOWN).await;
    assert_eq!(
        policy.ask(&backend, Fetch).await,
        Err(AskError::Timeout(TIMEOUT))
    );
    assert_eq!(policy.stats().breaker, Some(BreakerState::Open));
    assert!(matches!(
        policy.ask(&backend, Fetch).await,
        Err(AskError::CircuitOpen { .. })
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.handled(), 4, "only the probe reached the actor");
    assert_eq!(breakers.for_target("backend", "n1").stats().opened, 2);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn half_open_breaker_lets_a_single_probe_through() {
    let (system, backend, seen) = start(4).await;
    let breakers = breakers();
    let policy = guarded(&breakers);
    open_breaker(&policy, &backend).await;
    tokio::time::sleep(COOL_DOWN).await;

    let probe = tokio::spawn({
        let (policy, backend) = (policy.clone(), backend.clone());
        async move { policy.ask(&backend, Fetch).await }
    });
    while policy.stats().breaker != Some(BreakerState::HalfOpen) {
        tokio::task::yield_now().await;
    }
    assert!(matches!(
        policy.ask(&backend, Fetch).await,
        Err(AskError::CircuitOpen { .. })
    ));
    assert_eq!(
        probe.await.expect("probe task"),
        Err(AskError::Timeout(TIMEOUT))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen.handled(), 4);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_lets_the_next_call_probe() {
    let (system, backend, _seen) = start(4).await;
    let breakers = breakers();
    let policy = guarded(&breakers);
    open_breaker(&policy, &backend).await;
    tokio::time::sleep(COOL_DOWN).await;

    let cancelled =
        tokio::time::timeout(Duration::from_millis(10), policy.ask(&backend, Fetch)).await;
    assert!(cancelled.is_err(), "the probe was dropped unfinished");
    assert_eq!(policy.stats().breaker, Some(BreakerState::HalfOpen));

    tokio::time::sleep(SLOW).await; // let the backend finish the abandoned probe
    assert_eq!(policy.ask(&backend, Fetch).await, Ok(5));
    assert_eq!(policy.stats().breaker, Some(BreakerState::Closed));
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn breakers_are_independent_per_service_and_node() {
    let breakers = Breakers::new(BreakerConfig::new().open_after(2));
    let payment_n1 = breakers.for_target("payment", "n1");
    for _ in 0..2 {
        let down = payment_n1
            .call(async { Err::<(), _>(AskError::NodeDown { node: "n1".into() }) })
            .await;
        assert!(down.is_err());
    }
    assert_eq!(payment_n1.state(), BreakerState::Open);
    assert!(Arc::ptr_eq(
        &payment_n1,
        &breakers.for_target("payment", "n1")
    ));

    let payment_n2 = breakers.for_target("payment", "n2");
    let shipping_n1 = breakers.for_target("shipping", "n1");
    assert_eq!(payment_n2.call(async { Ok(1) }).await, Ok(1));
    assert_eq!(shipping_n1.call(async { Ok(2) }).await, Ok(2));
    assert_eq!(payment_n2.state(), BreakerState::Closed);
    assert_eq!(shipping_n1.state(), BreakerState::Closed);
    let states: Vec<_> = breakers
        .stats()
        .into_iter()
        .map(|s| (s.service, s.node, s.state))
        .collect();
    assert_eq!(
        states,
        [
            ("payment".into(), "n1".into(), BreakerState::Open),
            ("payment".into(), "n2".into(), BreakerState::Closed),
            ("shipping".into(), "n1".into(), BreakerState::Closed),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn answers_that_are_errors_do_not_open_the_breaker() {
    let breaker = CircuitBreaker::new("orders", "n1", BreakerConfig::new().open_after(1));
    let answers = [
        AskError::HandlerPanicked { node: None },
        AskError::UnknownMessage {
            tag: "shop.orders.v9".into(),
        },
        AskError::Codec("bad bytes".into()),
        AskError::Stopped,
    ];
    for answer in answers {
        let outcome = breaker.call(async { Err::<(), _>(answer.clone()) }).await;
        assert_eq!(outcome, Err(answer));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn policy_works_through_a_recipient() {
    let (system, backend, seen) = start(1).await;
    let recipient = backend.recipient::<Fetch>();
    let policy = CallPolicy::new().timeout(TIMEOUT).retry(Retry::exponential(
        1,
        Duration::from_millis(50),
        Duration::from_millis(50),
    ));
    assert_eq!(policy.ask_idempotent(&recipient, Fetch).await, Ok(2));
    assert_eq!(seen.handled(), 2);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn clones_share_counters_and_derived_policies_count_apart() {
    let (system, backend, _seen) = start(0).await;
    let base = CallPolicy::new().timeout(TIMEOUT);
    let clone = base.clone();
    let derived = base.clone().total_timeout(Duration::from_secs(1));
    base.ask(&backend, Fetch).await.expect("reply");
    clone.ask(&backend, Fetch).await.expect("reply");
    derived.ask(&backend, Fetch).await.expect("reply");
    assert_eq!(base.stats().calls, 2);
    assert_eq!(clone.stats().calls, 2);
    assert_eq!(derived.stats().calls, 1);
    system.shutdown().await;
}

/// A metrics recorder that keeps every counter and gauge, keyed by name and sorted labels.
#[derive(Default)]
struct Captured {
    values: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

static CAPTURED: LazyLock<Captured> = LazyLock::new(Captured::default);

impl Captured {
    /// Installs the recorder for this test binary (once) and returns what it captured.
    fn install() -> &'static Captured {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            metrics::set_global_recorder(CapturedRecorder).expect("no other recorder");
        });
        &CAPTURED
    }

    fn cell(&self, key: &metrics::Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let id = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut values = self.values.lock().expect("values");
        Arc::clone(values.entry(id).or_default())
    }

    fn counter(&self, id: &str) -> u64 {
        let values = self.values.lock().expect("values");
        values.get(id).map_or(0, |v| v.load(Ordering::SeqCst))
    }

    fn gauge(&self, id: &str) -> Option<f64> {
        let values = self.values.lock().expect("values");
        values
            .get(id)
            .map(|v| f64::from_bits(v.load(Ordering::SeqCst)))
    }
}

struct CapturedRecorder;

impl metrics::Recorder for CapturedRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(CAPTURED.cell(key))
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(CAPTURED.cell(key))
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[tokio::test(start_paused = true)]
async fn calls_retries_and_breaker_state_are_recorded_as_metrics() {
    let captured = Captured::install();
    let (system, backend, _seen) = start(2).await;
    let breakers = Breakers::new(BreakerConfig::new().open_after(2));
    let policy = CallPolicy::new()
        .timeout(TIMEOUT)
        .retry(Retry::exponential(
            1,
            Duration::from_millis(50),
            Duration::from_millis(50),
        ))
        .breaker(breakers.for_target("ledger", "n1"));

    // Two timed-out attempts (one retry) open the breaker; the next call is refused.
    assert_eq!(
        policy.ask_idempotent(&backend, Fetch).await,
        Err(AskError::Timeout(TIMEOUT))
    );
    assert!(matches!(
        policy.ask_idempotent(&backend, Fetch).await,
        Err(AskError::CircuitOpen { .. })
    ));

    let labels = "node=n1,service=ledger";
    assert_eq!(
        captured.counter("actor_calls_total{node=n1,outcome=timeout,service=ledger}"),
        1
    );
    assert_eq!(
        captured.counter("actor_calls_total{node=n1,outcome=circuit_open,service=ledger}"),
        1
    );
    assert_eq!(
        captured.counter(&format!("actor_call_retries_total{{{labels}}}")),
        1
    );
    assert_eq!(
        captured.counter(&format!("actor_breaker_opened_total{{{labels}}}")),
        1
    );
    assert_eq!(
        captured.counter(&format!("actor_breaker_short_circuited_total{{{labels}}}")),
        1
    );
    assert_eq!(
        captured.gauge(&format!("actor_breaker_state{{{labels}}}")),
        Some(2.0)
    );
    system.shutdown().await;
}
