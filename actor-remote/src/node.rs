//! [`Node`]: an actor system with a name, a QUIC endpoint and authenticated peers.
//!
//! ```no_run
//! use actor_remote::{Node, config::{AuthConfig, NodeConfig}};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::start(NodeConfig::new("a", AuthConfig::Secret("a long random secret".into()))).await?;
//! let peer = node.connect("127.0.0.1:7101".parse()?).await?;
//! println!("connected to {peer}; listening on {}", node.local_addr());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

use std::any::TypeId;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actor_core::remote::{RemoteRoute, Resolver};
use actor_core::{ActorId, ActorRef, ActorSystem, LookupError};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use quinn::{Endpoint, RecvStream, SendStream};
use tokio::task::JoinHandle;

use crate::auth::ClusterSecret;
use crate::codec::{Control, Frame, decode_body, encode_body};
use crate::config::{AuthConfig, ConfigError, NodeConfig};
use crate::connection::{Inbox, LinkLimits, PeerLink};
use crate::dispatch::{
    self, Directory, LOOKUP_TAG, LookupReply, NODE_SERVICE, NodeService, Served, ServedActor,
};
use crate::handshake::{self, ConnectError, LocalIdentity, close_code};
use crate::message::{Accepts, OutboundTable, RemoteActor};
use crate::route::NameRoute;
use crate::stats::{Counters, NodeStats};
use crate::tls::{NodeTls, TlsError};

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

/// One actor type's `Accepts<A>`, typed (behind `Any`) and erased.
type TypeTable = (Arc<dyn std::any::Any + Send + Sync>, Arc<dyn OutboundTable>);

/// A running node: an [`ActorSystem`] reachable by authenticated peers over QUIC.
///
/// Cheap to clone. Refs to actors on peers ([`Node::lookup`]) are plain
/// [`ActorRef`]s; calling code does not know where the actor lives.
#[derive(Clone)]
pub struct Node {
    shared: Arc<NodeShared>,
}

pub(crate) struct NodeShared {
    pub(crate) name: String,
    cluster: String,
    incarnation: u64,
    config: NodeConfig,
    proof_key: ClusterSecret,
    system: ActorSystem,
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    /// Live links by peer node name (one per pair).
    peers: DashMap<String, Arc<PeerLink>>,
    /// Local actors offered to peers, by name.
    served: DashMap<String, Arc<dyn Served>>,
    /// Remote message tables of the actor types this node knows, by actor type: typed (for
    /// serving) and erased (for routes); both point at the same `Accepts<A>`.
    tables: DashMap<TypeId, TypeTable>,
    /// Names learned on peers: name -> (node, id, accepted tags).
    directory: DashMap<String, (String, u64, Vec<String>)>,
    pub(crate) counters: Arc<Counters>,
    shutting_down: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// Starts a node: validates `config`, binds its UDP address and accepts peers.
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
            peers: DashMap::new(),
            served: DashMap::new(),
            tables: DashMap::new(),
            directory: DashMap::new(),
            counters: Arc::new(Counters::default()),
            shutting_down: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            config,
        });
        let weak = Arc::downgrade(&shared);
        let lookup = move |name: &str| weak.upgrade().and_then(|node| node.lookup_served(name));
        shared
            .served
            .insert(NODE_SERVICE.to_string(), Arc::new(NodeService { lookup }));
        system.set_resolver(Arc::new(NodeResolver(Arc::downgrade(&shared))));
        let accept = tokio::spawn(accept_loop(Arc::clone(&shared)));
        shared.track(accept);
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

    /// Dials a peer, proves membership both ways, and keeps the peer connected: if the
    /// connection is lost, it is redialed with exponential back-off until the node shuts down.
    /// Returns the peer's node name.
    ///
    /// # Errors
    /// [`ConnectError`] when the first dial fails (including refusals, with their reason).
    pub async fn connect(&self, addr: SocketAddr) -> Result<String, ConnectError> {
        let link = self.shared.dial(addr).await?;
        let name = link.node().to_string();
        let keeper = tokio::spawn(keep_connected(Arc::clone(&self.shared), addr, link));
        self.shared.track(keeper);
        Ok(name)
    }

    /// The peers connected now.
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

    /// Offers the named local `actor` to peers, accepting the messages `A` declares.
    ///
    /// # Errors
    /// [`ServeError`] if the actor is anonymous or remote, or the name is already served.
    pub fn serve<A: RemoteActor>(&self, actor: &ActorRef<A>) -> Result<(), ServeError> {
        let (Some(name), true) = (actor.name(), actor.is_local()) else {
            return Err(ServeError::NotNamedLocal);
        };
        let accepts = self.shared.accepts::<A>();
        match self.shared.served.entry(name.to_string()) {
            Entry::Occupied(_) => Err(ServeError::NameServed(name.to_string())),
            Entry::Vacant(v) => {
                v.insert(Arc::new(ServedActor::new(
                    name.to_string(),
                    self.shared.system.clone(),
                    actor.clone(),
                    accepts,
                )));
                Ok(())
            }
        }
    }

    /// Stops offering the actor served as `name` to peers (the actor keeps running); asks to
    /// it from peers then fail with `UnknownActor`. Returns whether it was served.
    pub fn unserve(&self, name: &str) -> bool {
        if name == NODE_SERVICE {
            return false;
        }
        match self.shared.served.remove(name) {
            Some((_, served)) => {
                served.retire();
                true
            }
            None => false,
        }
    }

    /// Teaches this node the remote messages of actor type `A`, so that refs of that type
    /// found by name on peers (also through `ActorSystem::lookup`) can encode them.
    pub fn register<A: RemoteActor>(&self) {
        self.shared.accepts::<A>();
    }

    /// Finds the actor named `name`: on this node first, then on each connected peer.
    ///
    /// A ref to a remote actor addresses its *name* on that node, so it keeps working when the
    /// peer restarts and is reconnected.
    ///
    /// # Errors
    /// [`LookupError::NotFound`], or [`LookupError::WrongType`] when the name belongs to an
    /// actor of another type.
    pub async fn lookup<A: RemoteActor>(&self, name: &str) -> Result<ActorRef<A>, LookupError> {
        self.register::<A>();
        match self.shared.system.lookup::<A>(name) {
            Err(LookupError::NotFound(_)) => {}
            found => return found,
        }
        let links: Vec<Arc<PeerLink>> = self.shared.peers.iter().map(|l| Arc::clone(&l)).collect();
        for link in links {
            let Some(found) = self.shared.remote_lookup(&link, name).await else {
                continue;
            };
            if !self.shared.accepts::<A>().compatible(&found.tags) {
                return Err(LookupError::WrongType {
                    name: name.to_string(),
                    expected: std::any::type_name::<A>(),
                    actual: "an actor accepting none of its messages",
                });
            }
            self.shared.directory.insert(
                name.to_string(),
                (link.node().to_string(), found.id, found.tags),
            );
            return self.shared.system.lookup::<A>(name);
        }
        Err(LookupError::NotFound(name.to_string()))
    }

    /// The transport counters since start.
    pub fn stats(&self) -> NodeStats {
        self.shared.counters.snapshot()
    }

    /// Stops the node: tells its peers it is leaving and closes its connections (their asks
    /// in flight here fail at once with `NodeDown`; nothing new arrives), then stops its
    /// actors in reverse start order, then the endpoint.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        if shared.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let tasks: Vec<_> =
            std::mem::take(&mut *shared.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
        for link in shared.peers.iter() {
            if let Ok(frame) = Frame::control(&Control::Leaving) {
                let _ = link.send_control(frame);
            }
        }
        // Let the leaving notes go out before the close discards them.
        tokio::task::yield_now().await;
        for link in shared.peers.iter() {
            link.close(close_code::NORMAL, b"shutdown");
        }
        shared.peers.clear();
        shared.endpoint.close(close_code::NORMAL, b"shutdown");
        shared.system.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.endpoint.wait_idle()).await;
        tracing::info!(node = %shared.name, "node stopped");
    }

    /// Writes `bytes` as they are on a new stream to `peer`, bypassing the codec: for tests
    /// of how peers handle garbage.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_raw(&self, peer: &str, bytes: &[u8]) -> Result<(), String> {
        let link = self
            .shared
            .link(peer)
            .ok_or_else(|| format!("not connected to {peer}"))?;
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
    fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().unwrap_or(self.config.listen)
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn identity(&self) -> LocalIdentity<'_> {
        LocalIdentity {
            cluster: &self.cluster,
            node: &self.name,
            incarnation: self.incarnation,
            secret: &self.proof_key,
        }
    }

    fn link_limits(&self) -> LinkLimits {
        LinkLimits {
            max_frame_len: self.config.limits.max_frame_len,
            max_asks_in_flight: self.config.limits.max_asks_in_flight_per_peer,
        }
    }

    pub(crate) fn ask_timeout(&self) -> Duration {
        Duration::from_millis(self.config.limits.ask_timeout_ms)
    }

    fn handshake_timeout(&self) -> Duration {
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
    fn accepts<A: RemoteActor>(&self) -> Arc<Accepts<A>> {
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

    async fn dial(self: &Arc<Self>, addr: SocketAddr) -> Result<Arc<PeerLink>, ConnectError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(ConnectError::ShuttingDown);
        }
        let handshake = tokio::time::timeout(
            self.handshake_timeout(),
            handshake::dial(&self.endpoint, self.client.clone(), addr, &self.identity()),
        )
        .await
        .map_err(|_| ConnectError::Timeout { addr })??;
        Ok(self.install(handshake, true))
    }

    /// Makes an authenticated connection the link to its peer, resolving duplicates.
    fn install(
        self: &Arc<Self>,
        handshake: handshake::Handshake,
        dialed_by_us: bool,
    ) -> Arc<PeerLink> {
        let inbox: Arc<dyn Inbox> = Arc::new(NodeInbox(Arc::downgrade(self)));
        let link = PeerLink::start(
            handshake,
            dialed_by_us,
            self.link_limits(),
            Arc::clone(&self.counters),
            inbox,
        );
        let peer = link.peer.clone();
        let mut loser = None;
        let winner = match self.peers.entry(peer.node.clone()) {
            Entry::Vacant(v) => {
                v.insert(Arc::clone(&link));
                link
            }
            Entry::Occupied(mut o) => {
                let existing = o.get();
                let replace = existing.is_closed()
                    || existing.peer.incarnation != peer.incarnation
                    // Simultaneous dial: both sides keep the connection dialed by the node
                    // whose name sorts first.
                    || link.dialed_by_us == (self.name < peer.node);
                if replace {
                    let old = o.insert(Arc::clone(&link));
                    if !old.is_closed() {
                        loser = Some(old);
                    }
                    link
                } else {
                    loser = Some(link);
                    Arc::clone(o.get())
                }
            }
        };
        if let Some(loser) = loser {
            if loser.peer.incarnation == winner.peer.incarnation {
                loser.close(close_code::DUPLICATE, b"duplicate connection");
            } else {
                loser.close(close_code::NORMAL, b"peer restarted");
            }
        }
        tracing::info!(node = %self.name, peer = %winner.peer.node, dialed_by_us = winner.dialed_by_us, "peer connected");
        winner
    }

    fn lookup_served(&self, name: &str) -> Option<LookupReply> {
        if name == NODE_SERVICE {
            return None;
        }
        self.served.get(name).map(|s| LookupReply {
            id: s.id(),
            tags: s.tags().into_iter().map(str::to_string).collect(),
        })
    }

    async fn remote_lookup(&self, link: &Arc<PeerLink>, name: &str) -> Option<LookupReply> {
        let body = encode_body(&name.to_string()).ok()?;
        let pending = link.send_ask(NODE_SERVICE, LOOKUP_TAG, body).await.ok()?;
        let timeout = Duration::from_millis(self.config.limits.ask_timeout_ms);
        let reply = tokio::time::timeout(timeout, pending.reply())
            .await
            .ok()?
            .ok()?;
        decode_body::<Option<LookupReply>>(&reply).ok().flatten()
    }
}

/// Accepts incoming connections, each handshake in its own task.
async fn accept_loop(node: Arc<NodeShared>) {
    while let Some(incoming) = node.endpoint.accept().await {
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let addr = incoming.remote_address();
            let timeout = node.handshake_timeout();
            match tokio::time::timeout(timeout, handshake::accept(incoming, &node.identity())).await
            {
                Ok(Ok(handshake)) => {
                    if !node.shutting_down.load(Ordering::Acquire) {
                        node.install(handshake, false);
                    }
                }
                Ok(Err(e)) => {
                    Counters::add(&node.counters.handshakes_refused, 1);
                    tracing::warn!(node = %node.name, %addr, error = %e, "incoming connection refused");
                }
                Err(_) => {
                    Counters::add(&node.counters.handshakes_refused, 1);
                    tracing::warn!(node = %node.name, %addr, "incoming connection did not finish its handshake in time");
                }
            }
        });
    }
}

/// Keeps the peer at `addr` connected: waits for the link to close, then redials with
/// exponential back-off (or adopts a link the peer dialed meanwhile).
async fn keep_connected(node: Arc<NodeShared>, addr: SocketAddr, first: Arc<PeerLink>) {
    let limits = &node.config.limits;
    let min = Duration::from_millis(limits.reconnect_backoff_min_ms);
    let max = Duration::from_millis(limits.reconnect_backoff_max_ms);
    let peer = first.node().to_string();
    let mut link = Some(first);
    let mut backoff = min;
    let mut failures = 0u32;
    loop {
        if let Some(l) = link.take() {
            l.closed().await;
        }
        if node.shutting_down.load(Ordering::Acquire) {
            return;
        }
        if let Some(live) = node.link(&peer) {
            link = Some(live);
            continue;
        }
        match node.dial(addr).await {
            Ok(l) => {
                tracing::info!(node = %node.name, %peer, %addr, "reconnected");
                backoff = min;
                failures = 0;
                link = Some(l);
            }
            Err(ConnectError::ShuttingDown) => return,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(node = %node.name, %peer, %addr, error = %e, "peer unreachable; retrying with back-off");
                } else {
                    tracing::debug!(node = %node.name, %peer, %addr, error = %e, failures, "redial failed");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

/// Routes frames from a link to this node.
struct NodeInbox(std::sync::Weak<NodeShared>);

impl Inbox for NodeInbox {
    fn serve_stream(&self, link: Arc<PeerLink>, send: SendStream, recv: RecvStream) {
        if let Some(node) = self.0.upgrade() {
            tokio::spawn(dispatch::serve_stream(
                node as Arc<dyn Directory>,
                link,
                send,
                recv,
            ));
        }
    }

    fn control(&self, link: &Arc<PeerLink>, frame: Frame) {
        match decode_body::<Control>(&frame.body) {
            Ok(Control::Ping { nonce }) => {
                if let Ok(pong) = Frame::control(&Control::Pong { nonce }) {
                    let _ = link.send_control(pong);
                }
            }
            Ok(Control::Pong { .. }) => {}
            Ok(Control::Leaving) => {
                tracing::info!(peer = %link.node(), "peer is leaving");
            }
            Ok(Control::Membership(_)) => {}
            Err(e) => link.violation(&e),
        }
    }
}

impl Directory for NodeShared {
    fn served(&self, name: &str) -> Option<Arc<dyn Served>> {
        self.served.get(name).map(|s| Arc::clone(&s))
    }
}

/// Lets `ActorSystem::lookup` find names learned on peers.
struct NodeResolver(std::sync::Weak<NodeShared>);

impl Resolver for NodeResolver {
    fn resolve(&self, name: &str, actor_type: TypeId) -> Option<Arc<dyn RemoteRoute>> {
        let node = self.0.upgrade()?;
        let table = node.tables.get(&actor_type).map(|t| Arc::clone(&t.1))?;
        let (peer, id, tags) = node.directory.get(name).map(|e| e.clone())?;
        if !table.compatible(&tags) {
            return None;
        }
        Some(Arc::new(NameRoute::new(
            Arc::downgrade(&node),
            peer,
            name.to_string(),
            ActorId::from_u64(id),
            table,
        )))
    }
}
