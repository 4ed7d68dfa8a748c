//! The shop's events and their topics.
//!
//! Events go through the framework's pub/sub: a publish reaches every subscriber of the topic
//! on this node and, once the node's transport carries the topic, on the others. Each event
//! is also a [`RemoteMessage`] with a stable tag, so it can cross nodes.
//!
//! | topic | published by | subscribed by |
//! | --- | --- | --- |
//! | `user.registered` | users | analytics, notifications (welcome mail) |
//! | `order.created` | orders, when an order is confirmed | analytics, notifications (confirmation) |
//! | `order.failed` | orders, when an order ends `FAILED` | analytics, notifications (apology) |

use actor_core::{Actor, ActorSystem, Context, Handler, Message, Topic};
use actor_remote::RemoteMessage;
use serde::{Deserialize, Serialize};

/// Name of the topic of [`UserRegistered`].
pub const USER_REGISTERED: &str = "user.registered";
/// Name of the topic of [`OrderCreated`].
pub const ORDER_CREATED: &str = "order.created";
/// Name of the topic of [`OrderFailed`].
pub const ORDER_FAILED: &str = "order.failed";

/// A customer registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The new user's id.
    pub user_id: u64,
    /// Their e-mail address.
    pub email: String,
    /// Their name.
    pub name: String,
}

/// An order was confirmed: stock reserved and payment taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The order's id.
    pub order_id: u64,
    /// Who placed it.
    pub user_id: u64,
    /// Where to send the confirmation.
    pub email: String,
    /// How many items it holds.
    pub items: u64,
    /// What was charged, in cents.
    pub total_cents: u64,
}

/// An order ended `FAILED`; whatever had been done for it was undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFailed {
    /// The order's id.
    pub order_id: u64,
    /// Who placed it.
    pub user_id: u64,
    /// Where to send the apology.
    pub email: String,
    /// Why it failed, for a person.
    pub reason: String,
}

impl Message for UserRegistered {
    type Reply = ();
}
impl Message for OrderCreated {
    type Reply = ();
}
impl Message for OrderFailed {
    type Reply = ();
}
impl RemoteMessage for UserRegistered {
    const TAG: &'static str = "shop.events.user_registered.v1";
}
impl RemoteMessage for OrderCreated {
    const TAG: &'static str = "shop.events.order_created.v1";
}
impl RemoteMessage for OrderFailed {
    const TAG: &'static str = "shop.events.order_failed.v1";
}

/// The `user.registered` topic.
pub fn user_registered() -> Topic<UserRegistered> {
    Topic::new(USER_REGISTERED)
}

/// The `order.created` topic.
pub fn order_created() -> Topic<OrderCreated> {
    Topic::new(ORDER_CREATED)
}

/// The `order.failed` topic.
pub fn order_failed() -> Topic<OrderFailed> {
    Topic::new(ORDER_FAILED)
}

/// Publishes `event` on `topic` and counts it in `shop_events_published_total{topic}`.
pub(crate) async fn publish<T>(system: &ActorSystem, topic: &Topic<T>, event: T)
where
    T: Message<Reply = ()> + Clone,
{
    let delivered = system.pubsub().publish(topic, event).await;
    metrics::counter!("shop_events_published_total", "topic" => topic.name().to_owned())
        .increment(1);
    tracing::debug!(topic = topic.name(), delivered, "event published");
}

/// Subscribes the actor of `ctx` to every shop event (user registered, order created, order
/// failed), as the services that record them do.
pub(crate) fn subscribe_to_all<A>(ctx: &Context<A>)
where
    A: Actor + Handler<UserRegistered> + Handler<OrderCreated> + Handler<OrderFailed>,
{
    let pubsub = ctx.system().pubsub();
    pubsub.subscribe(&user_registered(), ctx.myself().recipient());
    pubsub.subscribe(&order_created(), ctx.myself().recipient());
    pubsub.subscribe(&order_failed(), ctx.myself().recipient());
}
