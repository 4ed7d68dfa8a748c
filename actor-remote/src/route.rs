//! [`NameRoute`]: delivery to an actor by its name on a peer node, behind an `ActorRef`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use actor_core::remote::{ErasedMessage, PendingErased, RemoteRoute};
use actor_core::{ActorId, AskError, SendError};
use futures::future::BoxFuture;

use crate::connection::{LinkSendError, PeerLink};
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
        }
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

    /// The wire form of `msg`, or the reason it cannot be sent (with the message back).
    fn encode(
        &self,
        msg: ErasedMessage,
    ) -> Result<(ErasedMessage, Outbound, bytes::Bytes, Arc<PeerLink>), SendError<ErasedMessage>>
    {
        let Some(outbound) = self.table.outbound(msg.type_id) else {
            let type_name = msg.type_name;
            return Err(SendError::NotRemote { msg, type_name });
        };
        let body = match (outbound.encode)(&msg) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(tag = outbound.tag, error = %e, "message not encodable");
                let type_name = msg.type_name;
                return Err(SendError::NotRemote { msg, type_name });
            }
        };
        let Some(link) = self.link() else {
            return Err(self.unreachable(msg));
        };
        // A frame over the limit would make the peer drop the whole connection.
        if body.len() + self.name.len() + outbound.tag.len() + 64 > link.max_frame_len() {
            tracing::warn!(
                tag = outbound.tag,
                bytes = body.len(),
                max = link.max_frame_len(),
                "message larger than the frame limit; not sent"
            );
            let type_name = msg.type_name;
            return Err(SendError::NotRemote { msg, type_name });
        }
        Ok((msg, outbound, body, link))
    }

    fn unreachable(&self, msg: ErasedMessage) -> SendError<ErasedMessage> {
        SendError::Unreachable {
            msg,
            node: self.peer().to_string(),
        }
    }

    /// Counts a tell refused because its node cannot be reached (asks are not tells).
    fn count_tell(
        &self,
        sent: Result<(), SendError<ErasedMessage>>,
    ) -> Result<(), SendError<ErasedMessage>> {
        if let (Err(SendError::Unreachable { .. }), Some(node)) = (&sent, self.node.upgrade()) {
            Counters::add(&node.counters.tells_dropped, 1);
        }
        sent
    }

    fn refused(&self, e: LinkSendError, msg: ErasedMessage) -> SendError<ErasedMessage> {
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

    fn tell(&self, msg: ErasedMessage) -> BoxFuture<'_, Result<(), SendError<ErasedMessage>>> {
        Box::pin(async move {
            let sent = match self.encode(msg) {
                Ok((msg, outbound, body, link)) => link
                    .tell(&self.name, outbound.tag, body)
                    .await
                    .map_err(|e| self.refused(e, msg)),
                Err(e) => Err(e),
            };
            self.count_tell(sent)
        })
    }

    fn try_tell(&self, msg: ErasedMessage) -> Result<(), SendError<ErasedMessage>> {
        let sent = self.encode(msg).and_then(|(msg, outbound, body, link)| {
            link.try_tell(&self.name, outbound.tag, body)
                .map_err(|e| self.refused(e, msg))
        });
        self.count_tell(sent)
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
            let (msg, outbound, body, link) = self.encode(msg)?;
            let pending = match link.send_ask(&self.name, outbound.tag, body).await {
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
