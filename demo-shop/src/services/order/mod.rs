//! The order service: places orders through a saga, and keeps them.
//!
//! Placing an order first checks the request (the user, the products and their prices); a
//! request that fails these checks changes nothing. Then the order is stored `PENDING` and
//! the saga runs: reserve stock, charge payment, confirm. A failing step undoes the steps
//! before it (release the stock, refund) and the order ends `FAILED` with a reason a person
//! understands. An undo that cannot run now is stored and retried until it succeeds.
//!
//! With an idempotency key, placing the same request again returns the first result and
//! does nothing else; the same key with a different request is refused. Every step is keyed
//! by order id, so nothing is charged twice even when a reply was lost.
//!
//! One order is placed at a time: the actor handles one message at a time, which is what
//! makes the idempotency check and the saga's steps trivially race-free.

mod saga;
mod store;

use std::time::Duration;

use actor_core::policy::Idempotent;
use actor_core::{Actor, ActorSystem, BoxError, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

use crate::call::Calls;
use crate::events::{self, OrderCreated, OrderFailed};
use crate::services::product::{Line, PricedLine};
use crate::services::{Env, Service};
use crate::storage::{Db, StorageError};

use saga::{Compensation, Saga};

/// The card charged when an order names none.
pub const DEFAULT_CARD: &str = "4242424242424242";
/// The most lines one order may have.
pub const MAX_LINES: usize = 50;
/// How often undos that could not run are tried again.
const RETRY_UNDO_EVERY: Duration = Duration::from_secs(5);

/// The order service actor.
#[derive(Debug)]
pub struct Orders {
    db: Db,
    calls: Calls,
}

/// Places an order for `user_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaceOrder {
    /// Repeating a request with the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// Who orders.
    pub user_id: u64,
    /// What; several lines for one product are added up.
    pub lines: Vec<Line>,
    /// Card number (spaces and dashes allowed); default [`DEFAULT_CARD`].
    pub card: Option<String>,
}

/// The order a [`PlaceOrder`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// The order, `CONFIRMED` or `FAILED`.
    pub order: Order,
    /// Whether this is the stored result of an earlier request with the same key.
    pub replayed: bool,
}

/// Finds an order by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetOrder {
    /// The id.
    pub id: u64,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Assigned when the request passed its checks.
    pub id: u64,
    /// Who ordered.
    pub user_id: u64,
    /// Where it stands.
    pub status: OrderStatus,
    /// What was ordered, at the prices quoted.
    pub lines: Vec<PricedLine>,
    /// The amount charged (or that would have been), in cents.
    pub total_cents: u64,
    /// What kind of failure, when `FAILED`.
    pub failure: Option<FailureCode>,
    /// Why it failed, for a person, when `FAILED`.
    pub reason: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// The saga is running.
    Pending,
    /// Stock reserved and payment taken.
    Confirmed,
    /// A step failed; what was done is undone.
    Failed,
}

/// What kind of failure ended an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// Not enough stock.
    OutOfStock,
    /// The payment was declined.
    PaymentDeclined,
    /// A service the saga needed did not answer.
    ServiceUnavailable,
    /// The order service restarted while the order was pending.
    Interrupted,
}

/// Why a request was refused before an order was made (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum OrderError {
    /// The request is malformed; the text says how.
    #[error("{0}")]
    InvalidInput(String),
    /// No user has this id.
    #[error("there is no user with id {0}")]
    UnknownUser(u64),
    /// No product has this id.
    #[error("there is no product {0:?}")]
    UnknownProduct(String),
    /// The idempotency key was used before for a different request.
    #[error("this idempotency key was used for a different order")]
    KeyReused,
    /// A service the checks needed did not answer; the text names it.
    #[error("{0}")]
    Unavailable(String),
    /// No order has this id.
    #[error("there is no order with id {0}")]
    NotFound(u64),
    /// The service could not read or write its data (details are in its log).
    #[error("the order service failed to store or read data")]
    Internal,
}

/// Tries again the undos that could not run (sent by the actor's own timer).
#[derive(Debug)]
pub struct RetryUndos;

impl Message for PlaceOrder {
    type Reply = Result<Placed, OrderError>;
}
impl Message for GetOrder {
    type Reply = Result<Order, OrderError>;
}
impl Message for RetryUndos {
    type Reply = ();
}
// Placing is not repeated blindly: the idempotency key makes a repeat safe, not the message.
impl Idempotent for GetOrder {}
impl RemoteMessage for PlaceOrder {
    const TAG: &'static str = "shop.orders.place.v1";
}
impl RemoteMessage for GetOrder {
    const TAG: &'static str = "shop.orders.get.v1";
}

impl Service for Orders {
    const NAME: &'static str = "orders";
    fn new(env: &Env) -> Self {
        Orders {
            db: Db::new(env.storage.clone(), Self::NAME, store::SCHEMA),
            calls: env.calls.clone(),
        }
    }
}

impl RemoteActor for Orders {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<PlaceOrder>().message::<GetOrder>();
    }
}

impl Actor for Orders {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let db = self.db.open()?;
        // A pending order here was cut off by a crash or restart: fail it and undo its steps.
        for (order, email) in store::interrupt_pending(db)? {
            tracing::warn!(order = order.id, "pending order interrupted by a restart");
            publish_outcome(ctx.system(), &order, &email).await;
        }
        ctx.send_interval(RETRY_UNDO_EVERY, || RetryUndos);
        Ok(())
    }
}

impl Handler<PlaceOrder> for Orders {
    async fn handle(
        &mut self,
        msg: PlaceOrder,
        ctx: &mut Context<Self>,
    ) -> Result<Placed, OrderError> {
        let system = ctx.system().clone();
        let saga = Saga::new(&system, self.calls.clone());
        self.place(&saga, msg).await
    }
}

impl Handler<GetOrder> for Orders {
    async fn handle(&mut self, msg: GetOrder, _: &mut Context<Self>) -> Result<Order, OrderError> {
        store::get(self.db.conn()?, msg.id)?.ok_or(OrderError::NotFound(msg.id))
    }
}

impl Handler<RetryUndos> for Orders {
    async fn handle(&mut self, _: RetryUndos, ctx: &mut Context<Self>) {
        let Ok(pending) = self.db.conn().and_then(|db| store::pending_undos(db)) else {
            return;
        };
        let saga = Saga::new(ctx.system(), self.calls.clone());
        // A step that fails now fails for every order: retry that kind next round.
        let mut failing = Vec::new();
        for (order_id, step) in pending {
            if failing.contains(&step) {
                continue;
            }
            if !saga.run(step, order_id).await {
                failing.push(step);
                continue;
            }
            tracing::info!(order = order_id, ?step, "undo done on retry");
            if let Err(e) = self
                .db
                .conn()
                .and_then(|db| store::undo_done(db, order_id, step))
            {
                tracing::error!(error = %e, "undo not recorded as done");
            }
        }
    }
}

impl Orders {
    async fn place(&mut self, saga: &Saga<'_>, msg: PlaceOrder) -> Result<Placed, OrderError> {
        let request = saga::Request::check(msg)?;
        if let Some(key) = &request.key {
            if let Some((fingerprint, order)) = store::by_key(self.db.conn()?, key)? {
                return if fingerprint == request.fingerprint() {
                    Ok(Placed {
                        order,
                        replayed: true,
                    })
                } else {
                    Err(OrderError::KeyReused)
                };
            }
        }
        let (user, quote) = saga.validate(&request).await?;
        let id = store::insert_pending(self.db.conn()?, &request, &user.email, &quote)?;
        let outcome = saga.execute(id, &request, &quote).await;
        let order = match store::finish(self.db.conn()?, id, &outcome) {
            Ok(order) => order,
            Err(e) => {
                // Nothing may stay charged for an order we cannot record.
                saga.undo(id, &[Compensation::Release, Compensation::Refund])
                    .await;
                return Err(e.into());
            }
        };
        publish_outcome(saga.system(), &order, &user.email).await;
        match &order.reason {
            Some(reason) => tracing::info!(order = order.id, %reason, "order failed"),
            None => tracing::debug!(order = order.id, "order confirmed"),
        }
        Ok(Placed {
            order,
            replayed: false,
        })
    }
}

/// Publishes `order.created` or `order.failed` for a finished order.
async fn publish_outcome(system: &ActorSystem, order: &Order, email: &str) {
    match order.status {
        OrderStatus::Confirmed => {
            let items = order.lines.iter().map(|l| u64::from(l.quantity)).sum();
            let event = OrderCreated {
                order_id: order.id,
                user_id: order.user_id,
                email: email.to_owned(),
                items,
                total_cents: order.total_cents,
            };
            events::publish(system, &events::order_created(), event).await;
        }
        OrderStatus::Failed => {
            let event = OrderFailed {
                order_id: order.id,
                user_id: order.user_id,
                email: email.to_owned(),
                reason: order.reason.clone().unwrap_or_default(),
            };
            events::publish(system, &events::order_failed(), event).await;
        }
        OrderStatus::Pending => {}
    }
}

impl From<StorageError> for OrderError {
    fn from(e: StorageError) -> Self {
        tracing::error!(service = Orders::NAME, error = %e, "storage failure");
        OrderError::Internal
    }
}
