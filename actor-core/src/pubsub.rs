//! Typed publish/subscribe.
//!
//! A [`Topic<T>`] is a name bound to one message type. Actors subscribe through a
//! [`Recipient<T>`]; a publish tells a clone of the message to every live subscriber of this
//! node, in subscription order. A subscriber that has stopped for good is dropped from the
//! topic at the next publish. A transport crate extends the same topics across nodes through
//! [`RemotePublish`]: the same `publish` call then also reaches other nodes' subscribers, and
//! the calling code does not change.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use dashmap::DashMap;
use futures::future::BoxFuture;

use crate::actor::Message;
use crate::error::SendError;
use crate::id::ActorId;
use crate::recipient::Recipient;
use crate::remote::ErasedMessage;

/// A named, typed topic: `Topic::<OrderCreated>::new("order.created")`.
pub struct Topic<T> {
    name: Arc<str>,
    _type: PhantomData<fn(T)>,
}

impl<T> Topic<T> {
    /// The topic called `name`, carrying `T`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            _type: PhantomData,
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Topic({})", self.name)
    }
}

/// The subscribers of one topic, typed as `Vec<Recipient<T>>` behind `Any`.
struct Subscribers {
    list: Box<dyn Any + Send + Sync>,
    /// Reads the length without knowing `T`.
    len: fn(&(dyn Any + Send + Sync)) -> usize,
}

impl Subscribers {
    fn list_len(&self) -> usize {
        (self.len)(self.list.as_ref())
    }
}

fn typed_len<T: Message<Reply = ()> + Clone>(list: &(dyn Any + Send + Sync)) -> usize {
    list.downcast_ref::<Vec<Recipient<T>>>().map_or(0, Vec::len)
}

/// Delivery of publishes to other nodes (installed by a transport crate).
pub trait RemotePublish: Send + Sync + 'static {
    /// Sends `msg`, published on `topic` here, to the other nodes with subscribers; returns
    /// how many nodes it was sent to.
    fn publish(&self, topic: &str, msg: ErasedMessage) -> BoxFuture<'_, usize>;
    /// Called when this node's first subscriber to `topic` arrives or its last one goes.
    fn subscribers_changed(&self, topic: &str, has_local: bool);
}

/// The topics of one actor system.
#[derive(Default)]
pub struct PubSub {
    topics: DashMap<Arc<str>, Subscribers>,
    remote: std::sync::OnceLock<Arc<dyn RemotePublish>>,
}

impl PubSub {
    /// Subscribes `subscriber` to `topic`; subscribing the same actor twice has no effect.
    /// Returns `false` (and subscribes nothing) when the topic's name is already in use for
    /// another message type.
    pub fn subscribe<T>(&self, topic: &Topic<T>, subscriber: Recipient<T>) -> bool
    where
        T: Message<Reply = ()> + Clone,
    {
        let mut entry = self
            .topics
            .entry(Arc::clone(&topic.name))
            .or_insert_with(|| Subscribers {
                list: Box::new(Vec::<Recipient<T>>::new()),
                len: typed_len::<T>,
            });
        let first = match entry.list.downcast_mut::<Vec<Recipient<T>>>() {
            Some(list) => {
                let first = list.is_empty();
                if !list.contains(&subscriber) {
                    list.push(subscriber);
                }
                first
            }
            None => return false,
        };
        drop(entry);
        if first {
            if let Some(remote) = self.remote.get() {
                remote.subscribers_changed(&topic.name, true);
            }
        }
        true
    }

    /// Removes the actor `id` from `topic`.
    pub fn unsubscribe<T: Message<Reply = ()> + Clone>(&self, topic: &Topic<T>, id: ActorId) {
        let mut emptied = false;
        if let Some(mut entry) = self.topics.get_mut(&*topic.name) {
            if let Some(list) = entry.list.downcast_mut::<Vec<Recipient<T>>>() {
                let before = list.len();
                list.retain(|r| r.id() != id);
                emptied = before > 0 && list.is_empty();
            }
        }
        if emptied {
            if let Some(remote) = self.remote.get() {
                remote.subscribers_changed(&topic.name, false);
            }
        }
    }

    /// Names of the topics that have subscribers on this node.
    pub fn local_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .topics
            .iter()
            .filter(|e| e.list_len() > 0)
            .map(|e| e.key().to_string())
            .collect();
        names.sort();
        names
    }

    /// Installs delivery to other nodes. Only the first call has an effect; returns whether
    /// this one did.
    pub fn set_remote(&self, remote: Arc<dyn RemotePublish>) -> bool {
        self.remote.set(remote).is_ok()
    }

    /// The live subscribers of `topic`.
    pub fn subscribers<T: Message<Reply = ()> + Clone>(
        &self,
        topic: &Topic<T>,
    ) -> Vec<Recipient<T>> {
        self.topics
            .get(&*topic.name)
            .and_then(|e| e.list.downcast_ref::<Vec<Recipient<T>>>().cloned())
            .unwrap_or_default()
    }

    /// Tells a clone of `msg` to every subscriber of `topic` on this node, waiting for
    /// mailbox room, and (with a transport installed) sends it once to every other node with
    /// subscribers. Returns how many local subscribers received it. Subscribers that have
    /// stopped are removed.
    pub async fn publish<T>(&self, topic: &Topic<T>, msg: T) -> usize
    where
        T: Message<Reply = ()> + Clone,
    {
        if let Some(remote) = self.remote.get() {
            remote
                .publish(&topic.name, ErasedMessage::new(msg.clone()))
                .await;
        }
        self.publish_local(topic, msg).await
    }

    /// Like [`publish`](Self::publish), to this node's subscribers only (a transport uses it
    /// to deliver what another node published).
    pub async fn publish_local<T>(&self, topic: &Topic<T>, msg: T) -> usize
    where
        T: Message<Reply = ()> + Clone,
    {
        let subscribers = self.subscribers(topic);
        let mut delivered = 0;
        let mut gone = Vec::new();
        for sub in &subscribers {
            match sub.tell(msg.clone()).await {
                Ok(()) => delivered += 1,
                Err(SendError::Stopped(_)) => gone.push(sub.id()),
                Err(e) => {
                    tracing::debug!(topic = %topic.name, subscriber = ?sub, error = %e, "publish not delivered");
                }
            }
        }
        for id in gone {
            self.unsubscribe(topic, id);
        }
        delivered
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub")
            .field("topics", &self.topics.len())
            .finish()
    }
}
