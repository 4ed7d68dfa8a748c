//! Feeders (`ActorRef::attach_feeder`): message sources run by whichever task is free.

use std::sync::Arc;
use std::time::Duration;

use actor_core::{
    Actor, ActorRef, ActorSystem, Backoff, ChildSpec, Context, Handler, Message, Supervisor,
};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Records what it is told, with the task that delivered it and the task that handled it.
#[derive(Default)]
struct Recorder {
    seen: Vec<Fed>,
}
impl Actor for Recorder {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fed {
    value: u32,
    /// The task the feeder ran in when it delivered this.
    fed_in: Option<tokio::task::Id>,
    /// The task the actor handled it in.
    handled_in: Option<tokio::task::Id>,
}
impl Message for Fed {
    type Reply = ();
}
impl Handler<Fed> for Recorder {
    async fn handle(&mut self, msg: Fed, _ctx: &mut Context<Self>) {
        self.seen.push(Fed {
            handled_in: tokio::task::try_id(),
            ..msg
        });
    }
}

struct Seen;
impl Message for Seen {
    type Reply = Vec<Fed>;
}
impl Handler<Seen> for Recorder {
    async fn handle(&mut self, _msg: Seen, _ctx: &mut Context<Self>) -> Vec<Fed> {
        self.seen.clone()
    }
}

/// Makes the handler panic.
struct Boom;
impl Message for Boom {
    type Reply = ();
}
impl Handler<Boom> for Recorder {
    async fn handle(&mut self, _msg: Boom, _ctx: &mut Context<Self>) {
        panic!("boom requested");
    }
}

/// Asks for the task the actor runs in.
struct TaskOf;
impl Message for TaskOf {
    type Reply = Option<tokio::task::Id>;
}
impl Handler<TaskOf> for Recorder {
    async fn handle(&mut self, _msg: TaskOf, _ctx: &mut Context<Self>) -> Option<tokio::task::Id> {
        tokio::task::try_id()
    }
}

/// Holds the handler open until `release` has a permit, saying so on `entered`.
struct Hold {
    entered: oneshot::Sender<()>,
    release: Arc<Semaphore>,
}
impl Message for Hold {
    type Reply = ();
}
impl Handler<Hold> for Recorder {
    async fn handle(&mut self, msg: Hold, _ctx: &mut Context<Self>) {
        let _ = msg.entered.send(());
        let _permit = msg.release.acquire().await;
    }
}

/// A feeder that tells `to` every value `rx` yields, until `rx` ends.
fn forwarding(
    mut rx: mpsc::UnboundedReceiver<u32>,
    to: ActorRef<Recorder>,
) -> actor_core::remote::Feeder {
    Box::pin(async move {
        while let Some(value) = rx.recv().await {
            let fed = Fed {
                value,
                fed_in: tokio::task::try_id(),
                handled_in: None,
            };
            if to.tell(fed).await.is_err() {
                return;
            }
        }
    })
}

/// Attaches to `host` a feeder that tells `to` every value sent on the returned channel.
fn feed(host: &ActorRef<Recorder>, to: &ActorRef<Recorder>) -> mpsc::UnboundedSender<u32> {
    let (tx, rx) = mpsc::unbounded_channel();
    host.attach_feeder(forwarding(rx, to.clone()))
        .unwrap_or_else(|_| panic!("a live local actor takes a feeder"));
    tx
}

/// What `actor` has seen once it has seen `n` values (asked at most 500 times, 10 ms apart).
async fn seen_at_least(actor: &ActorRef<Recorder>, n: usize) -> Vec<Fed> {
    for _ in 0..500 {
        let seen = actor.ask(Seen).await.expect("ask");
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} values arrived in 5 s");
}

fn values(seen: &[Fed]) -> Vec<u32> {
    seen.iter().map(|f| f.value).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeder_delivers_its_messages_in_order() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let tx = feed(&actor, &actor);
    for value in 0..10_000 {
        tx.send(value).expect("feeder alive");
    }
    let seen = seen_at_least(&actor, 10_000).await;
    assert_eq!(values(&seen), (0..10_000).collect::<Vec<_>>());
    system.shutdown().await;
}

#[tokio::test]
async fn a_feeder_woken_while_its_actor_waits_runs_in_the_actors_own_task() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let tx = feed(&actor, &actor);
    // Its helper runs it first, while this task waits for the answer: nothing has come yet.
    assert_eq!(actor.ask(Seen).await.map(|s| s.len()), Ok(0));
    for value in 0..10 {
        // The ask's answer comes once the actor has handled everything before it; on this
        // one-thread runtime it is parked again by the time this task runs on.
        tx.send(value).expect("feeder alive");
        seen_at_least(&actor, value as usize + 1).await;
    }
    let seen = actor.ask(Seen).await.expect("ask");
    assert_eq!(values(&seen), (0..10).collect::<Vec<_>>());
    for fed in &seen {
        assert!(fed.handled_in.is_some());
        assert_eq!(
            fed.fed_in, fed.handled_in,
            "value {} was delivered from another task than the actor's",
            fed.value
        );
    }
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_its_actor_is_busy_a_feeder_keeps_delivering_to_other_actors() {
    let system = ActorSystem::new();
    let host = system.spawn(Recorder::default()).await.expect("spawn");
    let other = system.spawn(Recorder::default()).await.expect("spawn");
    let tx = feed(&host, &other);
    let host_task = host.ask(TaskOf).await.expect("ask");
    assert!(host_task.is_some());
    let release = Arc::new(Semaphore::new(0));
    let (entered, in_handler) = oneshot::channel();
    host.tell(Hold {
        entered,
        release: Arc::clone(&release),
    })
    .await
    .expect("tell");
    tokio::time::timeout(Duration::from_secs(5), in_handler)
        .await
        .expect("the host enters its handler")
        .expect("entered");
    for value in 0..100 {
        tx.send(value).expect("feeder alive");
    }
    // The host is still held in its handler: the helper delivered these.
    let seen = seen_at_least(&other, 100).await;
    assert_eq!(values(&seen), (0..100).collect::<Vec<_>>());
    assert!(
        seen.iter()
            .all(|f| f.fed_in.is_some() && f.fed_in != host_task),
        "the feeder ran in its helper, not in the held host's task"
    );
    release.add_permits(1);
    assert_eq!(host.ask(Seen).await.map(|s| s.len()), Ok(0));
    system.shutdown().await;
}

#[tokio::test]
async fn a_feeder_woken_for_its_parked_actor_runs_though_a_message_came_first() {
    let system = ActorSystem::new();
    let host = system.spawn(Recorder::default()).await.expect("spawn");
    let other = system.spawn(Recorder::default()).await.expect("spawn");
    let tx = feed(&host, &other);
    // The helper has run the feeder once, and the host is parked.
    assert_eq!(host.ask(Seen).await.map(|s| s.len()), Ok(0));
    let release = Arc::new(Semaphore::new(0));
    let (entered, _in_handler) = oneshot::channel();
    // On this one-thread runtime neither task runs before this one waits: the feeder's
    // wake-up goes to the parked host, and a message that holds it is queued behind it.
    tx.send(1).expect("feeder alive");
    host.try_tell(Hold {
        entered,
        release: Arc::clone(&release),
    })
    .expect("room");
    let seen = seen_at_least(&other, 1).await;
    assert_eq!(values(&seen), vec![1]);
    release.add_permits(1);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeder_survives_its_actors_restart() {
    let system = ActorSystem::new();
    system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .backoff(Backoff::none())
                .child(ChildSpec::new("host", Recorder::default)),
        )
        .await
        .expect("supervisor");
    let host = system.lookup::<Recorder>("host").expect("host");
    let tx = feed(&host, &host);
    tx.send(1).expect("feeder alive");
    assert_eq!(values(&seen_at_least(&host, 1).await), vec![1]);
    assert!(host.ask(Boom).await.is_err(), "the handler panicked");
    // A fresh instance (nothing seen yet), fed by the same feeder.
    tx.send(2).expect("the feeder outlives the instance");
    assert_eq!(values(&seen_at_least(&host, 1).await), vec![2]);
    system.shutdown().await;
}

/// Says on `dropped` when it is dropped.
struct DropSignal(Option<oneshot::Sender<()>>);
impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeder_is_dropped_when_its_actor_stops_for_good() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let (dropped_tx, dropped) = oneshot::channel();
    let guard = DropSignal(Some(dropped_tx));
    actor
        .attach_feeder(Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }))
        .unwrap_or_else(|_| panic!("a live local actor takes a feeder"));
    assert!(actor.stop());
    tokio::time::timeout(Duration::from_secs(5), dropped)
        .await
        .expect("the feeder is dropped once its actor stopped")
        .expect("dropped, not leaked");
    assert!(
        actor.attach_feeder(Box::pin(async {})).is_err(),
        "a stopped actor hands a feeder back"
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeder_that_panics_is_dropped_and_its_actor_keeps_working() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default()).await.expect("spawn");
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    actor
        .attach_feeder(Box::pin(async move {
            if let Some(value) = rx.recv().await {
                panic!("feeder fails on {value}");
            }
        }))
        .unwrap_or_else(|_| panic!("a live local actor takes a feeder"));
    tx.send(1).expect("feeder alive");
    // The panicking feeder is dropped with its receiver, which closes the channel.
    for _ in 0..500 {
        if tx.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(tx.is_closed(), "the panicked feeder was dropped");
    let (tx2, rx2) = mpsc::unbounded_channel();
    actor
        .attach_feeder(forwarding(rx2, actor.clone()))
        .unwrap_or_else(|_| panic!("the actor still takes feeders"));
    tx2.send(7).expect("feeder alive");
    assert_eq!(values(&seen_at_least(&actor, 1).await), vec![7]);
    system.shutdown().await;
}
