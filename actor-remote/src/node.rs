//! [`Node`]: an actor system with a name, a QUIC endpoint, authenticated peers and a place in
//! a cluster.
//!
//! A node started with seeds joins their cluster: it dials a seed, the membership (SWIM)
//! spreads the word, and every member's names and topics become visible here. Callers keep
//! using `lookup` and `ActorRef`; they never name a node.
//!
//! ```no_run
//! use actor_remote::{Node, config::{AuthConfig, NodeConfig}};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = NodeConfig::new("a", AuthConfig::Secret("a long random secret".into()));
//! config.seeds = vec!["127.0.0.1:7101".into()];
//! let node = Node::start(config).await?;
//! println!("listening on {}; members: {:?}", node.local_addr(), node.members());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

use std::any::TypeId;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actor_core::{ActorRef, ActorSystem, LookupError, Message, Recipient, Topic};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use quinn::Endpoint;
use tokio::task::JoinHandle;

use crate::auth::ClusterSecret;
use crate::cluster::{Directory, TopicCodec};
use crate::config::{AuthConfig, ConfigError, NodeConfig};
use crate::connection::{PeerLink, poll_until};
use crate::dispatch::{Served, ServedActor, TopicInbox};
use crate::handshake::{ConnectError, close_code};
use crate::membership::{ClusterId, Member, MemberEvent, Membership};
use crate::message::{Accepts, OutboundTable, RemoteActor, RemoteMessage};
use crate::stats::{Counters, NodeStats};
use crate::tls::{NodeTls, TlsError};

/// The topic on which a node publishes [`MemberEvent`]s to its local subscribers.
pub const MEMBER_EVENTS: &str = "cluster.members";

/// Prefix of the served name under which a topic's remote publishes arrive.
pub(crate) const TOPIC_PREFIX: &str = "$topic:";

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS could not be set up (certificate files, keys).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Why an actor could not be served to peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Only named local actors can be served.
    #[error("only a named local actor can be served")]
    NotNamedLocal,
    /// Another actor is already served under this name.
    #[error("an actor is already served as {0:?}")]
    NameServed(String),
    /// The node is leaving and takes no new work.
    #[error("the node is leaving")]
    Leaving,
}

/// A connected peer, as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node name.
    pub node: String,
    /// The peer's incarnation (larger is a newer start of the node).
    pub incarnation: u64,
    /// The peer's address.
    pub addr: SocketAddr,
    /// Whether this node dialed the connection.
    pub dialed_by_us: bool,
}

/// A running node: an [`ActorSystem`] reachable by authenticated peers over QUIC, member of a
/// cluster.
///
/// Cheap to clone. Refs to actors on other nodes are plain [`ActorRef`]s; calling code does
/// not know where the actor lives.
#[derive(Clone)]
pub struct Node {
    shared: Arc<NodeShared>,
}

/// One actor type's `Accepts<A>`, typed (behind `Any`) and erased.
type TypeTable = (Arc<dyn std::any::Any + Send + Sync>, Arc<dyn OutboundTable>);

pub(crate) struct NodeShared {
    pub(crate) name: String,
    pub(crate) cluster: String,
    pub(crate) incarnation: u64,
    pub(crate) config: NodeConfig,
    pub(crate) proof_key: ClusterSecret,
    pub(crate) system: ActorSystem,
    pub(crate) endpoint: Endpoint,
    pub(crate) client: quinn::ClientConfig,
    /// Stream counts and windows an authenticated connection is opened up to.
    pub(crate) transport: crate::tls::TransportLimits,
    /// Live links by peer node name (one per pair).
    pub(crate) peers: DashMap<String, Arc<PeerLink>>,
    /// Peers being dialed now (so gossip does not dial the same node twice at once).
    pub(crate) dialing: DashMap<String, ()>,
    /// Local actors and topic inboxes offered to peers, by name.
    pub(crate) served: DashMap<String, Arc<dyn Served>>,
    /// Remote message tables of the actor types this node knows, by actor type.
    pub(crate) tables: DashMap<TypeId, TypeTable>,
    /// Topics that cross nodes, by topic name.
    pub(crate) topics: DashMap<String, Arc<TopicCodec>>,
    /// Topics published here without a matching registration while other nodes subscribe:
    /// warned about once each.
    pub(crate) unsent_topics: DashMap<String, ()>,
    /// What the peers serve.
    pub(crate) directory: Directory,
    pub(crate) membership: std::sync::OnceLock<Membership>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) leaving: AtomicBool,
    pub(crate) shutting_down: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// Starts a node: validates `config`, binds its UDP address, accepts peers, and joins the
    /// cluster through `config.seeds` (retrying with back-off, in the background, until a seed
    /// answers; a node whose only seed is itself starts a cluster).
    ///
    /// # Errors
    /// [`NodeError`] for an invalid config, unreadable certificates, or an address in use.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let tls = NodeTls::new(&config.auth.credentials())?;
        let limits = config.limits.transport();
        let server = tls.server_config(&limits)?;
        let client = tls.client_config(&limits)?;
        let endpoint =
            Endpoint::server(server, config.listen).map_err(|source| NodeError::Bind {
                addr: config.listen,
                source,
            })?;
        let proof_key = match &config.auth {
            AuthConfig::Secret(secret) => secret.clone(),
            // Certificates authenticate; the proof still binds the hello to the connection.
            AuthConfig::Mtls { .. } => ClusterSecret::new(format!("mtls:{}", config.cluster)),
        };
        let system = ActorSystem::builder()
            .node_name(config.name.clone())
            .ask_timeout(Duration::from_millis(config.limits.ask_timeout_ms))
            .build();
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let shared = Arc::new(NodeShared {
            name: config.name.clone(),
            cluster: config.cluster.clone(),
            incarnation,
            proof_key,
            system: system.clone(),
            endpoint,
            client,
            transport: limits,
            peers: DashMap::new(),
            dialing: DashMap::new(),
            served: DashMap::new(),
            tables: DashMap::new(),
            topics: DashMap::new(),
            unsent_topics: DashMap::new(),
            directory: Directory::default(),
            membership: std::sync::OnceLock::new(),
            counters: Arc::new(Counters::default()),
            leaving: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            config,
        });
        system.set_resolver(Arc::new(crate::peers::NodeResolver(Arc::downgrade(
            &shared,
        ))));
        system
            .pubsub()
            .set_remote(Arc::new(crate::peers::NodePublish(Arc::downgrade(&shared))));
        let me = ClusterId {
            name: shared.name.clone(),
            addr: shared.local_addr(),
            incarnation,
        };
        let host = Arc::new(crate::peers::NodeMembershipHost(Arc::downgrade(&shared)));
        let _ = shared
            .membership
            .set(Membership::start(me, &shared.config.membership, host));
        shared.track(tokio::spawn(crate::peers::accept_loop(Arc::clone(&shared))));
        if !shared.config.seeds.is_empty() {
            shared.track(tokio::spawn(crate::peers::join_seeds(Arc::clone(&shared))));
        }
        tracing::info!(node = %shared.name, addr = %shared.local_addr(), "node started");
        Ok(Node { shared })
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// This start's incarnation (larger is newer).
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// The actor system of this node.
    pub fn system(&self) -> &ActorSystem {
        &self.shared.system
    }

    /// The UDP address the node listens on (with the OS-assigned port).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr()
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    /// Dials a peer, proves membership both ways, waits for its registry, and joins its
    /// cluster through it. The peer is kept connected: a lost connection is redialed with
    /// exponential back-off until the node shuts down. Returns the peer's node name.
    ///
    /// # Errors
    /// [`ConnectError`] when the first dial fails (including refusals, with their reason).
    pub async fn connect(&self, addr: SocketAddr) -> Result<String, ConnectError> {
        let link = self.shared.dial(addr).await?;
        let name = link.node().to_string();
        let wait = self.shared.handshake_timeout();
        let _ = tokio::time::timeout(wait, link.announced()).await;
        let keeper = tokio::spawn(crate::peers::keep_connected(
            Arc::clone(&self.shared),
            addr,
            link,
        ));
        self.shared.track(keeper);
        Ok(name)
    }

    /// The peers connected now, sorted by name.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self
            .shared
            .peers
            .iter()
            .filter(|l| !l.is_closed())
            .map(|l| PeerInfo {
                node: l.peer.node.clone(),
                incarnation: l.peer.incarnation,
                addr: l.conn.remote_address(),
                dialed_by_us: l.dialed_by_us,
            })
            .collect();
        peers.sort_by(|a, b| a.node.cmp(&b.node));
        peers
    }

    /// The cluster's members as this node sees them (itself included), sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.shared
            .membership
            .get()
            .map(Membership::members)
            .unwrap_or_default()
    }

    /// Subscribes `subscriber` to this node's view of membership changes.
    pub fn subscribe_members(&self, subscriber: Recipient<MemberEvent>) {
        self.shared
            .system
            .pubsub()
            .subscribe(&Topic::<MemberEvent>::new(MEMBER_EVENTS), subscriber);
    }

    /// Where each name lives: `(name, node)` pairs for this node's served names and every
    /// peer's, sorted.
    pub fn placements(&self) -> Vec<(String, String)> {
        let mut all = self.shared.directory.placements();
        all.extend(
            self.shared
                .served
                .iter()
                .filter(|e| !e.key().starts_with(TOPIC_PREFIX))
                .map(|e| (e.key().clone(), self.shared.name.clone())),
        );
        all.sort();
        all
    }

    /// The nodes with subscribers to `topic` (this one included if it has some), sorted.
    pub fn topic_nodes(&self, topic: &str) -> Vec<String> {
        let mut nodes = self.shared.directory.nodes_with_topic(topic);
        if self
            .shared
            .system
            .pubsub()
            .local_topics()
            .iter()
            .any(|t| t == topic)
        {
            nodes.push(self.shared.name.clone());
        }
        nodes.sort();
        nodes
    }

    /// Offers the named local `actor` to the cluster, accepting the messages `A` declares,
    /// and announces it to every peer.
    ///
    /// # Errors
    /// [`ServeError`] if the actor is anonymous or remote, the name is already served, or the
    /// node is leaving.
    pub fn serve<A: RemoteActor>(&self, actor: &ActorRef<A>) -> Result<(), ServeError> {
        if self.shared.leaving.load(Ordering::Acquire) {
            return Err(ServeError::Leaving);
        }
        let (Some(name), true) = (actor.name(), actor.is_local()) else {
            return Err(ServeError::NotNamedLocal);
        };
        let accepts = self.shared.accepts::<A>();
        match self.shared.served.entry(name.to_string()) {
            Entry::Occupied(_) => return Err(ServeError::NameServed(name.to_string())),
            Entry::Vacant(v) => {
                v.insert(Arc::new(ServedActor::new(
                    name.to_string(),
                    self.shared.system.clone(),
                    actor.clone(),
                    accepts,
                )));
            }
        }
        self.shared.announce_to_all();
        Ok(())
    }

    /// Stops offering the actor served as `name` (the actor keeps running); peers forget the
    /// name, and asks still addressed to it here fail with `UnknownActor`. Returns whether it
    /// was served.
    pub fn unserve(&self, name: &str) -> bool {
        if name.starts_with(TOPIC_PREFIX) {
            return false;
        }
        let removed = match self.shared.served.remove(name) {
            Some((_, served)) => {
                served.retire();
                true
            }
            None => false,
        };
        if removed {
            self.shared.announce_to_all();
        }
        removed
    }

    /// Teaches this node the remote messages of actor type `A`, so that refs of that type
    /// found on peers (also through `ActorSystem::lookup`) can encode them.
    pub fn register<A: RemoteActor>(&self) {
        self.shared.accepts::<A>();
    }

    /// Makes `topic` cluster-wide: publishes on any node reach its subscribers here, and
    /// publishes here reach other nodes' subscribers, one frame per subscribed node.
    pub fn register_topic<T>(&self, topic: &Topic<T>)
    where
        T: RemoteMessage + Message<Reply = ()> + Clone,
    {
        let codec = Arc::new(TopicCodec::of::<T>());
        self.shared
            .topics
            .insert(topic.name().to_string(), Arc::clone(&codec));
        self.shared.served.insert(
            format!("{TOPIC_PREFIX}{}", topic.name()),
            Arc::new(TopicInbox {
                system: self.shared.system.clone(),
                topic: topic.name().to_string(),
                codec,
            }),
        );
    }

    /// Finds the actor named `name`: on this node first, then in the cluster registry.
    ///
    /// A ref to a remote actor addresses its *name* (on its node, or round-robin over the
    /// nodes that serve it), so it keeps working across restarts of those nodes.
    ///
    /// # Errors
    /// [`LookupError::NotFound`], or [`LookupError::WrongType`] when the name belongs to an
    /// actor that accepts none of `A`'s messages.
    pub fn lookup<A: RemoteActor>(&self, name: &str) -> Result<ActorRef<A>, LookupError> {
        self.register::<A>();
        match self.shared.system.lookup::<A>(name) {
            Err(LookupError::NotFound(n)) if !self.shared.directory.instances(name).is_empty() => {
                Err(LookupError::WrongType {
                    name: n,
                    expected: std::any::type_name::<A>(),
                    actual: "an actor accepting none of its messages",
                })
            }
            other => other,
        }
    }

    /// A ref to the instance of `name` that is up now: pinned to that start of its node, so
    /// that after the node restarts, asks through it fail with `NodeDown` instead of reaching
    /// the new instance by accident. A local actor is returned as it is. With several nodes
    /// serving the name, the first by node name is chosen.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn lookup_instance<A: RemoteActor>(&self, name: &str) -> Result<ActorRef<A>, LookupError> {
        let found = self.lookup::<A>(name)?;
        if found.is_local() {
            return Ok(found);
        }
        let table = self.shared.accepts::<A>() as Arc<dyn OutboundTable>;
        let instance = self
            .shared
            .directory
            .instances(name)
            .into_iter()
            .find(|i| table.compatible(&i.tags))
            .ok_or_else(|| LookupError::NotFound(name.to_string()))?;
        let route = crate::route::NameRoute::new(
            Arc::downgrade(&self.shared),
            name.to_string(),
            crate::route::RouteTarget::Instance {
                node: instance.node,
                incarnation: instance.incarnation,
                id: actor_core::ActorId::from_u64(instance.id),
            },
            table,
        );
        Ok(ActorRef::from_remote(Arc::new(route)))
    }

    /// Like [`lookup`](Self::lookup), but waits up to `timeout` for the name to appear in the
    /// cluster.
    ///
    /// # Errors
    /// [`LookupError::Timeout`], [`LookupError::WrongType`].
    pub async fn lookup_wait<A: RemoteActor>(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<ActorRef<A>, LookupError> {
        self.register::<A>();
        self.shared.system.lookup_wait::<A>(name, timeout).await
    }

    /// The transport counters since start.
    pub fn stats(&self) -> NodeStats {
        self.shared.counters.snapshot()
    }

    /// Leaves the cluster gracefully: stops taking new work (withdraws its names, so peers
    /// stop routing here), lets the asks it is working on finish (up to the ask time-out),
    /// tells the cluster it is leaving (peers see `left`, not `down`) and closes its
    /// connections. The actors keep running until [`shutdown`](Self::shutdown).
    pub async fn leave(&self) {
        let shared = &self.shared;
        if shared.leaving.swap(true, Ordering::AcqRel) {
            return;
        }
        shared.served.retain(|name, served| {
            let keep = name.starts_with(TOPIC_PREFIX);
            if !keep {
                served.retire();
            }
            keep
        });
        shared.announce_to_all();
        let drained = poll_until(|| shared.peers.iter().all(|l| l.host_asks_in_flight() == 0));
        let _ = tokio::time::timeout(shared.ask_timeout(), drained).await;
        // Bounded: a peer that does not read its control stream does not hold the leave up.
        let _ = tokio::time::timeout(shared.ask_timeout(), shared.broadcast_leaving()).await;
        if let Some(membership) = shared.membership.get() {
            membership.leave().await;
        }
        // Peers close their links once they have processed the leave (closing first would
        // discard the notes still queued); close what is left after a grace period.
        let acknowledged = poll_until(|| shared.peers.iter().all(|l| l.is_closed()));
        let grace = Duration::from_millis(4 * shared.config.membership.probe_period_ms)
            .max(Duration::from_millis(200));
        let _ = tokio::time::timeout(grace, acknowledged).await;
        shared.close_links(close_code::NORMAL, b"leaving");
        tracing::info!(node = %shared.name, "left the cluster");
    }

    /// Leaves the cluster (see [`leave`](Self::leave)), then stops the node's actors in
    /// reverse start order, then the endpoint.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        if shared.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.leave().await;
        let tasks: Vec<_> =
            std::mem::take(&mut *shared.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
        shared.endpoint.close(close_code::NORMAL, b"shutdown");
        shared.system.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.endpoint.wait_idle()).await;
        tracing::info!(node = %shared.name, "node stopped");
    }

    /// Closes every connection at once without leaving the cluster, as a crash would look to
    /// peers (who then see the node go down): for tests of failure handling.
    #[cfg(feature = "fault-injection")]
    pub async fn crash(&self) {
        let shared = &self.shared;
        shared.shutting_down.store(true, Ordering::Release);
        let tasks: Vec<_> =
            std::mem::take(&mut *shared.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
        shared.endpoint.close(close_code::NORMAL, b"crash");
        shared.close_links(close_code::NORMAL, b"crash");
        shared.system.shutdown().await;
    }

    /// Drops every stream `peer` has opened to this node, replies unwritten, while the
    /// connection stays up, as a misbehaving peer might: for tests of how senders recover.
    ///
    /// # Errors
    /// When `peer` is not connected.
    #[cfg(feature = "fault-injection")]
    pub fn drop_streams_from(&self, peer: &str) -> Result<(), String> {
        self.connected(peer)?.drop_streams.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The link to `peer`, for the fault injections.
    #[cfg(feature = "fault-injection")]
    fn connected(&self, peer: &str) -> Result<Arc<PeerLink>, String> {
        self.shared
            .link(peer)
            .ok_or_else(|| format!("not connected to {peer}"))
    }

    /// Writes `bytes` as they are on a new stream to `peer`, bypassing the codec: for tests
    /// of how peers handle garbage.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_raw(&self, peer: &str, bytes: &[u8]) -> Result<(), String> {
        let link = self.connected(peer)?;
        let (mut send, _recv) = link.conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(bytes).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.shared.name)
            .field("addr", &self.shared.local_addr())
            .field("peers", &self.shared.peers.len())
            .finish()
    }
}

impl NodeShared {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().unwrap_or(self.config.listen)
    }

    pub(crate) fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub(crate) fn ask_timeout(&self) -> Duration {
        Duration::from_millis(self.config.limits.ask_timeout_ms)
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.config.limits.handshake_timeout_ms)
    }

    /// The live link to `node`, if any.
    pub(crate) fn link(&self, node: &str) -> Option<Arc<PeerLink>> {
        self.peers
            .get(node)
            .map(|l| Arc::clone(&l))
            .filter(|l| !l.is_closed())
    }

    /// The table of `A`, built on first use.
    pub(crate) fn accepts<A: RemoteActor>(&self) -> Arc<Accepts<A>> {
        let (typed, _) = self
            .tables
            .entry(TypeId::of::<A>())
            .or_insert_with(|| {
                let accepts = Arc::new(Accepts::<A>::of());
                (accepts.clone(), accepts)
            })
            .clone();
        match typed.downcast::<Accepts<A>>() {
            Ok(accepts) => accepts,
            // The entry for TypeId::of::<A>() is always an Accepts<A>.
            Err(_) => Arc::new(Accepts::<A>::of()),
        }
    }

    /// Closes every link with `code`.
    pub(crate) fn close_links(&self, code: quinn::VarInt, reason: &[u8]) {
        for link in self.peers.iter() {
            link.close(code, reason);
        }
        self.peers.clear();
    }
}
