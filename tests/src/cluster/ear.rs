//! [`Ear`]: a topic subscriber that records what it hears, and the topic message it hears.

use std::sync::{Arc, Mutex, PoisonError};

use actor_core::{Actor, Context, Handler, Message};
use actor_remote::RemoteMessage;
use serde::{Deserialize, Serialize};

/// The message of the test topics (`"order.created"` and the like): an order number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated(pub u64);

impl Message for OrderCreated {
    type Reply = ();
}

impl RemoteMessage for OrderCreated {
    const TAG: &'static str = "tests.cluster.order_created.v1";
}

/// One message one ear heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    /// Which ear of its node heard it (ears are numbered from 0 in subscription order).
    pub ear: usize,
    /// The topic it came on.
    pub topic: String,
    /// The order number it carried.
    pub order: u64,
}

/// What the ears of one node have heard, in the order they heard it; shared by the ears and
/// whoever reads it.
#[derive(Debug, Clone, Default)]
pub struct HeardLog(Arc<Mutex<Vec<Heard>>>);

impl HeardLog {
    /// Everything heard so far.
    pub fn snapshot(&self) -> Vec<Heard> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, heard: Heard) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(heard);
    }
}

/// Subscribed to one topic; writes each [`OrderCreated`] it hears into a [`HeardLog`].
#[derive(Debug)]
pub struct Ear {
    ear: usize,
    topic: String,
    log: HeardLog,
}

impl Ear {
    /// Ear number `ear` of its node, to be subscribed to `topic`, writing into `log`.
    pub fn new(ear: usize, topic: impl Into<String>, log: HeardLog) -> Self {
        Ear {
            ear,
            topic: topic.into(),
            log,
        }
    }
}

impl Actor for Ear {}

impl Handler<OrderCreated> for Ear {
    async fn handle(&mut self, msg: OrderCreated, _ctx: &mut Context<Self>) {
        self.log.push(Heard {
            ear: self.ear,
            topic: self.topic.clone(),
            order: msg.0,
        });
    }
}
