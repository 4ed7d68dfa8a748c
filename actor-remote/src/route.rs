//! [`NameRoute`]: delivery to an actor by its name on a peer node, behind an `ActorRef`.

use std::any::TypeId;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use actor_core::remote::{ErasedMessage, MessageRef, PendingErased, RemoteRoute, Sending};
use actor_core::{ActorId, AskError, SendError};
use bytes::BytesMut;
use futures::future::BoxFuture;

use crate::codec::{CodecError, FrameKind, FrameRef, StreamHeaders, TargetRef, encode_frame_with};
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

/// A message ready to queue: its wire form, the link and the lane to send it on (lent from
/// the last send's look-ups, so a stream of sends clones neither).
struct Prepared<'a> {
    msg: MessageRef<'a>,
    outbound: Outbound,
    name: &'a str,
    link: &'a Arc<PeerLink>,
    lane: &'a Arc<Lane>,
}

/// Where a frame went.
enum Queued {
    /// Into the lane.
    Sent,
    /// The lane is full: the frame, encoded apart, for a push that waits for room.
    Full(BytesMut),
}

impl Prepared<'_> {
    /// Appends the message's frame to `dst`: a tell (`id` 0), or the ask `id`. The body is
    /// serialized in place; with the stream's `headers`, the target and tag are referred to
    /// once stated, and without, stated in full.
    fn encode(
        &self,
        id: u64,
        headers: Option<&mut StreamHeaders>,
        dst: &mut BytesMut,
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
            trace: current_trace(),
            body: &[],
        };
        let max = self.link.max_frame_len();
        let body = |dst: &mut BytesMut| (self.outbound.encode)(self.msg, dst);
        match headers {
            Some(headers) => headers.encode_frame_with(&header, max, dst, body),
            None => encode_frame_with(&header, max, dst, body),
        }
    }

    /// Queues the frame (a tell, or the ask `id`) if the lane has room now.
    fn try_queue(&self, id: u64) -> Result<(), PushError> {
        self.lane
            .try_push(id == 0, |dst, headers| self.encode(id, Some(headers), dst))
    }

    /// Queues the frame, or encodes it apart when the lane is full.
    fn queue(&self, id: u64) -> Result<Queued, PushError> {
        match self.try_queue(id) {
            Ok(()) => Ok(Queued::Sent),
            Err(PushError::Full) => {
                let mut frame = BytesMut::new();
                self.encode(id, None, &mut frame)
                    .map_err(PushError::Encode)?;
                Ok(Queued::Full(frame))
            }
            Err(e) => Err(e),
        }
    }
}

/// The look-ups of the last send: the link and its lane to the target (not for groups, which
/// pick a node per send), and the last message type's wire form.
#[derive(Default)]
struct LastSend {
    lane: Option<(Arc<PeerLink>, Arc<Lane>)>,
    outbound: Option<(TypeId, Outbound)>,
}

/// How an ask started.
enum AskStart {
    /// Registered and queued, or (with the lane and its frame) waiting for room.
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
    fn prepare<R>(
        &self,
        msg: MessageRef<'_>,
        send: impl FnOnce(Prepared<'_>) -> R,
    ) -> Result<R, SendError<()>> {
        let mut last = self.lock_last();
        let outbound = match last.outbound {
            Some((type_id, outbound)) if type_id == msg.type_id => outbound,
            _ => {
                let Some(outbound) = self.table.outbound(msg.type_id) else {
                    return Err(not_remote(msg));
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
        Ok(send(Prepared {
            msg,
            outbound,
            name: &self.name,
            link,
            lane,
        }))
    }

    /// The error for a frame the lane did not take.
    fn not_queued(&self, e: PushError, msg: MessageRef<'_>) -> SendError<()> {
        match e {
            PushError::Full => SendError::Full(()),
            PushError::Closed => self.unreachable(()),
            PushError::Encode(e) => {
                // Too large a frame would make the peer drop the whole connection.
                tracing::warn!(type_name = msg.type_name, error = %e, "message not sent: not encodable");
                not_remote(msg)
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
        let sent = self.prepare(msg, |p| match p.queue(0) {
            Ok(Queued::Sent) => Ok(Sending::Sent),
            Ok(Queued::Full(frame)) => {
                let lane = Arc::clone(p.lane);
                Ok(Sending::Waiting(Box::pin(async move {
                    let sent = lane
                        .push(true, &frame)
                        .await
                        .map_err(|_| self.refused(LinkSendError::Closed, ()));
                    self.count_tell(sent)
                })))
            }
            Err(e) => Err(self.not_queued(e, msg)),
        });
        self.count_tell(sent.and_then(|sent| sent))
    }

    fn try_tell(&self, msg: MessageRef<'_>) -> Result<(), SendError<()>> {
        let sent = self.prepare(msg, |p| p.try_queue(0).map_err(|e| self.not_queued(e, msg)));
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
            let started = self.prepare(msg.as_message_ref(), |p| {
                let pending = match p.link.begin_ask() {
                    Ok(pending) => pending,
                    Err(LinkSendError::Overloaded) => {
                        let node = p.link.node().to_string();
                        return Ok((AskStart::Overloaded(node), p.outbound));
                    }
                    Err(e) => return Err(self.refused(e, ())),
                };
                // An ask that fails to queue drops `pending`, which forgets it.
                match p.queue(pending.id()) {
                    Ok(Queued::Sent) => Ok((AskStart::Queued(pending, None), p.outbound)),
                    Ok(Queued::Full(frame)) => {
                        let wait = Some((Arc::clone(p.lane), frame));
                        Ok((AskStart::Queued(pending, wait), p.outbound))
                    }
                    Err(e) => Err(self.not_queued(e, p.msg)),
                }
            });
            let (start, outbound) = match started.and_then(|started| started) {
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
                AskStart::Queued(pending, Some((lane, frame))) => {
                    if lane.push(false, &frame).await.is_err() {
                        return Err(self.refused(LinkSendError::Closed, msg));
                    }
                    pending
                }
            };
            let decode = outbound.decode_reply;
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

fn not_remote(msg: MessageRef<'_>) -> SendError<()> {
    SendError::NotRemote {
        msg: (),
        type_name: msg.type_name,
    }
}
