//! The analytics service: counts the shop's events.
//!
//! It subscribes to `user.registered`, `order.created` and `order.failed` when it starts
//! (again after a restart: a subscription follows the actor's ref, which a restart keeps) and
//! keeps its counts in its database.

use actor_core::policy::Idempotent;
use actor_core::{Actor, BoxError, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::events::{self, OrderCreated, OrderFailed, UserRegistered};
use crate::services::{Env, Service};
use crate::storage::{CachedSql, Db, StorageError};

/// The analytics service actor.
#[derive(Debug)]
pub struct Analytics {
    db: Db,
}

/// What analytics has counted since the shop's data was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `user.registered` events.
    pub users_registered: u64,
    /// `order.created` events.
    pub orders_created: u64,
    /// `order.failed` events.
    pub orders_failed: u64,
    /// Sum of the confirmed orders' totals, in cents.
    pub revenue_cents: u64,
}

/// Reads the counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetReport;

/// Why analytics could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AnalyticsError {
    /// The service could not read its data (details are in its log).
    #[error("the analytics service failed to read its data")]
    Internal,
}

impl Message for GetReport {
    type Reply = Result<Report, AnalyticsError>;
}
impl Idempotent for GetReport {}
impl RemoteMessage for GetReport {
    const TAG: &'static str = "shop.analytics.report.v1";
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);";

impl Service for Analytics {
    const NAME: &'static str = "analytics";
    fn new(env: &Env) -> Self {
        Analytics {
            db: Db::new(env.storage.clone(), Self::NAME, SCHEMA),
        }
    }
}

impl RemoteActor for Analytics {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<GetReport>();
    }
}

impl Actor for Analytics {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.db.open()?;
        events::subscribe_to_all(ctx);
        Ok(())
    }
}

impl Handler<UserRegistered> for Analytics {
    async fn handle(&mut self, _: UserRegistered, _: &mut Context<Self>) {
        self.add(&[("users_registered", 1)]);
    }
}

impl Handler<OrderCreated> for Analytics {
    async fn handle(&mut self, event: OrderCreated, _: &mut Context<Self>) {
        self.add(&[("orders_created", 1), ("revenue_cents", event.total_cents)]);
    }
}

impl Handler<OrderFailed> for Analytics {
    async fn handle(&mut self, _: OrderFailed, _: &mut Context<Self>) {
        self.add(&[("orders_failed", 1)]);
    }
}

impl Handler<GetReport> for Analytics {
    async fn handle(
        &mut self,
        _: GetReport,
        _: &mut Context<Self>,
    ) -> Result<Report, AnalyticsError> {
        self.report().map_err(|e| {
            tracing::error!(service = Self::NAME, error = %e, "storage failure");
            AnalyticsError::Internal
        })
    }
}

impl Analytics {
    /// Adds to counters. An event that cannot be counted is logged, not retried: counts are
    /// statistics, not records.
    fn add(&mut self, amounts: &[(&str, u64)]) {
        let result = self.db.conn().and_then(|db| {
            let tx = db.transaction()?;
            for (name, amount) in amounts {
                tx.execute_cached(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    params![name, amount],
                )?;
            }
            Ok(tx.commit()?)
        });
        if let Err(e) = result {
            tracing::error!(service = Self::NAME, error = %e, "event not counted");
        }
    }

    fn report(&mut self) -> Result<Report, StorageError> {
        let db = self.db.conn()?;
        let mut stmt = db.prepare_cached("SELECT name, value FROM counters")?;
        let mut rows = stmt.query([])?;
        let mut report = Report::default();
        while let Some(row) = rows.next()? {
            let value: u64 = row.get(1)?;
            match row.get_ref(0)?.as_str().unwrap_or_default() {
                "users_registered" => report.users_registered = value,
                "orders_created" => report.orders_created = value,
                "orders_failed" => report.orders_failed = value,
                "revenue_cents" => report.revenue_cents = value,
                _ => {}
            }
        }
        Ok(report)
    }
}
