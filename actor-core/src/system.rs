//! [`ActorSystem`]: spawns actors and supervisors, finds them by name, shuts them down in order.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, short_type_name};
use crate::cell::{self, ChildControl, Owner, Source};
use crate::deadline::Deadlines;
use crate::error::{LookupError, SpawnError};
use crate::id::ActorId;
use crate::pubsub::PubSub;
use crate::registry::Registry;
use crate::remote::Resolver;
use crate::stats::{ActorStats, SystemCounters, SystemStats};
use crate::supervisor::{Supervisor, SupervisorRef};

/// The default time-out of [`ActorRef::ask`]: 5 seconds.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// The default mailbox capacity: 1024 messages.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// Facts every mailbox of a system shares (one allocation for all of them).
pub(crate) struct SystemInfo {
    pub(crate) node: Arc<str>,
    pub(crate) deadlines: Arc<Deadlines>,
    pub(crate) ask_timeout: Duration,
    pub(crate) mailbox_capacity: usize,
    pub(crate) counters: Arc<SystemCounters>,
}

/// A running set of actors: spawns them, names them and stops them in order.
///
/// Cheap to clone; every clone is the same system. Needs a Tokio runtime with time enabled
/// (`#[tokio::main]` or `Builder::enable_all`). Actors live until they stop, their supervisor
/// stops them, or [`shutdown`](Self::shutdown) runs; dropping refs does not stop an actor.
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<SystemInner>,
}

struct SystemInner {
    info: Arc<SystemInfo>,
    next_id: AtomicU64,
    registry: Registry,
    /// Top-level actors and supervisors by id, i.e. in start order.
    root: Mutex<BTreeMap<ActorId, RootEntry>>,
    shutting_down: AtomicBool,
    pubsub: PubSub,
    resolver: OnceLock<Arc<dyn Resolver>>,
}

struct RootEntry {
    control: Arc<dyn ChildControl>,
    task: Option<JoinHandle<()>>,
}

/// How to spawn one actor: its name and mailbox capacity.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub(crate) name: Option<String>,
    pub(crate) mailbox_capacity: Option<usize>,
}

impl SpawnOptions {
    /// Default options: anonymous, the system's default mailbox capacity.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the actor under `name` (refused if the name is taken).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Bounds the mailbox at `capacity` messages (at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }
}

/// Builds an [`ActorSystem`] with non-default settings.
#[derive(Debug, Clone)]
pub struct ActorSystemBuilder {
    node: String,
    ask_timeout: Duration,
    mailbox_capacity: usize,
}

impl Default for ActorSystemBuilder {
    fn default() -> Self {
        Self {
            node: "local".to_string(),
            ask_timeout: DEFAULT_ASK_TIMEOUT,
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
        }
    }
}

impl ActorSystemBuilder {
    /// The node name shown in refs (default `"local"`).
    pub fn node_name(mut self, node: impl Into<String>) -> Self {
        self.node = node.into();
        self
    }

    /// The time-out of `ask` without an explicit one (default 5 s).
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// The mailbox capacity of actors that do not set one (default 1024).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// Builds the system.
    pub fn build(self) -> ActorSystem {
        let counters = Arc::new(SystemCounters::default());
        ActorSystem {
            inner: Arc::new(SystemInner {
                info: Arc::new(SystemInfo {
                    node: self.node.into(),
                    deadlines: Arc::new(Deadlines::new(Arc::clone(&counters))),
                    counters,
                    ask_timeout: self.ask_timeout,
                    mailbox_capacity: self.mailbox_capacity,
                }),
                next_id: AtomicU64::new(1),
                registry: Registry::default(),
                root: Mutex::new(BTreeMap::new()),
                shutting_down: AtomicBool::new(false),
                pubsub: PubSub::default(),
                resolver: OnceLock::new(),
            }),
        }
    }
}

impl Default for ActorSystem {
    fn default() -> Self {
        Self::new()
    }
}

impl ActorSystem {
    /// A system with default settings (node `"local"`, ask time-out 5 s, mailbox 1024).
    pub fn new() -> Self {
        ActorSystemBuilder::default().build()
    }

    /// A builder for non-default settings.
    pub fn builder() -> ActorSystemBuilder {
        ActorSystemBuilder::default()
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.inner.info.node
    }

    /// The default ask time-out.
    pub fn ask_timeout(&self) -> Duration {
        self.inner.info.ask_timeout
    }

    pub(crate) fn info(&self) -> &Arc<SystemInfo> {
        &self.inner.info
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub(crate) fn next_id(&self) -> ActorId {
        ActorId::from_u64(self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The system's local pub/sub.
    pub fn pubsub(&self) -> &PubSub {
        &self.inner.pubsub
    }

    /// Spawns an anonymous actor and waits until its `started` hook has run.
    ///
    /// The actor is not restarted if it fails: a panic stops it for good (use a
    /// [`Supervisor`] for restarts).
    ///
    /// # Errors
    /// [`SpawnError::StartFailed`] when `started` fails, [`SpawnError::ShuttingDown`].
    pub async fn spawn<A: Actor>(&self, actor: A) -> Result<ActorRef<A>, SpawnError> {
        self.spawn_with(actor, SpawnOptions::new()).await
    }

    /// Spawns an actor registered under `name`; see [`spawn`](Self::spawn).
    ///
    /// # Errors
    /// Also [`SpawnError::NameTaken`] when a live actor has that name.
    pub async fn spawn_named<A: Actor>(
        &self,
        name: impl Into<String>,
        actor: A,
    ) -> Result<ActorRef<A>, SpawnError> {
        self.spawn_with(actor, SpawnOptions::new().name(name)).await
    }

    /// Spawns an actor with explicit [`SpawnOptions`]; see [`spawn`](Self::spawn).
    pub async fn spawn_with<A: Actor>(
        &self,
        actor: A,
        options: SpawnOptions,
    ) -> Result<ActorRef<A>, SpawnError> {
        self.refuse_if_shutting_down()?;
        let spawned = cell::spawn_cell(
            self,
            Source::Once(Some(actor)),
            options,
            Owner::Root(self.clone()),
            true,
        )?;
        // The root entry was made before the task started (the task removes it when it
        // ends); attaching the handle is a no-op if that has happened already.
        let id = spawned.actor.id();
        self.root_attach(id, spawned.task);
        cell::await_first_start(&spawned.actor, spawned.started).await?;
        Ok(spawned.actor)
    }

    /// Starts a supervision tree and waits until all its children have started, in order.
    ///
    /// # Errors
    /// [`SpawnError::StartFailed`] when a child fails to start (the children started before
    /// it are stopped again), [`SpawnError::NameTaken`], [`SpawnError::ShuttingDown`].
    pub async fn spawn_supervisor(
        &self,
        supervisor: Supervisor,
    ) -> Result<SupervisorRef, SpawnError> {
        self.refuse_if_shutting_down()?;
        crate::supervisor::spawn_supervisor(self, supervisor, Owner::Root(self.clone())).await
    }

    fn refuse_if_shutting_down(&self) -> Result<(), SpawnError> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            Err(SpawnError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    fn root(&self) -> MutexGuard<'_, BTreeMap<ActorId, RootEntry>> {
        self.inner
            .root
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a top-level actor or supervisor, for ordered shutdown.
    pub(crate) fn root_insert(&self, id: ActorId, control: Arc<dyn ChildControl>) {
        self.root().insert(
            id,
            RootEntry {
                control,
                task: None,
            },
        );
    }

    /// Attaches the task of a top-level entry, if it has not ended already.
    pub(crate) fn root_attach(&self, id: ActorId, task: JoinHandle<()>) {
        if let Some(entry) = self.root().get_mut(&id) {
            entry.task = Some(task);
        }
    }

    /// Forgets a top-level entry whose task is ending.
    pub(crate) fn root_remove(&self, id: ActorId) {
        self.root().remove(&id);
    }

    /// Finds the local actor named `name`, typed.
    ///
    /// With a resolver installed (by a transport crate), names not hosted here are resolved
    /// across the cluster; the returned ref is used the same way.
    ///
    /// # Errors
    /// [`LookupError::NotFound`], or [`LookupError::WrongType`] when the name belongs to an
    /// actor of another type.
    pub fn lookup<A: Actor>(&self, name: &str) -> Result<ActorRef<A>, LookupError> {
        match self.inner.registry.lookup::<ActorRef<A>>(name) {
            Ok(r) => Ok(r),
            Err(LookupError::WrongType { name, actual, .. }) => Err(LookupError::WrongType {
                name,
                expected: short_type_name::<A>(),
                actual,
            }),
            Err(not_found) => match self.inner.resolver.get() {
                Some(resolver) => resolver
                    .resolve(name, TypeId::of::<A>())
                    .map(ActorRef::from_remote)
                    .ok_or(not_found),
                None => Err(not_found),
            },
        }
    }

    /// Like [`lookup`](Self::lookup), but waits up to `timeout` for the name to appear.
    ///
    /// # Errors
    /// [`LookupError::Timeout`] when it does not appear in time; [`LookupError::WrongType`].
    pub async fn lookup_wait<A: Actor>(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<ActorRef<A>, LookupError> {
        let deadline = crate::actor_ref::deadline_after(timeout);
        loop {
            match self.lookup::<A>(name) {
                Err(LookupError::NotFound(_)) => {}
                other => return other,
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(LookupError::Timeout {
                    name: name.to_string(),
                    timeout,
                });
            }
            // Local registrations wake us at once; remote ones are polled at a short interval.
            let poll = if self.inner.resolver.get().is_some() {
                left.min(Duration::from_millis(20))
            } else {
                left
            };
            let _ = self.inner.registry.wait_for(name, poll).await;
        }
    }

    /// A snapshot of the system's counters.
    pub fn stats(&self) -> SystemStats {
        self.inner.info.counters.snapshot()
    }

    /// Snapshots of the named local actors, sorted by name.
    pub fn actor_stats(&self) -> Vec<ActorStats> {
        self.inner.registry.stats()
    }

    /// Names registered on this node, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.registry.names()
    }

    /// Whether a local actor of type `A` is registered under `name`.
    pub fn hosts<A: Actor>(&self, name: &str) -> bool {
        self.inner.registry.has(name, TypeId::of::<ActorRef<A>>())
    }

    /// Installs the resolver for names hosted elsewhere. Only the first call has an effect;
    /// returns whether this one did.
    pub fn set_resolver(&self, resolver: Arc<dyn Resolver>) -> bool {
        self.inner.resolver.set(resolver).is_ok()
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Stops every actor and supervisor in reverse start order, each after the one started
    /// after it has fully stopped. `stopped` hooks run; asks still queued get
    /// [`AskError::Stopped`](crate::AskError); new spawns are refused. Returns when every
    /// actor task has ended.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        loop {
            let last = self.root().pop_last();
            let Some((_, entry)) = last else { break };
            entry.control.terminate();
            match entry.task {
                Some(task) => {
                    let _ = task.await;
                }
                None => entry.control.terminated().await,
            }
        }
        // Every ask is answered now; let the deadline keeper go.
        self.inner.info.deadlines.compact().await;
        tracing::debug!(node = %self.node_name(), "actor system shut down");
    }
}

impl std::fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSystem")
            .field("node", &self.node_name())
            .field("top_level", &self.root().len())
            .finish()
    }
}
