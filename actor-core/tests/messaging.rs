//! Delivery through `ActorRef`: tell, try_tell, ask, time-outs, recipients.

use std::collections::VecDeque;
use std::time::Duration;

use actor_core::trace::{self, TraceContext};
use actor_core::{
    Actor, ActorSystem, AskError, Context, Handler, Message, SendError, SpawnOptions,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Records every number it is told; answers with what it has seen.
#[derive(Default)]
struct Recorder {
    seen: Vec<u64>,
}
impl Actor for Recorder {}

struct Record(u64);
impl Message for Record {
    type Reply = ();
}
impl Handler<Record> for Recorder {
    async fn handle(&mut self, msg: Record, _ctx: &mut Context<Self>) {
        self.seen.push(msg.0);
    }
}

struct Seen;
impl Message for Seen {
    type Reply = Vec<u64>;
}
impl Handler<Seen> for Recorder {
    async fn handle(&mut self, _msg: Seen, _ctx: &mut Context<Self>) -> Vec<u64> {
        self.seen.clone()
    }
}

/// Waits for a permit before answering: lets a test hold a handler open.
struct Gate(Arc<Semaphore>);
impl Message for Gate {
    type Reply = ();
}
impl Handler<Gate> for Recorder {
    async fn handle(&mut self, msg: Gate, _ctx: &mut Context<Self>) {
        let _permit = msg.0.acquire().await;
    }
}

/// Says it has begun (`entered`), then takes a permit of `tickets` for good and records its
/// number: lets a test let handlers through one at a time.
struct Ticket {
    entered: Arc<Semaphore>,
    tickets: Arc<Semaphore>,
    n: u64,
}
impl Message for Ticket {
    type Reply = ();
}
impl Handler<Ticket> for Recorder {
    async fn handle(&mut self, msg: Ticket, _ctx: &mut Context<Self>) {
        msg.entered.add_permits(1);
        if let Ok(permit) = msg.tickets.acquire().await {
            permit.forget();
        }
        self.seen.push(msg.n);
    }
}

struct Sleep(Duration);
impl Message for Sleep {
    type Reply = &'static str;
}
impl Handler<Sleep> for Recorder {
    async fn handle(&mut self, msg: Sleep, _ctx: &mut Context<Self>) -> &'static str {
        tokio::time::sleep(msg.0).await;
        "slept"
    }
}

#[tokio::test]
async fn ask_returns_the_reply() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    actor.tell(Record(7)).await.expect("tell");
    assert_eq!(actor.ask(Seen).await, Ok(vec![7]));
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_from_one_sender_arrive_in_send_order() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    for i in 0..10_000 {
        actor.tell(Record(i)).await.expect("tell");
    }
    let seen = actor.ask(Seen).await.expect("ask");
    assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_from_several_senders_keep_each_senders_order() {
    let system = ActorSystem::new();
    let actor = system
        .spawn_with(Recorder::default(), SpawnOptions::new().mailbox_capacity(8))
        .await
        .expect("spawn");
    let mut senders = Vec::new();
    for s in 0..4u64 {
        let actor = actor.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..2_000u64 {
                actor.tell(Record(s * 1_000_000 + i)).await.expect("tell");
            }
        }));
    }
    for s in senders {
        s.await.expect("sender");
    }
    let seen = actor.ask(Seen).await.expect("ask");
    assert_eq!(seen.len(), 8_000);
    for s in 0..4u64 {
        let mine: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|v| v / 1_000_000 == s)
            .collect();
        assert_eq!(
            mine,
            (0..2_000).map(|i| s * 1_000_000 + i).collect::<Vec<_>>()
        );
    }
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_times_out_with_timeout_error_and_the_actor_keeps_working() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let outcome = actor
        .ask_timeout(Sleep(Duration::from_secs(60)), Duration::from_millis(100))
        .await;
    assert_eq!(outcome, Err(AskError::Timeout(Duration::from_millis(100))));
    // The slow handler finishes; later asks are answered.
    assert_eq!(
        actor
            .ask_timeout(Sleep(Duration::ZERO), Duration::from_secs(120))
            .await,
        Ok("slept")
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_uses_the_systems_default_timeout() {
    let system = ActorSystem::builder()
        .ask_timeout(Duration::from_millis(250))
        .build();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let outcome = actor.ask(Sleep(Duration::from_secs(10))).await;
    assert_eq!(outcome, Err(AskError::Timeout(Duration::from_millis(250))));
    system.shutdown().await;
}

#[tokio::test]
async fn try_tell_on_a_full_mailbox_returns_the_message() {
    let system = ActorSystem::new();
    let actor = system
        .spawn_with(Recorder::default(), SpawnOptions::new().mailbox_capacity(2))
        .await
        .expect("spawn");
    assert_eq!(actor.mailbox_capacity(), Some(2));
    let gate = Arc::new(Semaphore::new(0));
    actor.try_tell(Gate(gate.clone())).expect("first fits");
    actor.try_tell(Record(1)).expect("second fits");
    match actor.try_tell(Record(2)) {
        Err(SendError::Full(Record(n))) => assert_eq!(n, 2),
        other => panic!("expected Full with the message back, got {other:?}"),
    }
    gate.add_permits(1);
    assert_eq!(actor.ask(Seen).await, Ok(vec![1]));
    system.shutdown().await;
}

#[tokio::test]
async fn try_tell_many_queues_what_fits_in_order_and_leaves_the_rest() {
    let system = ActorSystem::new();
    let actor = system
        .spawn_with(Recorder::default(), SpawnOptions::new().mailbox_capacity(4))
        .await
        .expect("spawn");
    let gate = Arc::new(Semaphore::new(0));
    actor.try_tell(Gate(gate.clone())).expect("fits");
    let mut burst: VecDeque<Record> = (1..=5).map(Record).collect();
    assert!(
        matches!(actor.try_tell_many(&mut burst), Ok(3)),
        "room for three"
    );
    let left: Vec<u64> = burst.iter().map(|r| r.0).collect();
    assert_eq!(left, vec![4, 5], "the rest stay, in order");
    assert!(matches!(actor.try_tell_many(&mut burst), Ok(0)), "full");
    assert_eq!(burst.len(), 2);
    gate.add_permits(1);
    for r in burst.drain(..) {
        actor.tell(r).await.expect("room again");
    }
    assert_eq!(actor.ask(Seen).await, Ok(vec![1, 2, 3, 4, 5]));
    system.shutdown().await;
}

#[tokio::test]
async fn try_tell_many_to_a_stopped_actor_fails_and_keeps_every_message() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    system.shutdown().await;
    let mut burst: VecDeque<Record> = (1..=3).map(Record).collect();
    assert!(matches!(
        actor.try_tell_many(&mut burst),
        Err(SendError::Stopped(()))
    ));
    assert_eq!(burst.len(), 3);
}

#[tokio::test]
async fn a_stop_comes_between_two_messages_of_a_burst() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let (entered, tickets) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    let mut burst: VecDeque<Ticket> = (1..=5)
        .map(|n| Ticket {
            entered: entered.clone(),
            tickets: tickets.clone(),
            n,
        })
        .collect();
    assert!(matches!(actor.try_tell_many(&mut burst), Ok(5)));
    let first = tokio::time::timeout(Duration::from_secs(5), entered.acquire()).await;
    assert!(
        matches!(first, Ok(Ok(_))),
        "the first message is being handled"
    );
    assert!(actor.stop());
    // One ticket: the first message ends. The second would wait for good.
    tickets.add_permits(1);
    for _ in 0..500 {
        if !actor.is_alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!actor.is_alive(), "stopped after the first message");
    assert_eq!(entered.available_permits(), 0, "the second never began");
    system.shutdown().await;
}

/// Records its numbers in a shared log, and stops itself at `stop_at`.
struct Quitter {
    log: Arc<std::sync::Mutex<Vec<u64>>>,
    stop_at: u64,
}
impl Actor for Quitter {}
impl Handler<Record> for Quitter {
    async fn handle(&mut self, msg: Record, ctx: &mut Context<Self>) {
        self.log.lock().expect("log").push(msg.0);
        if msg.0 == self.stop_at {
            ctx.stop();
        }
    }
}

#[tokio::test]
async fn an_actor_that_stops_itself_inside_a_burst_handles_nothing_after() {
    let system = ActorSystem::new();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let actor = system
        .spawn(Quitter {
            log: log.clone(),
            stop_at: 2,
        })
        .await
        .expect("spawn");
    let mut burst: VecDeque<Record> = (1..=5).map(Record).collect();
    assert!(matches!(actor.try_tell_many(&mut burst), Ok(5)));
    for _ in 0..500 {
        if !actor.is_alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!actor.is_alive(), "stopped itself");
    assert_eq!(*log.lock().expect("log"), vec![1, 2]);
    system.shutdown().await;
}

#[tokio::test]
async fn tell_waits_for_room_instead_of_failing() {
    let system = ActorSystem::new();
    let actor = system
        .spawn_with(Recorder::default(), SpawnOptions::new().mailbox_capacity(1))
        .await
        .expect("spawn");
    let gate = Arc::new(Semaphore::new(0));
    actor.tell(Gate(gate.clone())).await.expect("fits");
    let blocked = {
        let actor = actor.clone();
        tokio::spawn(async move { actor.tell(Record(9)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !blocked.is_finished(),
        "tell must wait while the mailbox is full"
    );
    gate.add_permits(1);
    blocked
        .await
        .expect("join")
        .expect("delivered once room was made");
    assert_eq!(actor.ask(Seen).await, Ok(vec![9]));
    system.shutdown().await;
}

#[tokio::test]
async fn send_to_a_stopped_actor_fails_with_stopped_and_returns_the_message() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    assert!(actor.stop());
    tokio::time::timeout(Duration::from_secs(5), async {
        while actor.is_alive() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("actor stops");
    match actor.tell(Record(3)).await {
        Err(SendError::Stopped(Record(n))) => assert_eq!(n, 3),
        other => panic!("expected Stopped, got {other:?}"),
    }
    assert_eq!(actor.ask(Seen).await, Err(AskError::Stopped));
    system.shutdown().await;
}

#[tokio::test]
async fn recipient_delivers_without_knowing_the_actor_type() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let recipient = actor.recipient::<Record>();
    recipient.tell(Record(1)).await.expect("tell");
    recipient.try_tell(Record(2)).expect("try_tell");
    assert_eq!(recipient.id(), actor.id());
    assert_eq!(actor.ask(Seen).await, Ok(vec![1, 2]));
    system.shutdown().await;
}

#[tokio::test]
async fn refs_compare_hash_and_print_by_node_name_and_id() {
    use std::collections::HashSet;
    let system = ActorSystem::builder().node_name("n1").build();
    let a = system
        .spawn_named("alpha", Recorder::default())
        .await
        .expect("spawn");
    let b = system.spawn(Recorder::default()).await.expect("spawn");
    let set: HashSet<_> = [a.clone(), a.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_ne!(a, b);
    assert_eq!(a.to_string(), format!("n1/alpha{}", a.id()));
    assert!(format!("{a:?}").starts_with("ActorRef<Recorder>(n1/alpha#"));
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn each_ask_times_out_at_its_own_deadline() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let gate = Arc::new(Semaphore::new(0));
    actor
        .tell(Gate(gate.clone()))
        .await
        .expect("hold the actor");
    let start = tokio::time::Instant::now();
    let asks = [300u64, 100, 200].map(|ms| {
        let actor = actor.clone();
        tokio::spawn(async move {
            let outcome = actor.ask_timeout(Seen, Duration::from_millis(ms)).await;
            (ms, outcome, start.elapsed())
        })
    });
    for ask in asks {
        let (ms, outcome, elapsed) = ask.await.expect("join");
        assert_eq!(outcome, Err(AskError::Timeout(Duration::from_millis(ms))));
        assert!(
            elapsed >= Duration::from_millis(ms) && elapsed < Duration::from_millis(ms + 5),
            "the {ms} ms ask timed out after {elapsed:?}"
        );
    }
    assert_eq!(system.stats().asks_timed_out, 3);
    gate.add_permits(1);
    assert_eq!(actor.ask(Seen).await, Ok(vec![]));
    system.shutdown().await;
}

#[tokio::test]
async fn send_ask_pipelines_asks_in_send_order() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let mut pending = Vec::new();
    for i in 0..100 {
        actor.tell(Record(i)).await.expect("tell");
        pending.push(actor.send_ask(Seen).await.expect("queued"));
    }
    for (i, reply) in pending.into_iter().enumerate() {
        let seen = reply.await.expect("reply");
        assert_eq!(
            seen.len(),
            i + 1,
            "each ask sees exactly the tells sent before it"
        );
    }
    system.shutdown().await;
}

/// The trace id a handler runs in.
struct CurrentTrace;
impl Message for CurrentTrace {
    type Reply = Option<u128>;
}
impl Handler<CurrentTrace> for Recorder {
    async fn handle(&mut self, _msg: CurrentTrace, _ctx: &mut Context<Self>) -> Option<u128> {
        TraceContext::current().map(|t| t.trace_id())
    }
}

/// Records the trace context each `Record` is handled in.
#[derive(Default)]
struct TraceRecorder {
    seen: Vec<Option<TraceContext>>,
}
impl Actor for TraceRecorder {}
impl Handler<Record> for TraceRecorder {
    async fn handle(&mut self, _msg: Record, _ctx: &mut Context<Self>) {
        self.seen.push(TraceContext::current());
    }
}
struct Traces;
impl Message for Traces {
    type Reply = Vec<Option<TraceContext>>;
}
impl Handler<Traces> for TraceRecorder {
    async fn handle(
        &mut self,
        _msg: Traces,
        _ctx: &mut Context<Self>,
    ) -> Vec<Option<TraceContext>> {
        std::mem::take(&mut self.seen)
    }
}

#[tokio::test]
async fn each_message_of_a_burst_runs_in_a_trace_context_of_its_own_under_its_senders() {
    let system = ActorSystem::new();
    let actor = system.spawn(TraceRecorder::default()).await.expect("spawn");
    let root = TraceContext::new_root();
    let mut burst: VecDeque<Record> = (1..=3).map(Record).collect();
    let sent = trace::in_context(root, async { actor.try_tell_many(&mut burst) }).await;
    assert!(matches!(sent, Ok(3)));
    let seen = actor.ask(Traces).await.expect("ask");
    assert_eq!(seen.len(), 3);
    let contexts: Vec<TraceContext> = seen.into_iter().flatten().collect();
    assert_eq!(contexts.len(), 3, "every message is traced");
    assert!(contexts.iter().all(|t| t.trace_id() == root.trace_id()));
    let mut spans: Vec<u64> = contexts.iter().map(TraceContext::span_id).collect();
    spans.sort_unstable();
    spans.dedup();
    assert_eq!(spans.len(), 3, "a span id of its own each");
    assert!(!spans.contains(&root.span_id()));
    // Untraced messages after it are handled in no context.
    actor.tell(Record(4)).await.expect("tell");
    assert_eq!(actor.ask(Traces).await, Ok(vec![None]));
    system.shutdown().await;
}

#[tokio::test]
async fn a_handler_runs_in_its_senders_trace_and_in_none_when_the_sender_has_none() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let root = TraceContext::new_root();
    let traced = trace::in_context(root, actor.ask(CurrentTrace)).await;
    assert_eq!(traced, Ok(Some(root.trace_id())));
    // The next message, sent from no trace, is not handled in the previous one's.
    assert_eq!(actor.ask(CurrentTrace).await, Ok(None));
    system.shutdown().await;
}

/// A runtime of its own (a test with two runtimes in turn).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn asks_still_time_out_after_the_runtime_that_ran_the_deadline_keeper_is_gone() {
    let system = ActorSystem::new();
    // The first runtime runs an ask, and with it the system's deadline keeper; dropping the
    // runtime drops the keeper without its knowing.
    runtime().block_on(async {
        let actor = system.spawn(Recorder::default()).await.expect("spawn");
        assert_eq!(actor.ask(Seen).await, Ok(vec![]));
    });
    runtime().block_on(async {
        let actor = system.spawn(Recorder::default()).await.expect("spawn");
        let gate = Arc::new(Semaphore::new(0));
        actor.tell(Gate(gate.clone())).await.expect("tell");
        let asked = tokio::time::timeout(
            Duration::from_secs(5),
            actor.ask_timeout(Seen, Duration::from_millis(50)),
        )
        .await;
        assert_eq!(
            asked,
            Ok(Err(AskError::Timeout(Duration::from_millis(50)))),
            "a new keeper answers it"
        );
        gate.add_permits(1);
        system.shutdown().await;
    });
}
