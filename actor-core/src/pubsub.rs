//! Local typed publish/subscribe.
//!
//! A [`Topic<T>`] is a name bound to one message type. Actors subscribe through a
//! [`Recipient<T>`]; a publish tells a clone of the message to every live subscriber, in
//! subscription order. A subscriber that has stopped for good is dropped from the topic at
//! the next publish. The cluster layer extends the same topics across nodes.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use dashmap::DashMap;

use crate::actor::Message;
use crate::error::SendError;
use crate::id::ActorId;
use crate::recipient::Recipient;

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
}

/// The topics of one actor system.
#[derive(Default)]
pub struct PubSub {
    topics: DashMap<Arc<str>, Subscribers>,
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
            });
        match entry.list.downcast_mut::<Vec<Recipient<T>>>() {
            Some(list) => {
                if !list.contains(&subscriber) {
                    list.push(subscriber);
                }
                true
            }
            None => false,
        }
    }

    /// Removes the actor `id` from `topic`.
    pub fn unsubscribe<T: Message<Reply = ()> + Clone>(&self, topic: &Topic<T>, id: ActorId) {
        if let Some(mut entry) = self.topics.get_mut(&*topic.name) {
            if let Some(list) = entry.list.downcast_mut::<Vec<Recipient<T>>>() {
                list.retain(|r| r.id() != id);
            }
        }
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

    /// Tells a clone of `msg` to every subscriber of `topic`, waiting for mailbox room, and
    /// returns how many received it. Subscribers that have stopped are removed.
    pub async fn publish<T>(&self, topic: &Topic<T>, msg: T) -> usize
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
