//! Spawning, names, context (children, timers), shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actor_core::{
    Actor, ActorRef, ActorSystem, AskError, Context, Handler, LookupError, Message, SpawnError,
    SpawnOptions,
};
use tokio::sync::Semaphore;

type Log = Arc<Mutex<Vec<String>>>;

struct Named {
    name: String,
    log: Log,
}

impl Actor for Named {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), actor_core::BoxError> {
        self.log
            .lock()
            .expect("log")
            .push(format!("start {}", self.name));
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.log
            .lock()
            .expect("log")
            .push(format!("stop {}", self.name));
    }
}

struct Ping;
impl Message for Ping {
    type Reply = &'static str;
}
impl Handler<Ping> for Named {
    async fn handle(&mut self, _msg: Ping, _ctx: &mut Context<Self>) -> &'static str {
        "pong"
    }
}

struct Hold(Arc<Semaphore>);
impl Message for Hold {
    type Reply = ();
}
impl Handler<Hold> for Named {
    async fn handle(&mut self, msg: Hold, _ctx: &mut Context<Self>) {
        let _ = msg.0.acquire().await;
    }
}

/// Spawns a child in `started`; the child logs its own lifecycle.
struct Parent {
    log: Log,
    child: Option<ActorRef<Named>>,
}
impl Actor for Parent {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), actor_core::BoxError> {
        let child = Named {
            name: "child".into(),
            log: self.log.clone(),
        };
        self.child = Some(ctx.spawn(child).await?);
        Ok(())
    }
    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.log.lock().expect("log").push("stop parent".into());
    }
}

struct GetChild;
impl Message for GetChild {
    type Reply = Option<ActorRef<Named>>;
}
impl Handler<GetChild> for Parent {
    async fn handle(&mut self, _m: GetChild, _ctx: &mut Context<Self>) -> Option<ActorRef<Named>> {
        self.child.clone()
    }
}

struct StopNow;
impl Message for StopNow {
    type Reply = ();
}
impl Handler<StopNow> for Parent {
    async fn handle(&mut self, _m: StopNow, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn named(name: &str, log: &Log) -> Named {
    Named {
        name: name.into(),
        log: log.clone(),
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn duplicate_names_are_refused() {
    let system = ActorSystem::new();
    let log = Log::default();
    system
        .spawn_named("svc", named("a", &log))
        .await
        .expect("first");
    match system.spawn_named("svc", named("b", &log)).await {
        Err(SpawnError::NameTaken(name)) => assert_eq!(name, "svc"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    system.shutdown().await;
}

#[tokio::test]
async fn lookup_is_typed() {
    struct Other;
    impl Actor for Other {}
    let system = ActorSystem::new();
    let log = Log::default();
    let svc = system
        .spawn_named("svc", named("a", &log))
        .await
        .expect("spawn");
    assert_eq!(system.lookup::<Named>("svc"), Ok(svc));
    assert!(matches!(
        system.lookup::<Other>("svc"),
        Err(LookupError::WrongType {
            expected: "Other",
            actual: "Named",
            ..
        })
    ));
    assert_eq!(
        system.lookup::<Named>("nobody"),
        Err(LookupError::NotFound("nobody".into()))
    );
    assert_eq!(system.names(), vec!["svc".to_string()]);
    system.shutdown().await;
}

#[tokio::test]
async fn a_name_is_free_again_once_its_actor_stopped_for_good() {
    let system = ActorSystem::new();
    let log = Log::default();
    let first = system
        .spawn_named("svc", named("a", &log))
        .await
        .expect("spawn");
    first.stop();
    until("the name to be freed", || {
        system.lookup::<Named>("svc").is_err()
    })
    .await;
    let second = system
        .spawn_named("svc", named("b", &log))
        .await
        .expect("respawn");
    assert_ne!(first, second);
    assert_eq!(second.ask(Ping).await, Ok("pong"));
    system.shutdown().await;
}

#[tokio::test]
async fn lookup_wait_sees_a_name_that_appears_later() {
    let system = ActorSystem::new();
    let log = Log::default();
    let waiter = {
        let system = system.clone();
        tokio::spawn(async move {
            system
                .lookup_wait::<Named>("late", Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let late = system
        .spawn_named("late", named("late", &log))
        .await
        .expect("spawn");
    assert_eq!(waiter.await.expect("join"), Ok(late));
    assert!(matches!(
        system
            .lookup_wait::<Named>("never", Duration::from_millis(20))
            .await,
        Err(LookupError::Timeout { .. })
    ));
    system.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_stops_in_reverse_start_order_answers_queued_asks_and_leaves_no_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let system = ActorSystem::new();
    let log = Log::default();
    let first = system
        .spawn_named("first", named("first", &log))
        .await
        .expect("spawn");
    let _parent = system
        .spawn(Parent {
            log: log.clone(),
            child: None,
        })
        .await
        .expect("spawn");
    let _last = system
        .spawn_named("last", named("last", &log))
        .await
        .expect("spawn");
    // Hold `first` busy, with an ask queued behind.
    let gate = Arc::new(Semaphore::new(0));
    first.tell(Hold(gate.clone())).await.expect("tell");
    let queued = {
        let first = first.clone();
        tokio::spawn(async move { first.ask(Ping).await })
    };
    tokio::task::yield_now().await;
    let shutdown = {
        let system = system.clone();
        tokio::spawn(async move { system.shutdown().await })
    };
    until("the later actors to stop", || {
        log.lock().expect("log").len() >= 6
    })
    .await;
    gate.add_permits(1);
    shutdown.await.expect("shutdown");
    let outcome = queued.await.expect("join");
    assert!(
        outcome == Ok("pong") || outcome == Err(AskError::Stopped),
        "a queued ask is answered or refused, never lost: {outcome:?}"
    );
    let lines = log.lock().expect("log").clone();
    assert_eq!(
        lines,
        [
            "start first",
            "start child",
            "start last",
            "stop last",
            "stop parent",
            "stop child",
            "stop first"
        ]
        .map(String::from)
    );
    assert_eq!(
        metrics.num_alive_tasks(),
        baseline,
        "no actor task outlives shutdown"
    );
    assert!(matches!(
        system.spawn(named("late", &log)).await,
        Err(SpawnError::ShuttingDown)
    ));
}

#[tokio::test]
async fn shutdown_rejects_asks_still_queued_with_stopped() {
    let system = ActorSystem::new();
    let log = Log::default();
    let busy = system.spawn(named("busy", &log)).await.expect("spawn");
    let gate = Arc::new(Semaphore::new(0));
    busy.tell(Hold(gate.clone())).await.expect("tell");
    let asks: Vec<_> = (0..5)
        .map(|_| {
            let busy = busy.clone();
            tokio::spawn(async move { busy.ask(Ping).await })
        })
        .collect();
    until("asks to be queued", || busy.mailbox_len() == Some(6)).await;
    // A stop signal is taken between messages: the held message finishes, the rest are refused.
    let shutdown = {
        let system = system.clone();
        tokio::spawn(async move { system.shutdown().await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    gate.add_permits(1);
    shutdown.await.expect("shutdown");
    for ask in asks {
        assert_eq!(ask.await.expect("join"), Err(AskError::Stopped));
    }
}

#[tokio::test]
async fn context_children_stop_with_their_parent() {
    let system = ActorSystem::new();
    let log = Log::default();
    let parent = system
        .spawn(Parent {
            log: log.clone(),
            child: None,
        })
        .await
        .expect("spawn");
    let child = parent.ask(GetChild).await.expect("ask").expect("child");
    assert_eq!(child.ask(Ping).await, Ok("pong"));
    parent.tell(StopNow).await.expect("tell");
    until("the child to stop", || !child.is_alive()).await;
    let lines = log.lock().expect("log").clone();
    assert_eq!(
        lines,
        ["start child", "stop parent", "stop child"].map(String::from)
    );
    system.shutdown().await;
}

struct Ticker {
    ticks: Arc<Mutex<u32>>,
}
impl Actor for Ticker {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), actor_core::BoxError> {
        ctx.send_interval(Duration::from_millis(100), || Tick);
        ctx.send_after(Tick, Duration::from_millis(50));
        Ok(())
    }
}
struct Tick;
impl Message for Tick {
    type Reply = ();
}
impl Handler<Tick> for Ticker {
    async fn handle(&mut self, _m: Tick, _ctx: &mut Context<Self>) {
        *self.ticks.lock().expect("ticks") += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn timers_deliver_and_are_cancelled_when_the_actor_stops() {
    let system = ActorSystem::new();
    let ticks = Arc::new(Mutex::new(0));
    let ticker = system
        .spawn(Ticker {
            ticks: ticks.clone(),
        })
        .await
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(350)).await;
    // 50 ms (once) + 100, 200, 300 ms (interval).
    assert_eq!(*ticks.lock().expect("ticks"), 4);
    ticker.stop();
    until("the ticker to stop", || !ticker.is_alive()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        *ticks.lock().expect("ticks"),
        4,
        "no tick after the actor stopped"
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_actors_spawn_and_each_answers_an_ask() {
    // Run on a worker thread, as an application's tasks do.
    tokio::spawn(async {
        let system = ActorSystem::new();
        let mut refs = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let actor = system
                .spawn_with(Quiet, SpawnOptions::new().mailbox_capacity(4))
                .await
                .expect("spawn");
            refs.push(actor);
        }
        for actor in &refs {
            assert_eq!(actor.ask(Ping).await, Ok("pong"));
        }
        system.shutdown().await;
        assert!(refs.iter().all(|r| !r.is_alive()));
    })
    .await
    .expect("scenario");
}

struct Quiet;
impl Actor for Quiet {}
impl Handler<Ping> for Quiet {
    async fn handle(&mut self, _msg: Ping, _ctx: &mut Context<Self>) -> &'static str {
        "pong"
    }
}
