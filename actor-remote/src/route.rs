//! [`NameRoute`]: delivery to an actor by its name on a peer node, behind an `ActorRef`.

use std::any::TypeId;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use actor_core::remote::{ErasedMessage, MessageRef, PendingErased, RemoteRoute, Sending};
use actor_core::{ActorId, AskError, SendError};
use bytes::BytesMut;
use futures::future::BoxFuture;

use crate::codec::{
    CodecError, FrameKind, FrameRef, StreamHeaders, TargetRef, TellHeader, TraceContext,
};
use crate::connection::{LinkSendError, PeerLink, PendingAsk, current_trace};
use crate::lane::{Lane, PushError};
use crate::message::{Outbound, OutboundTable};
use crate::node::NodeShared;
use crate::stats::Counters;

/// Where a [`NameRoute`] sends.
pub(crate) enum RouteTarget {
    /// The name on one node (the only one serving it at look-up time), whichever start of
    /// that node is up.
    Node { node: String, id: ActorId },
    /// One instance: the name on one start (incarnation) of one node. Once that node has
    /// restarted, sends fail (`NodeDown` for asks) rather than reach the new instance.
    Instance {
        node: String,
        incarnation: u64,
        id: ActorId,
    },
    /// The name on whichever node serves it, round-robin over the live ones per send.
    Group,
}

/// The node name shown by group refs.
const GROUP: &str = "*";

/// Sends to the actor registered as `name` on a peer node, over whichever connection to that
/// node is live. Addressing the name (not one instance) keeps the ref working after the peer
/// restarts and is reconnected; a group ref also stops choosing nodes that went down.
pub(crate) struct NameRoute {
    node: Weak<NodeShared>,
    name: String,
    target: RouteTarget,
    table: Arc<dyn OutboundTable>,
    /// What the last send found, so a stream of sends to one actor does the look-ups once.
    last: Mutex<LastSend>,
}

/// How a message type goes on the wire to the route's target.
#[derive(Clone, Copy)]
struct Wire<'a> {
    outbound: Outbound,
    name: &'a str,
    max_frame_len: usize,
}

impl Wire<'_> {
    /// Appends a frame to `dst`: a tell (`id` 0), or the ask `id`, whose body `body`
    /// appends. The target and tag are referred to once the stream stated them (`headers`).
    fn encode(
        &self,
        id: u64,
        trace: Option<TraceContext>,
        headers: &mut StreamHeaders,
        dst: &mut BytesMut,
        body: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        let header = FrameRef {
            kind: if id == 0 {
                FrameKind::Tell
            } else {
                FrameKind::Ask
            },
            correlation_id: id,
            target: Some(TargetRef::Name(self.name)),
            tag: self.outbound.tag,
            trace,
            body: &[],
        };
        headers.encode_frame_with(&header, self.max_frame_len, dst, body)
    }

    /// Queues a frame whose body was encoded apart, once the lane has room.
    async fn push(&self, lane: &Lane, id: u64, body: &[u8]) -> Result<(), PushError> {
        lane.push_with(id == 0, |dst, headers| {
            self.encode(id, current_trace(), headers, dst, |dst| {
                dst.extend_from_slice(body);
                Ok(())
            })
        })
        .await
    }
}

/// A message ready to queue: its wire form, the link and the lane to send it on (lent from
/// the last send's look-ups, so a stream of sends clones neither).
struct Prepared<'g, 'a> {
    msg: MessageRef<'g>,
    wire: Wire<'a>,
    link: &'g Arc<PeerLink>,
    lane: &'g Arc<Lane>,
    /// The header of the last untraced tell, for the next one of the same type.
    tell_header: &'g mut Option<(TypeId, TellHeader)>,
}

impl Prepared<'_, '_> {
    /// Queues the frame (a tell, or the ask `id`) if the lane has room now, serializing the
    /// body in place. An untraced tell of the type told last reuses that tell's header.
    fn try_queue(&mut self, id: u64) -> Result<(), PushError> {
        let (msg, wire) = (self.msg, self.wire);
        let body = |dst: &mut BytesMut| (wire.outbound.encode)(msg, dst);
        let trace = current_trace();
        if id != 0 || trace.is_some() {
            return self.lane.try_push(id == 0, |dst, headers| {
                wire.encode(id, trace, headers, dst, body)
            });
        }
        let held = match *self.tell_header {
            Some((type_id, header)) if type_id == msg.type_id => Some(header),
            _ => None,
        };
        let mut made = None;
        self.lane.try_push(true, |dst, headers| {
            let (name, tag, max) = (wire.name, wire.outbound.tag, wire.max_frame_len);
            made = headers.encode_tell_with(held, name, tag, max, dst, body)?;
            Ok(())
        })?;
        *self.tell_header = made.map(|header| (msg.type_id, header));
        Ok(())
    }

    /// The body alone, for a send that waits for room: a waiting future cannot hold the
    /// message, which the sender only lends.
    fn body(&self) -> Result<BytesMut, PushError> {
        let mut body = BytesMut::new();
        (self.wire.outbound.encode)(self.msg, &mut body).map_err(PushError::Encode)?;
        Ok(body)
    }
}

/// The look-ups of the last send: the link and its lane to the target (not for groups, which
/// pick a node per send), and the last message type's wire form.
#[derive(Default)]
struct LastSend {
    lane: Option<(Arc<PeerLink>, Arc<Lane>)>,
    outbound: Option<(TypeId, Outbound)>,
    /// The header of the last untraced tell and its message type (see [`TellHeader`]).
    tell_header: Option<(TypeId, TellHeader)>,
}

/// How an ask started.
enum AskStart {
    /// Registered and queued, or (with the lane and the body) to queue once the lane has room.
    Queued(PendingAsk, Option<(Arc<Lane>, BytesMut)>),
    /// The node has its limit of asks in flight.
    Overloaded(String),
}

impl NameRoute {
    pub(crate) fn new(
        node: Weak<NodeShared>,
        name: String,
        target: RouteTarget,
        table: Arc<dyn OutboundTable>,
    ) -> Self {
        Self {
            node,
            name,
            target,
            table,
            last: Mutex::new(LastSend::default()),
        }
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, LastSend> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The link for the next send: the target node's, or the next live group member's.
    fn link(&self) -> Option<Arc<PeerLink>> {
        let node = self.node.upgrade()?;
        match &self.target {
            RouteTarget::Node { node: peer, .. } => node.link(peer),
            RouteTarget::Instance {
                node: peer,
                incarnation,
                ..
            } => node
                .link(peer)
                .filter(|l| l.peer.incarnation == *incarnation),
            RouteTarget::Group => {
                let picked = node.directory.pick(&self.name, |i| {
                    node.link(&i.node).is_some() && self.table.compatible(&i.tags)
                })?;
                node.link(&picked.node)
            }
        }
    }

    fn peer(&self) -> &str {
        match &self.target {
            RouteTarget::Node { node, .. } | RouteTarget::Instance { node, .. } => node,
            RouteTarget::Group => GROUP,
        }
    }

    /// Finds the wire form of `msg`'s type, the link to send it on and that link's lane to
    /// the target, and hands them to `send`; or says why it cannot be sent.
    ///
    /// `send` runs under the route's look-up lock, so it must not wait: it queues with
    /// `try_push` and clones the lane only when it has to wait for room.
    fn prepare<'s, R>(
        &'s self,
        msg: MessageRef<'_>,
        send: impl FnOnce(Prepared<'_, 's>) -> R,
    ) -> Result<R, SendError<()>> {
        let mut guard = self.lock_last();
        // Borrowed apart, field by field: the lane is lent out beside the tell header.
        let last = &mut *guard;
        let outbound = match last.outbound {
            Some((type_id, outbound)) if type_id == msg.type_id => outbound,
            _ => {
                let Some(outbound) = self.table.outbound(msg.type_id) else {
                    return Err(not_remote(msg.type_name));
                };
                last.outbound = Some((msg.type_id, outbound));
                outbound
            }
        };
        let looked_up;
        let (link, lane) = match &last.lane {
            Some((link, lane)) if !lane.is_closed() => (link, lane),
            _ => {
                last.lane = None;
                last.tell_header = None;
                let Some(link) = self.link() else {
                    return Err(self.unreachable(()));
                };
                let Ok(lane) = link.lane(&self.name) else {
                    return Err(self.unreachable(()));
                };
                if matches!(self.target, RouteTarget::Group) {
                    looked_up = (link, lane);
                    (&looked_up.0, &looked_up.1)
                } else {
                    let (link, lane) = last.lane.insert((link, lane));
                    (&*link, &*lane)
                }
            }
        };
        let wire = Wire {
            outbound,
            name: &self.name,
            max_frame_len: link.max_frame_len(),
        };
        Ok(send(Prepared {
            msg,
            wire,
            link,
            lane,
            tell_header: &mut last.tell_header,
        }))
    }

    /// The error for a frame of a message of type `type_name` that the lane did not take. One
    /// that cannot be encoded (too large a frame, above all, which would make the peer drop
    /// the whole connection) is logged.
    fn not_queued(&self, e: PushError, type_name: &'static str) -> SendError<()> {
        match e {
            PushError::Full => SendError::Full(()),
            PushError::Closed => self.unreachable(()),
            PushError::Encode(e) => {
                tracing::warn!(type_name, error = %e, "message not sent: not encodable");
                not_remote(type_name)
            }
        }
    }

    fn unreachable<M>(&self, msg: M) -> SendError<M> {
        SendError::Unreachable {
            msg,
            node: self.peer().to_string(),
        }
    }

    /// Counts a tell refused because its node cannot be reached (asks are not tells).
    fn count_tell<T>(&self, sent: Result<T, SendError<()>>) -> Result<T, SendError<()>> {
        if let Err(SendError::Unreachable { .. }) = &sent {
            if let Some(node) = self.node.upgrade() {
                Counters::add(&node.counters.tells_dropped, 1);
            }
        }
        sent
    }

    fn refused<M>(&self, e: LinkSendError, msg: M) -> SendError<M> {
        match e {
            LinkSendError::Full => SendError::Full(msg),
            LinkSendError::Closed | LinkSendError::Overloaded => self.unreachable(msg),
        }
    }
}

impl RemoteRoute for NameRoute {
    fn id(&self) -> ActorId {
        match &self.target {
            RouteTarget::Node { id, .. } | RouteTarget::Instance { id, .. } => *id,
            RouteTarget::Group => ActorId::from_u64(0),
        }
    }

    fn node(&self) -> &str {
        self.peer()
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn is_alive(&self) -> bool {
        self.link().is_some()
    }

    fn tell(&self, msg: MessageRef<'_>) -> Result<Sending<'_>, SendError<()>> {
        let sent = self.prepare(msg, |mut p| match p.try_queue(0) {
            Ok(()) => Ok(Sending::Sent),
            Err(PushError::Full) => {
                let type_name = msg.type_name;
                let body = p.body().map_err(|e| self.not_queued(e, type_name))?;
                let (lane, wire) = (Arc::clone(p.lane), p.wire);
                Ok(Sending::Waiting(Box::pin(async move {
                    let sent = wire.push(&lane, 0, &body).await;
                    self.count_tell(sent.map_err(|e| self.not_queued(e, type_name)))
                })))
            }
            Err(e) => Err(self.not_queued(e, msg.type_name)),
        });
        self.count_tell(sent.and_then(|sent| sent))
    }

    fn try_tell(&self, msg: MessageRef<'_>) -> Result<(), SendError<()>> {
        let sent = self.prepare(msg, |mut p| {
            p.try_queue(0)
                .map_err(|e| self.not_queued(e, msg.type_name))
        });
        self.count_tell(sent.and_then(|sent| sent))
    }

    fn send_ask(
        &self,
        msg: ErasedMessage,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PendingErased, SendError<ErasedMessage>>> {
        Box::pin(async move {
            if let RouteTarget::Instance { node, .. } = &self.target {
                if self.link().is_none() {
                    // That start of the node is gone: its instance is down for good.
                    let node = node.clone();
                    let failed: PendingErased =
                        Box::pin(async move { Err(AskError::NodeDown { node }) });
                    return Ok(failed);
                }
            }
            let started = self.prepare(msg.as_message_ref(), |mut p| {
                let pending = match p.link.begin_ask(p.lane) {
                    Ok(pending) => pending,
                    Err(LinkSendError::Overloaded) => {
                        let node = p.link.node().to_string();
                        return Ok((AskStart::Overloaded(node), p.wire));
                    }
                    Err(e) => return Err(self.refused(e, ())),
                };
                // An ask that fails to queue drops `pending`, which forgets it.
                let type_name = p.msg.type_name;
                match p.try_queue(pending.id()) {
                    Ok(()) => Ok((AskStart::Queued(pending, None), p.wire)),
                    Err(PushError::Full) => {
                        let body = p.body().map_err(|e| self.not_queued(e, type_name))?;
                        let wait = Some((Arc::clone(p.lane), body));
                        Ok((AskStart::Queued(pending, wait), p.wire))
                    }
                    Err(e) => Err(self.not_queued(e, type_name)),
                }
            });
            let (start, wire) = match started.and_then(|started| started) {
                Ok(started) => started,
                Err(e) => return Err(e.map(|()| msg)),
            };
            let pending = match start {
                AskStart::Overloaded(node) => {
                    let failed: PendingErased =
                        Box::pin(async move { Err(AskError::Overloaded { node }) });
                    return Ok(failed);
                }
                AskStart::Queued(pending, None) => pending,
                // The ask waits for room outside the look-up lock.
                AskStart::Queued(pending, Some((lane, body))) => {
                    match wire.push(&lane, pending.id(), &body).await {
                        Ok(()) => pending,
                        Err(e) => {
                            let refused = self.not_queued(e, msg.type_name);
                            return Err(refused.map(|()| msg));
                        }
                    }
                }
            };
            let decode = wire.outbound.decode_reply;
            let reply: PendingErased = Box::pin(async move {
                let body = tokio::time::timeout(timeout, pending.reply())
                    .await
                    .map_err(|_| AskError::Timeout(timeout))??;
                decode(&body).map_err(|e| AskError::Codec(e.to_string()))
            });
            Ok(reply)
        })
    }

    fn ask_timeout(&self) -> Duration {
        self.node
            .upgrade()
            .map(|n| n.ask_timeout())
            .unwrap_or(actor_core::DEFAULT_ASK_TIMEOUT)
    }
}

fn not_remote(type_name: &'static str) -> SendError<()> {
    SendError::NotRemote { msg: (), type_name }
}
