//! Supervision: restarts keep refs and mailboxes, strategies, intensity, back-off.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actor_core::{
    Actor, ActorSystem, AskError, Backoff, BoxError, ChildSpec, Context, ExitReason, Handler,
    Message, Restart, SpawnError, Supervisor,
};
use tokio::time::Instant;

/// Counts its starts in a shared log; keeps a per-instance counter; panics on demand.
struct Worker {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    handled: u32,
    fail_start: Arc<AtomicU32>,
}

impl Worker {
    fn factory(
        name: &'static str,
        log: &Arc<Mutex<Vec<String>>>,
    ) -> impl FnMut() -> Worker + Send + 'static {
        let log = log.clone();
        move || Worker {
            name,
            log: log.clone(),
            handled: 0,
            fail_start: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Actor for Worker {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.log
            .lock()
            .expect("log")
            .push(format!("start {}", self.name));
        if self.fail_start.load(Ordering::SeqCst) > 0 {
            self.fail_start.fetch_sub(1, Ordering::SeqCst);
            return Err("not ready".into());
        }
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.log
            .lock()
            .expect("log")
            .push(format!("stop {}", self.name));
    }
}

struct Crash;
impl Message for Crash {
    type Reply = ();
}
impl Handler<Crash> for Worker {
    async fn handle(&mut self, _msg: Crash, _ctx: &mut Context<Self>) {
        panic!("crash requested");
    }
}

/// Crashes the worker when it holds `true`; counts as handled otherwise.
struct Step(bool);
impl Message for Step {
    type Reply = ();
}
impl Handler<Step> for Worker {
    async fn handle(&mut self, msg: Step, _ctx: &mut Context<Self>) {
        assert!(!msg.0, "crash requested");
        self.handled += 1;
    }
}

struct Count;
impl Message for Count {
    type Reply = u32;
}
impl Handler<Count> for Worker {
    async fn handle(&mut self, _msg: Count, _ctx: &mut Context<Self>) -> u32 {
        self.handled += 1;
        self.handled
    }
}

/// The start and stop lines the workers of one test write.
type Log = Arc<Mutex<Vec<String>>>;

/// A system, with the panics these tests cause silenced, and an empty log for its workers.
fn setup() -> (ActorSystem, Log) {
    quiet_panics();
    (ActorSystem::new(), Arc::new(Mutex::new(Vec::new())))
}

/// `supervisor` with a [`Worker`] child per name, in order, all writing to `log`.
fn with_workers(supervisor: Supervisor, names: &[&'static str], log: &Log) -> Supervisor {
    names.iter().fold(supervisor, |s, name| {
        s.child(ChildSpec::new(*name, Worker::factory(name, log)))
    })
}

fn starts(log: &Log, name: &str) -> usize {
    let line = format!("start {name}");
    log.lock()
        .expect("log")
        .iter()
        .filter(|l| **l == line)
        .count()
}

/// Silences the panics the tests cause on purpose, keeping every other panic message.
fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"crash requested") {
            default(info);
        }
    }));
}

#[tokio::test]
async fn panicking_handler_is_restarted_and_an_earlier_ref_still_works() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(with_workers(
            Supervisor::one_for_one().backoff(Backoff::none()),
            &["w"],
            &log,
        ))
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    assert_eq!(w.ask(Count).await, Ok(1));
    let _ = w.ask(Crash).await;
    assert_eq!(
        w.ask(Count).await,
        Ok(1),
        "a fresh instance answers through the old ref"
    );
    assert_eq!(starts(&log, "w"), 2);
    assert_eq!(system.lookup::<Worker>("w").expect("name kept"), w);
    system.shutdown().await;
}

#[tokio::test]
async fn the_message_that_panicked_fails_its_ask_and_the_next_succeeds_on_fresh_state() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(with_workers(
            Supervisor::one_for_one().backoff(Backoff::none()),
            &["w"],
            &log,
        ))
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    assert_eq!(w.ask(Count).await, Ok(1));
    assert_eq!(w.ask(Count).await, Ok(2));
    assert_eq!(
        w.ask(Crash).await,
        Err(AskError::HandlerPanicked { node: None })
    );
    assert_eq!(w.ask(Count).await, Ok(1));
    system.shutdown().await;
}

#[tokio::test]
async fn messages_queued_behind_a_crash_go_to_the_new_instance() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .backoff(Backoff::exponential(
                    Duration::from_millis(20),
                    Duration::from_millis(20),
                ))
                .child(ChildSpec::new("w", Worker::factory("w", &log))),
        )
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    w.tell(Crash).await.expect("tell");
    let queued: Vec<_> = (0..3).map(|_| w.ask(Count)).collect();
    let replies = futures::future::join_all(queued).await;
    let mut counts: Vec<u32> = replies.into_iter().map(|r| r.expect("answered")).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 2, 3]);
    system.shutdown().await;
}

#[tokio::test]
async fn a_crash_inside_a_burst_hands_the_rest_of_the_burst_to_the_new_instance() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(
            Supervisor::one_for_one().child(ChildSpec::new("w", Worker::factory("w", &log))),
        )
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    let mut burst: VecDeque<Step> = [false, true, false, false].into_iter().map(Step).collect();
    assert!(matches!(w.try_tell_many(&mut burst), Ok(4)));
    // The first step went to the crashed instance; the two after the crash and this ask
    // are the new instance's first three messages.
    assert_eq!(w.ask(Count).await, Ok(3));
    assert_eq!(starts(&log, "w"), 2);
    system.shutdown().await;
}

#[tokio::test]
async fn one_for_all_restarts_the_siblings() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(with_workers(
            Supervisor::one_for_all().backoff(Backoff::none()),
            &["a", "b", "c"],
            &log,
        ))
        .await
        .expect("supervisor");
    let b = system.lookup::<Worker>("b").expect("b");
    let _ = b.ask(Crash).await;
    let a = system.lookup::<Worker>("a").expect("a");
    assert_eq!(a.ask(Count).await, Ok(1));
    let c = system.lookup::<Worker>("c").expect("c");
    assert_eq!(c.ask(Count).await, Ok(1));
    assert_eq!(
        (starts(&log, "a"), starts(&log, "b"), starts(&log, "c")),
        (2, 2, 2)
    );
    let lines = log.lock().expect("log").clone();
    // Siblings stop in reverse start order, then all start in order.
    assert_eq!(
        lines[3..],
        ["stop c", "stop a", "start a", "start b", "start c"].map(String::from)
    );
    system.shutdown().await;
}

#[tokio::test]
async fn rest_for_one_restarts_only_later_siblings() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(with_workers(
            Supervisor::rest_for_one().backoff(Backoff::none()),
            &["a", "b", "c"],
            &log,
        ))
        .await
        .expect("supervisor");
    let a = system.lookup::<Worker>("a").expect("a");
    assert_eq!(a.ask(Count).await, Ok(1));
    let b = system.lookup::<Worker>("b").expect("b");
    let _ = b.ask(Crash).await;
    assert_eq!(b.ask(Count).await, Ok(1));
    assert_eq!(
        a.ask(Count).await,
        Ok(2),
        "an earlier sibling keeps its state"
    );
    assert_eq!(
        (starts(&log, "a"), starts(&log, "b"), starts(&log, "c")),
        (1, 2, 2)
    );
    system.shutdown().await;
}

#[tokio::test]
async fn one_for_one_leaves_siblings_alone() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(with_workers(
            Supervisor::one_for_one().backoff(Backoff::none()),
            &["a", "b"],
            &log,
        ))
        .await
        .expect("supervisor");
    let a = system.lookup::<Worker>("a").expect("a");
    assert_eq!(a.ask(Count).await, Ok(1));
    let _ = system.lookup::<Worker>("b").expect("b").ask(Crash).await;
    assert_eq!(a.ask(Count).await, Ok(2));
    assert_eq!((starts(&log, "a"), starts(&log, "b")), (1, 2));
    system.shutdown().await;
}

#[tokio::test]
async fn exceeding_restart_intensity_stops_the_supervisor_and_its_children() {
    let (system, log) = setup();
    let tree = system
        .spawn_supervisor(with_workers(
            Supervisor::one_for_one()
                .max_restarts(2, Duration::from_secs(60))
                .backoff(Backoff::none()),
            &["w"],
            &log,
        ))
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    for _ in 0..3 {
        let _ = w.ask(Crash).await;
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), tree.wait())
        .await
        .expect("supervisor gives up");
    assert!(
        matches!(reason, ExitReason::Failed(ref why) if why.contains("intensity")),
        "{reason:?}"
    );
    assert!(!tree.is_running());
    assert!(!w.is_alive());
    assert!(system.lookup::<Worker>("w").is_err(), "the name is freed");
    assert_eq!(starts(&log, "w"), 3);
    system.shutdown().await;
}

#[tokio::test]
async fn a_nested_supervisor_that_gives_up_is_restarted_by_its_parent() {
    let (system, log) = setup();
    let outer = system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .named("outer")
                .max_restarts(5, Duration::from_secs(60))
                .backoff(Backoff::none())
                .child(ChildSpec::new("sibling", Worker::factory("sibling", &log)))
                .child(with_workers(
                    Supervisor::one_for_one()
                        .named("inner")
                        .max_restarts(1, Duration::from_secs(60))
                        .backoff(Backoff::none()),
                    &["w"],
                    &log,
                )),
        )
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    let _ = w.ask(Crash).await; // inner restarts w (1 restart)
    let _ = w.ask(Crash).await; // inner exceeds its intensity and fails upward
    // The outer supervisor restarts the inner one, which starts w again; the old ref works.
    assert_eq!(w.ask(Count).await, Ok(1));
    assert_eq!(
        outer.restarts(),
        1,
        "the parent saw the nested supervisor fail"
    );
    assert_eq!(starts(&log, "w"), 3);
    assert_eq!(
        starts(&log, "sibling"),
        1,
        "one-for-one: the sibling is untouched"
    );
    assert!(outer.is_running());
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_exponentially() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .max_restarts(10, Duration::from_secs(600))
                .backoff(Backoff::exponential(
                    Duration::from_millis(100),
                    Duration::from_millis(300),
                ))
                .child(ChildSpec::new("w", Worker::factory("w", &log))),
        )
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    let mut waits = Vec::new();
    for _ in 0..4 {
        let _ = w.ask(Crash).await;
        let t0 = Instant::now();
        assert_eq!(w.ask(Count).await, Ok(1));
        waits.push(t0.elapsed());
    }
    let expected = [100, 200, 300, 300].map(Duration::from_millis);
    for (got, want) in waits.iter().zip(expected) {
        assert!(
            *got >= want && *got < want + Duration::from_millis(50),
            "waited {got:?}, want {want:?}"
        );
    }
    system.shutdown().await;
}

#[tokio::test]
async fn a_failing_started_counts_as_a_failure() {
    let system = ActorSystem::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicU32::new(0));
    let factory = {
        let log = log.clone();
        let failures = failures.clone();
        move || Worker {
            name: "w",
            log: log.clone(),
            handled: 0,
            fail_start: failures.clone(),
        }
    };
    let tree = system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .max_restarts(3, Duration::from_secs(60))
                .backoff(Backoff::none())
                .child(ChildSpec::new("w", factory)),
        )
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    failures.store(2, Ordering::SeqCst); // the next two starts fail
    w.stop(); // permanent: restarted after a normal stop
    assert_eq!(w.ask(Count).await, Ok(1));
    assert_eq!(
        starts(&log, "w"),
        4,
        "first start, two failed restarts, one good"
    );
    assert_eq!(tree.restarts(), 3);
    system.shutdown().await;
}

#[tokio::test]
async fn spawn_reports_a_failing_started() {
    let system = ActorSystem::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let worker = Worker {
        name: "w",
        log,
        handled: 0,
        fail_start: Arc::new(AtomicU32::new(1)),
    };
    match system.spawn_named("w", worker).await {
        Err(SpawnError::StartFailed { name, reason }) => {
            assert_eq!(name, "w");
            assert!(reason.contains("not ready"), "{reason}");
        }
        other => panic!("expected StartFailed, got {other:?}"),
    }
    system.shutdown().await;
}

#[tokio::test]
async fn transient_child_is_not_restarted_after_a_normal_stop() {
    let system = ActorSystem::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let _tree = system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .backoff(Backoff::none())
                .child(ChildSpec::new("t", Worker::factory("t", &log)).restart(Restart::Transient)),
        )
        .await
        .expect("supervisor");
    let t = system.lookup::<Worker>("t").expect("lookup");
    t.stop();
    tokio::time::timeout(Duration::from_secs(5), async {
        while t.is_alive() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("stops for good");
    assert_eq!(starts(&log, "t"), 1);
    assert!(system.lookup::<Worker>("t").is_err());
    system.shutdown().await;
}

#[tokio::test]
async fn an_unsupervised_actor_that_panics_stops_alone() {
    let (system, log) = setup();
    let victim = system
        .spawn_named("victim", Worker::factory("victim", &log)())
        .await
        .expect("spawn");
    let bystander = system
        .spawn(Worker::factory("bystander", &log)())
        .await
        .expect("spawn");
    assert_eq!(
        victim.ask(Crash).await,
        Err(AskError::HandlerPanicked { node: None })
    );
    assert_eq!(bystander.ask(Count).await, Ok(1));
    assert_eq!(victim.ask(Count).await, Err(AskError::Stopped));
    assert!(system.lookup::<Worker>("victim").is_err());
    system.shutdown().await;
}

#[tokio::test]
async fn counters_show_handled_messages_failures_and_restarts() {
    let (system, log) = setup();
    let _tree = system
        .spawn_supervisor(with_workers(
            Supervisor::one_for_one().backoff(Backoff::none()),
            &["w"],
            &log,
        ))
        .await
        .expect("supervisor");
    let w = system.lookup::<Worker>("w").expect("lookup");
    w.ask(Count).await.expect("count");
    let _ = w.ask(Crash).await;
    w.ask(Count).await.expect("count after restart");
    let stats = w.stats().expect("local");
    assert_eq!((stats.handled, stats.failures, stats.restarts), (3, 1, 1));
    assert_eq!(stats.name.as_deref(), Some("w"));
    let system_stats = system.stats();
    assert_eq!((system_stats.handler_panics, system_stats.restarts), (1, 1));
    assert_eq!(system.actor_stats(), vec![stats]);
    system.shutdown().await;
}
