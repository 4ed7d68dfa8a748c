//! How a node meets its peers: dialing and accepting, one link per pair, seeds, redials, and
//! what arrives on the control stream (membership packets, registry announcements, leaving
//! notes). Also the node's side of the seams it plugs into `actor-core` (name resolution and
//! cluster-wide publish) and into the membership driver.

use std::any::TypeId;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use actor_core::ActorId;
use actor_core::pubsub::RemotePublish;
use actor_core::remote::{ErasedMessage, RemoteRoute, Resolver};
use bytes::Bytes;
use dashmap::mapref::entry::Entry;
use futures::future::BoxFuture;
use quinn::{RecvStream, SendStream};

use crate::cluster::{AnnouncedName, Announcement};
use crate::codec::{Control, Frame, decode_body, encode_body};
use crate::connection::{Inbox, LinkLimits, PeerLink};
use crate::dispatch::{self, Served, ServedNames};
use crate::handshake::{self, ConnectError, LocalIdentity, close_code};
use crate::membership::{ClusterId, MemberEvent, MembershipHost};
use crate::node::{MEMBER_EVENTS, NodeShared, TOPIC_PREFIX};
use crate::route::{NameRoute, RouteTarget};
use crate::stats::Counters;

impl NodeShared {
    fn identity(&self) -> LocalIdentity<'_> {
        LocalIdentity {
            cluster: &self.cluster,
            node: &self.name,
            incarnation: self.incarnation,
            secret: &self.proof_key,
            limits: &self.transport,
        }
    }

    fn link_limits(&self) -> LinkLimits {
        LinkLimits {
            max_frame_len: self.config.limits.max_frame_len,
            max_asks_in_flight: self.config.limits.max_asks_in_flight_per_peer,
        }
    }

    /// Dials `addr` and installs the link.
    pub(crate) async fn dial(
        self: &Arc<Self>,
        addr: SocketAddr,
    ) -> Result<Arc<PeerLink>, ConnectError> {
        if self.shutting_down.load(Ordering::Acquire) || self.leaving.load(Ordering::Acquire) {
            return Err(ConnectError::ShuttingDown);
        }
        let handshake = tokio::time::timeout(
            self.handshake_timeout(),
            handshake::dial(&self.endpoint, self.client.clone(), addr, &self.identity()),
        )
        .await
        .map_err(|_| ConnectError::Timeout { addr })??;
        if handshake.peer.node == self.name {
            handshake
                .conn
                .close(close_code::DUPLICATE, b"dialed itself");
            return Err(ConnectError::Protocol {
                addr,
                reason: "the address is this node's own".to_string(),
            });
        }
        let link = self.install(handshake, true);
        // Ask to join through it (harmless if already a member).
        if let Some(membership) = self.membership.get() {
            membership.announce(ClusterId {
                name: link.peer.node.clone(),
                addr,
                incarnation: link.peer.incarnation,
            });
        }
        Ok(link)
    }

    /// Makes an authenticated connection the link to its peer, resolving duplicates, and
    /// sends it this node's registry.
    fn install(
        self: &Arc<Self>,
        handshake: handshake::Handshake,
        dialed_by_us: bool,
    ) -> Arc<PeerLink> {
        let inbox: Arc<dyn Inbox> = Arc::new(NodeInbox(Arc::downgrade(self)));
        let (link, tasks) = PeerLink::new(
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
        // Only now, with the link known, is anything read from it: a membership packet from
        // the peer would otherwise find no link and dial it a second time.
        tasks.spawn();
        if let Some(loser) = loser {
            if loser.peer.incarnation == winner.peer.incarnation {
                // Both sides keep the same connection; asks already sent on the other one
                // are answered on it before it closes.
                loser.close_when_settled(
                    self.ask_timeout(),
                    close_code::DUPLICATE,
                    b"duplicate connection",
                );
            } else {
                loser.close(close_code::NORMAL, b"peer restarted");
            }
        }
        self.announce_to(&winner);
        tracing::info!(node = %self.name, peer = %winner.peer.node, dialed_by_us = winner.dialed_by_us, "peer connected");
        winner
    }

    /// This node's registry: the names it serves and the topics it has subscribers for.
    fn announcement(&self) -> Announcement {
        let mut names: Vec<AnnouncedName> = self
            .served
            .iter()
            .filter(|e| !e.key().starts_with(TOPIC_PREFIX))
            .map(|e| AnnouncedName {
                name: e.key().clone(),
                id: e.id(),
                tags: e.tags().into_iter().map(str::to_string).collect(),
            })
            .collect();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        let topics = if self.leaving.load(Ordering::Acquire) {
            Vec::new()
        } else {
            self.system.pubsub().local_topics()
        };
        Announcement { names, topics }
    }

    fn announce_to(&self, link: &PeerLink) {
        match encode_body(&self.announcement()) {
            Ok(registry) => link.announce(registry),
            Err(e) => tracing::error!(error = %e, "registry announcement not encodable"),
        }
    }

    /// Sends this node's registry to every peer (after it changed).
    pub(crate) fn announce_to_all(&self) {
        for link in self.peers.iter() {
            self.announce_to(&link);
        }
    }

    /// Tells every peer this node is leaving, after its last registry announcement; resolves
    /// once that is queued everywhere (links that close meanwhile count as done).
    pub(crate) async fn broadcast_leaving(&self) {
        let links: Vec<Arc<PeerLink>> = self.peers.iter().map(|l| Arc::clone(&l)).collect();
        futures::future::join_all(links.iter().map(|l| l.announce_leaving())).await;
    }

    /// Dials the member `to` in the background unless a dial to it is under way.
    fn dial_member(self: &Arc<Self>, to: &ClusterId, then_send: Option<Bytes>) {
        if self.dialing.insert(to.name.clone(), ()).is_some() {
            return;
        }
        let node = Arc::clone(self);
        let to = to.clone();
        tokio::spawn(async move {
            match node.dial(to.addr).await {
                Ok(link) => {
                    if let Some(packet) = then_send {
                        send_packet(&link, packet);
                    }
                }
                Err(e) => {
                    tracing::debug!(node = %node.name, peer = %to.name, error = %e, "cannot reach member")
                }
            }
            node.dialing.remove(&to.name);
        });
    }
}

fn send_packet(link: &PeerLink, packet: Bytes) {
    let len = packet.len() as u64;
    if let Ok(frame) = Frame::control(&Control::Membership(packet.to_vec())) {
        if link.send_control(frame).is_ok() {
            let c = link.counters();
            Counters::add(&c.membership_packets_sent, 1);
            Counters::add(&c.membership_bytes_sent, len);
        }
    }
}

/// Accepts incoming connections, each handshake in its own task.
pub(crate) async fn accept_loop(node: Arc<NodeShared>) {
    while let Some(incoming) = node.endpoint.accept().await {
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let addr = incoming.remote_address();
            let timeout = node.handshake_timeout();
            match handshake::accept(incoming, &node.identity(), timeout).await {
                Ok(handshake) => {
                    if !node.shutting_down.load(Ordering::Acquire) {
                        node.install(handshake, false);
                    }
                }
                Err(e) => {
                    Counters::add(&node.counters.handshakes_refused, 1);
                    tracing::warn!(node = %node.name, %addr, error = %e, "incoming connection refused");
                }
            }
        });
    }
}

/// Keeps the peer at `addr` connected: waits for the link to close, then redials with
/// exponential back-off (or adopts a link the peer dialed meanwhile).
pub(crate) async fn keep_connected(node: Arc<NodeShared>, addr: SocketAddr, first: Arc<PeerLink>) {
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
        if node.shutting_down.load(Ordering::Acquire) || node.leaving.load(Ordering::Acquire) {
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

/// Joins the cluster through the configured seeds: resolves them (a DNS name may give several
/// addresses), dials each until one answers, and retries with back-off, saying so in the log.
pub(crate) async fn join_seeds(node: Arc<NodeShared>) {
    let limits = &node.config.limits;
    let min = Duration::from_millis(limits.reconnect_backoff_min_ms);
    let max = Duration::from_millis(limits.reconnect_backoff_max_ms);
    let me = node.local_addr();
    let mut backoff = min;
    let mut round = 0u32;
    loop {
        round += 1;
        let mut joined = false;
        let mut only_self = true;
        for seed in &node.config.seeds {
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(seed.as_str()).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    tracing::warn!(node = %node.name, %seed, error = %e, "cannot resolve seed");
                    continue;
                }
            };
            for addr in addrs {
                if addr == me
                    || (addr.port() == me.port()
                        && addr.ip().is_loopback()
                        && me.ip().is_unspecified())
                {
                    continue;
                }
                only_self = false;
                match node.dial(addr).await {
                    Ok(link) => {
                        let _ =
                            tokio::time::timeout(node.handshake_timeout(), link.announced()).await;
                        tracing::info!(node = %node.name, %seed, peer = %link.node(), "joined through seed");
                        joined = true;
                    }
                    Err(ConnectError::ShuttingDown) => return,
                    // The seed dialed us at the same moment and kept its own connection: we
                    // are connected, through that one.
                    Err(ConnectError::Connection {
                        source: quinn::ConnectionError::ApplicationClosed(close),
                        ..
                    }) if close.error_code == close_code::DUPLICATE => {
                        tracing::debug!(node = %node.name, %seed, "simultaneous dial; keeping the seed's connection");
                        joined = !node.peers.is_empty();
                    }
                    Err(e) => {
                        if round == 1 {
                            tracing::warn!(node = %node.name, %seed, %addr, error = %e, "seed unreachable; will retry with back-off");
                        } else {
                            tracing::debug!(node = %node.name, %seed, %addr, error = %e, round, "seed still unreachable");
                        }
                    }
                }
            }
        }
        if joined || only_self {
            if only_self {
                tracing::info!(node = %node.name, "the only seed is this node: starting a new cluster");
            }
            return;
        }
        if round == 1 || round % 10 == 0 {
            tracing::warn!(node = %node.name, round, next_try = ?backoff, "no seed reachable yet");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

/// Routes frames from a link to this node.
struct NodeInbox(Weak<NodeShared>);

impl Inbox for NodeInbox {
    fn serve_stream(&self, link: Arc<PeerLink>, send: SendStream, recv: RecvStream) {
        let Some(node) = self.0.upgrade() else { return };
        #[cfg(feature = "fault-injection")]
        let mut dropped = link.drop_streams.subscribe();
        tokio::spawn(async move {
            let mut stream =
                dispatch::ServedStream::new(node as Arc<dyn ServedNames>, link, send, recv);
            let host = stream.first_target().await;
            let serving = stream.serve();
            #[cfg(feature = "fault-injection")]
            let serving = async move {
                tokio::select! {
                    () = serving => {}
                    _ = dropped.changed() => {}
                }
            };
            let serving: actor_core::remote::Feeder = Box::pin(serving);
            // The feeder of the actor it is for, when there is one (see
            // `dispatch::ServedStream`); else this task serves it.
            let serving = match host {
                Some(host) => host.host(serving),
                None => Err(serving),
            };
            if let Err(serving) = serving {
                serving.await;
            }
        });
    }

    fn control(&self, link: &Arc<PeerLink>, frame: Frame) {
        let Some(node) = self.0.upgrade() else { return };
        match decode_body::<Control>(&frame.body) {
            Ok(Control::Ping { nonce }) => {
                if let Ok(pong) = Frame::control(&Control::Pong { nonce }) {
                    let _ = link.send_control(pong);
                }
            }
            Ok(Control::Pong { .. }) => {}
            Ok(Control::Leaving) => {
                tracing::info!(node = %node.name, peer = %link.node(), "peer is leaving");
                // It takes no new work: stop routing to it now.
                node.directory.remove_node(link.node());
                if let Some(m) = node.membership.get() {
                    m.mark_leaving(link.node());
                }
            }
            Ok(Control::Membership(packet)) => {
                if let Some(m) = node.membership.get() {
                    m.handle_data(packet);
                }
            }
            Ok(Control::Registry(body)) => match decode_body::<Announcement>(&body) {
                Ok(announcement) => {
                    node.directory
                        .apply(link.node(), link.peer.incarnation, announcement);
                    link.mark_announced();
                }
                Err(e) => link.violation(&e),
            },
            Err(e) => link.violation(&e),
        }
    }
}

impl ServedNames for NodeShared {
    fn served(&self, name: &str) -> Option<Arc<dyn Served>> {
        self.served.get(name).map(|s| Arc::clone(&s))
    }
}

/// Lets `ActorSystem::lookup` find names served elsewhere in the cluster.
pub(crate) struct NodeResolver(pub(crate) Weak<NodeShared>);

impl Resolver for NodeResolver {
    fn resolve(&self, name: &str, actor_type: TypeId) -> Option<Arc<dyn RemoteRoute>> {
        let node = self.0.upgrade()?;
        let table = node.tables.get(&actor_type).map(|t| Arc::clone(&t.1))?;
        let instances: Vec<_> = node
            .directory
            .instances(name)
            .into_iter()
            .filter(|i| table.compatible(&i.tags))
            .collect();
        let target = match instances.as_slice() {
            [] => return None,
            [one] => RouteTarget::Node {
                node: one.node.clone(),
                id: ActorId::from_u64(one.id),
            },
            _ => RouteTarget::Group,
        };
        Some(Arc::new(NameRoute::new(
            Arc::downgrade(&node),
            name.to_string(),
            target,
            table,
        )))
    }
}

/// Warns, once per topic, that a publish reached local subscribers only although other nodes
/// subscribe: the topic is not registered here (or with another message type).
fn warn_unsent(node: &NodeShared, topic: &str, type_name: &str) {
    if node.directory.nodes_with_topic(topic).is_empty() {
        return;
    }
    if node.unsent_topics.insert(topic.to_string(), ()).is_none() {
        tracing::warn!(
            %topic,
            message = type_name,
            "publish not sent to other nodes: register the topic with Node::register_topic \
             for this message type on the publishing node"
        );
    }
}

/// Sends publishes to the other nodes with subscribers, one frame per node.
pub(crate) struct NodePublish(pub(crate) Weak<NodeShared>);

impl RemotePublish for NodePublish {
    fn publish(&self, topic: &str, msg: ErasedMessage) -> BoxFuture<'_, usize> {
        let topic = topic.to_string();
        Box::pin(async move {
            let Some(node) = self.0.upgrade() else {
                return 0;
            };
            let codec = node.topics.get(&topic).map(|c| Arc::clone(&c));
            let Some(codec) = codec.filter(|c| c.type_id == msg.type_id) else {
                warn_unsent(&node, &topic, msg.type_name);
                return 0;
            };
            let body = match (codec.encode)(&msg) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(%topic, error = %e, "publish not encodable");
                    return 0;
                }
            };
            let target = format!("{TOPIC_PREFIX}{topic}");
            let mut sent = 0;
            for peer in node.directory.nodes_with_topic(&topic) {
                let Some(link) = node.link(&peer) else {
                    continue;
                };
                if link.tell(&target, codec.tag, body.clone()).await.is_ok() {
                    sent += 1;
                } else {
                    Counters::add(&node.counters.tells_dropped, 1);
                }
            }
            sent
        })
    }

    fn subscribers_changed(&self, _topic: &str, _has_local: bool) {
        if let Some(node) = self.0.upgrade() {
            node.announce_to_all();
        }
    }
}

/// The node's side of the membership driver.
pub(crate) struct NodeMembershipHost(pub(crate) Weak<NodeShared>);

impl MembershipHost for NodeMembershipHost {
    fn send_membership(&self, to: &ClusterId, packet: Bytes) {
        let Some(node) = self.0.upgrade() else { return };
        match node.link(&to.name) {
            Some(link) => send_packet(&link, packet),
            None if !node.leaving.load(Ordering::Acquire) => node.dial_member(to, Some(packet)),
            None => {}
        }
    }

    fn member_event(&self, event: MemberEvent) {
        let Some(node) = self.0.upgrade() else { return };
        match &event {
            MemberEvent::Down { node: peer } => {
                tracing::warn!(node = %node.name, %peer, "member down");
                node.directory.remove_node(peer);
                if let Some((_, link)) = node.peers.remove(peer) {
                    // Asks in flight to it fail now with NodeDown.
                    link.close(close_code::NORMAL, b"member down");
                }
            }
            MemberEvent::Left { node: peer } => {
                tracing::info!(node = %node.name, %peer, "member left");
                node.directory.remove_node(peer);
                if let Some((_, link)) = node.peers.remove(peer) {
                    // It answered every ask it took before it left, but the answers ride
                    // other streams than the leave and may still be on their way (the
                    // leaving node closes anyway after its grace).
                    link.close_when_settled(node.ask_timeout(), close_code::NORMAL, b"member left");
                }
            }
            MemberEvent::Joined { node: peer } => {
                tracing::info!(node = %node.name, %peer, "member joined");
                // Connect now, so its names are known before the first probe needs them.
                let member = node
                    .membership
                    .get()
                    .and_then(|m| m.members().into_iter().find(|m| &m.name == peer));
                if let (Some(member), None) = (member, node.link(peer)) {
                    let id = ClusterId {
                        name: member.name,
                        addr: member.addr,
                        incarnation: 0,
                    };
                    node.dial_member(&id, None);
                }
            }
            MemberEvent::Suspect { node: peer } => {
                tracing::info!(node = %node.name, %peer, "member suspected");
            }
        }
        let system = node.system.clone();
        tokio::spawn(async move {
            system
                .pubsub()
                .publish_local(&actor_core::Topic::<MemberEvent>::new(MEMBER_EVENTS), event)
                .await;
        });
    }
}
