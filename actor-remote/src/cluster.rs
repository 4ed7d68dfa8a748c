//! The cluster registry: which names and topics live on which node.
//!
//! Each node owns its own entries and announces them, whole, to every peer it is connected
//! to: when the link comes up and whenever they change (a name served or withdrawn, a
//! topic's first subscriber or last one gone). A peer's announcement replaces the previous
//! one; when the membership declares a node down or left, its entries vanish. Look-ups read
//! this table, so they cost no round trip.

use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering};

use actor_core::remote::ErasedMessage;
use actor_core::{ActorSystem, Message, Topic};
use bytes::Bytes;
use dashmap::DashMap;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::codec::{CodecError, decode_body, encode_body};
use crate::message::RemoteMessage;

/// One node's registry, as sent in a `Control::Registry` frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Announcement {
    pub(crate) names: Vec<AnnouncedName>,
    pub(crate) topics: Vec<String>,
}

/// A name served by the announcing node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AnnouncedName {
    pub(crate) name: String,
    pub(crate) id: u64,
    /// The message tags it accepts (look-ups check the caller's type against them).
    pub(crate) tags: Vec<String>,
}

/// A name's instance on a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) node: String,
    /// The start of that node that announced it.
    pub(crate) incarnation: u64,
    pub(crate) id: u64,
    pub(crate) tags: Vec<String>,
}

/// What this node knows of its peers' names and topics.
#[derive(Default)]
pub(crate) struct Directory {
    /// Each peer's last announcement, with the incarnation of the node that sent it.
    by_node: DashMap<String, (u64, Announcement)>,
    /// Round-robin position per group name.
    cursor: DashMap<String, AtomicUsize>,
}

impl Directory {
    /// Replaces what `node` serves with `announcement`.
    pub(crate) fn apply(&self, node: &str, incarnation: u64, announcement: Announcement) {
        self.by_node
            .insert(node.to_string(), (incarnation, announcement));
    }

    /// Forgets everything of `node` (down, or left).
    pub(crate) fn remove_node(&self, node: &str) {
        self.by_node.remove(node);
    }

    /// The instances of `name` on peers, sorted by node.
    pub(crate) fn instances(&self, name: &str) -> Vec<Instance> {
        let mut found: Vec<Instance> = self
            .by_node
            .iter()
            .flat_map(|entry| {
                let node = entry.key().clone();
                let (incarnation, announcement) = entry.value();
                announcement
                    .names
                    .iter()
                    .filter(|n| n.name == name)
                    .map(|n| Instance {
                        node: node.clone(),
                        incarnation: *incarnation,
                        id: n.id,
                        tags: n.tags.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        found.sort_by(|a, b| a.node.cmp(&b.node));
        found
    }

    /// The next instance of `name` in round-robin order among those `usable`.
    pub(crate) fn pick(&self, name: &str, usable: impl Fn(&Instance) -> bool) -> Option<Instance> {
        let live: Vec<Instance> = self.instances(name).into_iter().filter(usable).collect();
        if live.is_empty() {
            return None;
        }
        let turn = self
            .cursor
            .entry(name.to_string())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
        let n = live.len();
        live.into_iter().nth(turn % n)
    }

    /// The peers with subscribers to `topic`.
    pub(crate) fn nodes_with_topic(&self, topic: &str) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .by_node
            .iter()
            .filter(|e| e.value().1.topics.iter().any(|t| t == topic))
            .map(|e| e.key().clone())
            .collect();
        nodes.sort();
        nodes
    }

    /// Every peer's names, for `/cluster`-style views: (name, node) pairs sorted.
    pub(crate) fn placements(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .by_node
            .iter()
            .flat_map(|e| {
                let node = e.key().clone();
                e.value()
                    .1
                    .names
                    .iter()
                    .map(|n| (n.name.clone(), node.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all
    }
}

/// Decodes a topic message and publishes it to this node's subscribers.
pub(crate) type DeliverFn =
    for<'a> fn(&'a ActorSystem, &'a str, &'a [u8]) -> BoxFuture<'a, Result<usize, CodecError>>;

/// How one topic's messages cross nodes.
pub(crate) struct TopicCodec {
    pub(crate) tag: &'static str,
    pub(crate) type_id: TypeId,
    pub(crate) encode: fn(&ErasedMessage) -> Result<Bytes, CodecError>,
    /// Decodes and publishes to this node's subscribers.
    pub(crate) deliver: DeliverFn,
}

impl TopicCodec {
    pub(crate) fn of<T>() -> TopicCodec
    where
        T: RemoteMessage + Message<Reply = ()> + Clone,
    {
        TopicCodec {
            tag: T::TAG,
            type_id: TypeId::of::<T>(),
            encode: encode_topic::<T>,
            deliver: deliver_topic::<T>,
        }
    }
}

fn encode_topic<T: RemoteMessage>(msg: &ErasedMessage) -> Result<Bytes, CodecError> {
    match msg.value.downcast_ref::<T>() {
        Some(m) => encode_body(m),
        None => Err(CodecError::BodyEncode(
            bincode::error::EncodeError::OtherString(format!(
                "topic carries {}, got {}",
                std::any::type_name::<T>(),
                msg.type_name
            )),
        )),
    }
}

fn deliver_topic<'a, T>(
    system: &'a ActorSystem,
    topic: &'a str,
    body: &'a [u8],
) -> BoxFuture<'a, Result<usize, CodecError>>
where
    T: RemoteMessage + Message<Reply = ()> + Clone,
{
    let decoded = decode_body::<T>(body);
    Box::pin(async move {
        let msg = decoded?;
        Ok(system
            .pubsub()
            .publish_local(&Topic::<T>::new(topic), msg)
            .await)
    })
}
