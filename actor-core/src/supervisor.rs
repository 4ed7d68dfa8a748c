//! Supervision trees: restart failed actors, keep their refs and names valid.
//!
//! A [`Supervisor`] owns an ordered list of children (actors from a [`ChildSpec`] factory, or
//! nested supervisors) and restarts them when they end, as OTP does:
//!
//! | strategy | when a child ends and is to be restarted |
//! | --- | --- |
//! | [`Strategy::OneForOne`] | only that child is restarted |
//! | [`Strategy::OneForAll`] | all other children are stopped (reverse start order), then all are started again in order |
//! | [`Strategy::RestForOne`] | the children started after it are stopped (reverse order), then it and they are started again in order |
//!
//! | restart | restarted after a failure | after a normal stop |
//! | --- | --- | --- |
//! | [`Restart::Permanent`] | yes | yes |
//! | [`Restart::Transient`] | yes | no (it stops for good) |
//! | [`Restart::Temporary`] | no | no |
//!
//! **Failure** is a panic in `started` or a handler, or an error from `started`.
//! **Intensity**: more than `max_restarts` restarts within `window` and the supervisor gives
//! up: it stops all its children and fails itself, so its own parent applies *its* strategy
//! (a top-level supervisor then stops for good). **Back-off**: the n-th restart within the
//! window waits `initial * 2^(n-1)`, capped at `max`.
//!
//! A restart keeps the child's mailbox, id and name: refs taken before it keep working and
//! queued messages go to the new instance. The message whose handler panicked fails its ask
//! with [`AskError::HandlerPanicked`](crate::AskError).
//!
//! ```
//! use std::time::Duration;
//! use actor_core::{Actor, ActorSystem, ChildSpec, Restart, Supervisor};
//!
//! struct Worker;
//! impl Actor for Worker {}
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::new();
//! let tree = system
//!     .spawn_supervisor(
//!         Supervisor::one_for_one()
//!             .max_restarts(3, Duration::from_secs(5))
//!             .child(ChildSpec::new("worker", || Worker).restart(Restart::Permanent)),
//!     )
//!     .await?;
//! let worker = system.lookup::<Worker>("worker")?;
//! assert!(worker.is_alive());
//! tree.stop().await;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::actor::Actor;
use crate::cell::{self, ChildControl, ChildEvent, ChildEventKind, Owner, Parent, Source};
use crate::error::SpawnError;
use crate::id::ActorId;
use crate::mailbox::Signal;
use crate::system::{ActorSystem, SpawnOptions};

/// Which children restart when one ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Restart only the child that ended.
    OneForOne,
    /// Stop every other child and restart all.
    OneForAll,
    /// Stop and restart the children started after the one that ended, and it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always: after a failure and after a normal stop.
    Permanent,
    /// Only after a failure.
    Transient,
    /// Never; the child stops for good when it ends.
    Temporary,
}

/// How an actor instance or a supervisor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It stopped itself (`ctx.stop()` or `ActorRef::stop`).
    Normal,
    /// Its parent or the system stopped it.
    Stopped,
    /// It failed: a panic, an error from `started`, or (for a supervisor) restart intensity
    /// exceeded.
    Failed(String),
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Stopped => f.write_str("stopped"),
            ExitReason::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Exponential back-off between restarts: `initial * 2^(n-1)` for the n-th restart within
/// the intensity window, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// Back-off starting at `initial`, doubling, capped at `max`.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
        }
    }

    /// No delay between restarts.
    pub fn none() -> Self {
        Self::exponential(Duration::ZERO, Duration::ZERO)
    }

    /// The delay before the `n`-th restart within the window (`n` from 1).
    pub fn delay(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

impl Default for Backoff {
    /// 10 ms, doubling, capped at 1 s.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// A supervised actor: its name, how to make an instance, and when to restart it.
pub struct ChildSpec<A: Actor> {
    name: String,
    factory: Box<dyn FnMut() -> A + Send>,
    restart: Restart,
    mailbox_capacity: Option<usize>,
}

impl<A: Actor> ChildSpec<A> {
    /// A permanent child named `name` whose instances `factory` makes (at the first start
    /// and at every restart).
    pub fn new(name: impl Into<String>, factory: impl FnMut() -> A + Send + 'static) -> Self {
        Self {
            name: name.into(),
            factory: Box::new(factory),
            restart: Restart::Permanent,
            mailbox_capacity: None,
        }
    }

    /// When the child is restarted (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// The child's mailbox capacity (default: the system's).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }
}

impl<A: Actor> fmt::Debug for ChildSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .finish()
    }
}

/// A child of a supervisor: an actor spec or a nested supervisor.
pub struct Child(ChildKind);

enum ChildKind {
    Worker(Box<dyn WorkerSpec>),
    Supervisor(Box<Supervisor>),
}

impl<A: Actor> From<ChildSpec<A>> for Child {
    fn from(spec: ChildSpec<A>) -> Self {
        Child(ChildKind::Worker(Box::new(spec)))
    }
}

impl From<Supervisor> for Child {
    fn from(sup: Supervisor) -> Self {
        Child(ChildKind::Supervisor(Box::new(sup)))
    }
}

/// A started child task.
struct Started {
    id: ActorId,
    control: Arc<dyn ChildControl>,
    task: JoinHandle<()>,
}

trait WorkerSpec: Send {
    fn name(&self) -> &str;
    fn restart(&self) -> Restart;
    fn spawn(
        self: Box<Self>,
        system: &ActorSystem,
        parent: Arc<dyn Parent>,
    ) -> Result<Started, SpawnError>;
}

impl<A: Actor> WorkerSpec for ChildSpec<A> {
    fn name(&self) -> &str {
        &self.name
    }
    fn restart(&self) -> Restart {
        self.restart
    }
    fn spawn(
        self: Box<Self>,
        system: &ActorSystem,
        parent: Arc<dyn Parent>,
    ) -> Result<Started, SpawnError> {
        let mut options = SpawnOptions::new().name(self.name);
        options.mailbox_capacity = self.mailbox_capacity;
        let spawned = cell::spawn_cell(
            system,
            Source::Factory(self.factory),
            options,
            Owner::Supervisor(parent),
            false,
        )?;
        let control: Arc<dyn ChildControl> = match spawned.actor.mailbox() {
            Some(mb) => mb.clone(),
            None => unreachable!("a freshly spawned actor is local"),
        };
        Ok(Started {
            id: spawned.actor.id(),
            control,
            task: spawned.task,
        })
    }
}

/// A supervisor's spec: strategy, restart intensity, back-off and children, built like a
/// sentence: `Supervisor::one_for_all().max_restarts(3, secs(5)).child(a).child(b)`.
pub struct Supervisor {
    name: String,
    strategy: Strategy,
    max_restarts: u32,
    window: Duration,
    backoff: Backoff,
    restart: Restart,
    children: Vec<Child>,
}

impl Supervisor {
    /// A supervisor with `strategy`, at most 3 restarts in 5 s, and the default back-off.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            name: String::from("supervisor"),
            strategy,
            max_restarts: 3,
            window: Duration::from_secs(5),
            backoff: Backoff::default(),
            restart: Restart::Permanent,
            children: Vec::new(),
        }
    }

    /// [`Strategy::OneForOne`].
    pub fn one_for_one() -> Self {
        Self::new(Strategy::OneForOne)
    }

    /// [`Strategy::OneForAll`].
    pub fn one_for_all() -> Self {
        Self::new(Strategy::OneForAll)
    }

    /// [`Strategy::RestForOne`].
    pub fn rest_for_one() -> Self {
        Self::new(Strategy::RestForOne)
    }

    /// A name for logs (supervisors are not registered by name).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Gives up after more than `max_restarts` restarts within `window`.
    pub fn max_restarts(mut self, max_restarts: u32, window: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.window = window;
        self
    }

    /// The back-off between restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// When this supervisor, nested in another, is restarted (default permanent).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, child: impl Into<Child>) -> Self {
        self.children.push(child.into());
        self
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("window", &self.window)
            .field("children", &self.children.len())
            .finish()
    }
}

/// State of a supervisor shared with its handles and its parent.
struct Shared {
    id: ActorId,
    name: String,
    signals: AtomicU8,
    wake: Notify,
    restarts: AtomicU64,
    /// `Some(reason)` once terminated for good.
    terminated: watch::Sender<Option<ExitReason>>,
}

impl Shared {
    async fn wait_signal(&self) -> Signal {
        loop {
            if let Some(s) = Signal::take(&self.signals) {
                return s;
            }
            self.wake.notified().await;
        }
    }
}

impl ChildControl for Shared {
    fn signal(&self, signal: Signal) {
        signal.raise(&self.signals);
        self.wake.notify_one();
    }
    fn terminated(&self) -> BoxFuture<'_, ()> {
        let mut rx = self.terminated.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(Option::is_some).await;
        })
    }
}

/// A handle to a running supervisor.
#[derive(Clone)]
pub struct SupervisorRef {
    shared: Arc<Shared>,
}

impl SupervisorRef {
    /// The supervisor's id.
    pub fn id(&self) -> ActorId {
        self.shared.id
    }

    /// The supervisor's name (for logs).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// How many child restarts this supervisor has made.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    /// Whether it has not yet stopped for good.
    pub fn is_running(&self) -> bool {
        self.shared.terminated.borrow().is_none()
    }

    /// Stops the supervisor and all its children for good (reverse start order) and waits.
    pub async fn stop(&self) {
        self.shared.terminate();
        self.shared.terminated().await;
    }

    /// Waits until the supervisor has stopped for good and says why: `Failed` when it gave
    /// up after too many restarts, `Stopped` when it was stopped.
    pub async fn wait(&self) -> ExitReason {
        let mut rx = self.shared.terminated.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(ExitReason::Stopped),
            Err(_) => ExitReason::Stopped,
        }
    }
}

impl fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SupervisorRef({}{})", self.shared.name, self.shared.id)
    }
}

/// Children's events, queued to the supervisor's task. Each child has at most a few events
/// outstanding (it waits for the supervisor's word after each exit), so this stays bounded.
struct Inbox(mpsc::UnboundedSender<ChildEvent>);

impl Parent for Inbox {
    fn child_event(&self, event: ChildEvent) {
        let _ = self.0.send(event);
    }
}

/// Starts a top-level supervisor and waits for its children to start.
pub(crate) async fn spawn_supervisor(
    system: &ActorSystem,
    supervisor: Supervisor,
    owner: Owner,
) -> Result<SupervisorRef, SpawnError> {
    let name = supervisor.name.clone();
    let (first_tx, first_rx) = oneshot::channel();
    let (sref, task) = launch(system, supervisor, owner, Some(first_tx));
    system.root_attach(sref.id(), task);
    match first_rx.await {
        Ok(Ok(())) => Ok(sref),
        Ok(Err(reason)) => Err(SpawnError::StartFailed { name, reason }),
        Err(_) => Err(SpawnError::StartFailed {
            name,
            reason: "supervisor ended before starting".to_string(),
        }),
    }
}

fn launch(
    system: &ActorSystem,
    supervisor: Supervisor,
    owner: Owner,
    first_start: Option<oneshot::Sender<Result<(), String>>>,
) -> (SupervisorRef, JoinHandle<()>) {
    let id = system.next_id();
    let shared = Arc::new(Shared {
        id,
        name: supervisor.name.clone(),
        signals: AtomicU8::new(0),
        wake: Notify::new(),
        restarts: AtomicU64::new(0),
        terminated: watch::Sender::new(None),
    });
    if let Owner::Root(system) = &owner {
        system.root_insert(id, shared.clone());
    }
    let (tx, events) = mpsc::unbounded_channel();
    let runner = Runner {
        system: system.clone(),
        shared: Arc::clone(&shared),
        owner,
        strategy: supervisor.strategy,
        max_restarts: supervisor.max_restarts,
        window: supervisor.window,
        backoff: supervisor.backoff,
        specs: supervisor.children.into_iter().map(Some).collect(),
        children: Vec::new(),
        inbox: Arc::new(Inbox(tx)),
        events,
        stash: VecDeque::new(),
        restart_times: VecDeque::new(),
        instance: 0,
        first_start,
    };
    let task = tokio::spawn(runner.run());
    (SupervisorRef { shared }, task)
}

struct ChildState {
    name: String,
    restart: Restart,
    id: ActorId,
    control: Arc<dyn ChildControl>,
    task: Option<JoinHandle<()>>,
    /// The instance the child runs, or ran last.
    instance: u32,
    running: bool,
}

enum Ending {
    Exited(ExitReason),
    Terminate,
}

struct Runner {
    system: ActorSystem,
    shared: Arc<Shared>,
    owner: Owner,
    strategy: Strategy,
    max_restarts: u32,
    window: Duration,
    backoff: Backoff,
    /// Children not yet created, by position (taken at their first start).
    specs: Vec<Option<Child>>,
    children: Vec<ChildState>,
    inbox: Arc<Inbox>,
    events: mpsc::UnboundedReceiver<ChildEvent>,
    /// Events that arrived while waiting for another one.
    stash: VecDeque<ChildEvent>,
    restart_times: VecDeque<Instant>,
    instance: u32,
    first_start: Option<oneshot::Sender<Result<(), String>>>,
}

impl Runner {
    async fn run(mut self) {
        let mut last = ExitReason::Stopped;
        let mut next = Some(Signal::Start);
        loop {
            let signal = match next.take() {
                Some(s) => s,
                None => self.shared.wait_signal().await,
            };
            match signal {
                Signal::Terminate => break,
                Signal::Stop | Signal::StopSelf => continue,
                Signal::Start => {}
            }
            self.instance += 1;
            let started = self.start_all().await;
            self.report_started(&started);
            let ending = match started {
                Err(reason) => Ending::Exited(ExitReason::Failed(reason)),
                Ok(()) => self.supervise().await,
            };
            match ending {
                Ending::Terminate => break,
                Ending::Exited(reason) => {
                    tracing::info!(supervisor = %self.shared.name, %reason, "supervisor exited");
                    last = reason.clone();
                    match &self.owner {
                        Owner::Supervisor(parent) => parent.child_event(ChildEvent {
                            id: self.shared.id,
                            instance: self.instance,
                            kind: ChildEventKind::Exited(reason),
                        }),
                        Owner::Root(_) | Owner::Context => break,
                    }
                }
            }
        }
        self.terminate_all().await;
        match &self.owner {
            Owner::Root(system) => system.root_remove(self.shared.id),
            Owner::Context => {}
            Owner::Supervisor(parent) => parent.child_event(ChildEvent {
                id: self.shared.id,
                instance: self.instance,
                kind: ChildEventKind::Terminated,
            }),
        }
        self.shared.terminated.send_replace(Some(last));
    }

    fn report_started(&mut self, result: &Result<(), String>) {
        if let Some(tx) = self.first_start.take() {
            let _ = tx.send(result.clone());
        }
        if let Owner::Supervisor(parent) = &self.owner {
            parent.child_event(ChildEvent {
                id: self.shared.id,
                instance: self.instance,
                kind: ChildEventKind::Started(result.clone()),
            });
        }
    }

    /// Starts every child in order, creating those not yet created. On a failure, stops the
    /// ones it started (reverse order) and says why.
    async fn start_all(&mut self) -> Result<(), String> {
        for pos in 0..self.specs.len() {
            if let Err(reason) = self.start_child(pos).await {
                self.stop_from(0).await;
                return Err(reason);
            }
        }
        Ok(())
    }

    /// Starts the child at `pos` (creating it on first use) and waits for its `started`.
    async fn start_child(&mut self, pos: usize) -> Result<(), String> {
        if pos >= self.children.len() {
            let Some(child) = self.specs.get_mut(pos).and_then(Option::take) else {
                return Ok(());
            };
            let state = self.create(child).map_err(|e| e.to_string())?;
            self.children.push(state);
        } else {
            let child = &mut self.children[pos];
            if child.running {
                return Ok(());
            }
            child.instance += 1;
            child.control.signal(Signal::Start);
        }
        let (id, instance) = (self.children[pos].id, self.children[pos].instance);
        let event = self
            .wait_event(|e| {
                e.id == id && e.instance == instance && !matches!(e.kind, ChildEventKind::Exited(_))
            })
            .await;
        match event.kind {
            ChildEventKind::Started(Ok(())) => {
                self.children[pos].running = true;
                Ok(())
            }
            ChildEventKind::Started(Err(reason)) => Err(format!(
                "child {} failed to start: {reason}",
                self.children[pos].name
            )),
            ChildEventKind::Terminated | ChildEventKind::Exited(_) => Err(format!(
                "child {} ended while starting",
                self.children[pos].name
            )),
        }
    }

    fn create(&mut self, child: Child) -> Result<ChildState, SpawnError> {
        let parent: Arc<dyn Parent> = self.inbox.clone();
        let (name, restart, started) = match child.0 {
            ChildKind::Worker(spec) => {
                let (name, restart) = (spec.name().to_string(), spec.restart());
                (name, restart, spec.spawn(&self.system, parent)?)
            }
            ChildKind::Supervisor(sup) => {
                let (name, restart) = (sup.name.clone(), sup.restart);
                let (sref, task) = launch(&self.system, *sup, Owner::Supervisor(parent), None);
                let started = Started {
                    id: sref.id(),
                    control: sref.shared,
                    task,
                };
                (name, restart, started)
            }
        };
        Ok(ChildState {
            name,
            restart,
            id: started.id,
            control: started.control,
            task: Some(started.task),
            instance: 1,
            running: false,
        })
    }

    /// Watches children and parent signals until this supervisor ends.
    async fn supervise(&mut self) -> Ending {
        loop {
            let event = tokio::select! {
                biased;
                signal = self.shared.wait_signal() => match signal {
                    Signal::Terminate => return Ending::Terminate,
                    Signal::Stop => {
                        self.stop_from(0).await;
                        return Ending::Exited(ExitReason::Stopped);
                    }
                    Signal::StopSelf => {
                        self.stop_from(0).await;
                        return Ending::Exited(ExitReason::Normal);
                    }
                    Signal::Start => continue,
                },
                event = next_event(&mut self.stash, &mut self.events) => event,
            };
            let Some(event) = event else {
                return Ending::Terminate;
            };
            let Some(pos) = self.children.iter().position(|c| c.id == event.id) else {
                continue;
            };
            let child = &mut self.children[pos];
            if let ChildEventKind::Exited(reason) = event.kind {
                if event.instance == child.instance && child.running {
                    child.running = false;
                    if let Some(ending) = self.on_child_exit(pos, reason).await {
                        return ending;
                    }
                }
            }
        }
    }

    /// Applies the restart policy and strategy after the child at `pos` ended.
    async fn on_child_exit(&mut self, pos: usize, reason: ExitReason) -> Option<Ending> {
        let child = &self.children[pos];
        let restart = matches!(
            (child.restart, &reason),
            (Restart::Permanent, _) | (Restart::Transient, ExitReason::Failed(_))
        );
        tracing::info!(supervisor = %self.shared.name, child = %child.name, %reason, restart, "child exited");
        if !restart {
            let mut child = self.children.remove(pos);
            self.specs.remove(pos);
            child.control.terminate();
            if let Some(task) = child.task.take() {
                let _ = task.await;
            }
            return None;
        }
        let mut failed = pos;
        loop {
            let now = Instant::now();
            self.restart_times.push_back(now);
            while self
                .restart_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.window)
            {
                self.restart_times.pop_front();
            }
            let n = self.restart_times.len();
            if n > self.max_restarts as usize {
                tracing::error!(supervisor = %self.shared.name, restarts = n, window = ?self.window, "restart intensity exceeded; giving up");
                self.stop_from(0).await;
                return Some(Ending::Exited(ExitReason::Failed(format!(
                    "restart intensity exceeded: {n} restarts within {:?}",
                    self.window
                ))));
            }
            if let Some(ending) = self.pause(self.backoff.delay(n as u32)).await {
                return Some(ending);
            }
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            let from = match self.strategy {
                Strategy::OneForOne => failed,
                Strategy::OneForAll => {
                    self.stop_from(0).await;
                    0
                }
                Strategy::RestForOne => {
                    self.stop_from(failed + 1).await;
                    failed
                }
            };
            let until = match self.strategy {
                Strategy::OneForOne => failed + 1,
                _ => self.children.len(),
            };
            match self.start_range(from, until).await {
                Ok(()) => return None,
                Err(pos) => failed = pos,
            }
        }
    }

    /// Starts the stopped children in `from..until`, in order; on a failed start returns
    /// its position.
    async fn start_range(&mut self, from: usize, until: usize) -> Result<(), usize> {
        for pos in from..until {
            if let Err(reason) = self.start_child(pos).await {
                tracing::warn!(supervisor = %self.shared.name, %reason, "restart failed");
                return Err(pos);
            }
        }
        Ok(())
    }

    /// Waits out a restart back-off, still honouring the parent's stop and terminate.
    async fn pause(&mut self, delay: Duration) -> Option<Ending> {
        if delay.is_zero() {
            return None;
        }
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                signal = self.shared.wait_signal() => match signal {
                    Signal::Terminate => return Some(Ending::Terminate),
                    Signal::Stop => {
                        self.stop_from(0).await;
                        return Some(Ending::Exited(ExitReason::Stopped));
                    }
                    Signal::StopSelf | Signal::Start => {}
                },
                () = &mut sleep => return None,
            }
        }
    }

    /// Stops the running children at `from..` in reverse order, each before the next.
    async fn stop_from(&mut self, from: usize) {
        for pos in (from..self.children.len()).rev() {
            let child = &mut self.children[pos];
            if !child.running {
                continue;
            }
            child.running = false;
            child.control.signal(Signal::Stop);
            let (id, instance) = (child.id, child.instance);
            self.wait_event(|e| {
                e.id == id
                    && e.instance == instance
                    && matches!(
                        e.kind,
                        ChildEventKind::Exited(_) | ChildEventKind::Terminated
                    )
            })
            .await;
        }
    }

    /// Stops every child for good, in reverse start order.
    async fn terminate_all(&mut self) {
        while let Some(mut child) = self.children.pop() {
            child.control.terminate();
            match child.task.take() {
                Some(task) => {
                    let _ = task.await;
                }
                None => child.control.terminated().await,
            }
        }
    }

    /// The first event matching `pred`, stashing others for later.
    async fn wait_event(&mut self, pred: impl Fn(&ChildEvent) -> bool) -> ChildEvent {
        if let Some(i) = self.stash.iter().position(&pred) {
            if let Some(e) = self.stash.remove(i) {
                return e;
            }
        }
        loop {
            match self.events.recv().await {
                Some(e) if pred(&e) => return e,
                Some(e) => self.stash.push_back(e),
                // The runner holds a sender itself, so the channel never closes.
                None => std::future::pending::<()>().await,
            }
        }
    }
}

async fn next_event(
    stash: &mut VecDeque<ChildEvent>,
    events: &mut mpsc::UnboundedReceiver<ChildEvent>,
) -> Option<ChildEvent> {
    match stash.pop_front() {
        Some(e) => Some(e),
        None => events.recv().await,
    }
}
