//! [`NameRoute`]: delivery to an actor by its name on a peer node, behind an `ActorRef`.

use std::any::TypeId;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use actor_core::remote::{ErasedMessage, MessageRef, PendingErased, RemoteRoute, Sending};
use actor_core::{ActorId, AskError, SendError};
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::mpsc::error::TrySendError;

use crate::connection::{LaneFrame, LaneSender, LinkSendError, PeerLink};
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
    outbound: Outbound,
    body: Bytes,
    link: &'a Arc<PeerLink>,
    lane: &'a LaneSender,
}

/// The look-ups of the last send: the link and its lane to the target (not for groups, which
/// pick a node per send), and the last message type's wire form.
#[derive(Default)]
struct LastSend {
    lane: Option<(Arc<PeerLink>, LaneSender)>,
    outbound: Option<(TypeId, Outbound)>,
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

    /// Puts `msg` in its wire form (tag and body), finds the link to send it on and that
    /// link's lane to the target, and hands them to `send`; or says why it cannot be sent.
    ///
    /// `send` runs under the route's look-up lock, so it must not wait: it queues with
    /// `try_send` and clones the lane only when it has to wait for room.
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
        let body = match (outbound.encode)(msg) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(tag = outbound.tag, error = %e, "message not encodable");
                return Err(not_remote(msg));
            }
        };
        let looked_up;
        let (link, lane) = match &last.lane {
            Some((link, lane)) if !link.is_closed() => (link, lane),
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
        // A frame over the limit would make the peer drop the whole connection.
        if body.len() + self.name.len() + outbound.tag.len() + 64 > link.max_frame_len() {
            tracing::warn!(
                tag = outbound.tag,
                bytes = body.len(),
                max = link.max_frame_len(),
                "message larger than the frame limit; not sent"
            );
            return Err(not_remote(msg));
        }
        Ok(send(Prepared {
            outbound,
            body,
            link,
            lane,
        }))
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
        let sent = self.prepare(msg, |p| {
            match p.lane.try_send(LaneFrame::tell(p.outbound.tag, p.body)) {
                Ok(()) => Ok(Sending::Sent),
                Err(TrySendError::Full(frame)) => {
                    let lane = p.lane.clone();
                    Ok(Sending::Waiting(Box::pin(async move {
                        let sent = lane
                            .send(frame)
                            .await
                            .map_err(|_| self.refused(LinkSendError::Closed, ()));
                        self.count_tell(sent)
                    })))
                }
                Err(TrySendError::Closed(_)) => Err(self.refused(LinkSendError::Closed, ())),
            }
        });
        self.count_tell(sent.and_then(|sent| sent))
    }

    fn try_tell(&self, msg: MessageRef<'_>) -> Result<(), SendError<()>> {
        let sent = self.prepare(msg, |p| {
            p.lane
                .try_send(LaneFrame::tell(p.outbound.tag, p.body))
                .map_err(|e| match e {
                    TrySendError::Full(_) => self.refused(LinkSendError::Full, ()),
                    TrySendError::Closed(_) => self.refused(LinkSendError::Closed, ()),
                })
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
            // The ask waits for its lane outside the look-up lock, so it takes its own handles.
            let prepared = self.prepare(msg.as_message_ref(), |p| {
                (p.outbound, p.body, Arc::clone(p.link), p.lane.clone())
            });
            let (outbound, body, link, lane) = match prepared {
                Ok(prepared) => prepared,
                Err(e) => return Err(e.map(|()| msg)),
            };
            let pending = match link.send_ask(&lane, outbound.tag, body).await {
                Ok(p) => p,
                Err(LinkSendError::Overloaded) => {
                    let node = link.node().to_string();
                    let failed: PendingErased =
                        Box::pin(async move { Err(AskError::Overloaded { node }) });
                    return Ok(failed);
                }
                Err(e) => return Err(self.refused(e, msg)),
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
