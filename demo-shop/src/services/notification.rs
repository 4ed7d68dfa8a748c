//! The notification service: records the e-mails the shop would send.
//!
//! A welcome on `user.registered`, a confirmation on `order.created`, an apology on
//! `order.failed`. Nothing is sent; the mails are kept in its database to be read back.

use actor_core::policy::Idempotent;
use actor_core::{Actor, BoxError, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::events::{self, OrderCreated, OrderFailed, UserRegistered};
use crate::services::{Env, Service, money};
use crate::storage::{CachedSql, Db, StorageError, unix_now};

/// The notification service actor.
#[derive(Debug)]
pub struct Notifications {
    db: Db,
}

/// An e-mail the shop would have sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// Increasing with time.
    pub id: u64,
    /// The recipient's address.
    pub to: String,
    /// Why it was written.
    pub kind: MailKind,
    /// Subject line.
    pub subject: String,
    /// Text.
    pub body: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// Why a mail was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// After `user.registered`.
    Welcome,
    /// After `order.created`.
    OrderConfirmed,
    /// After `order.failed`.
    OrderFailed,
}

/// The most recent mails, newest first, optionally only those to one address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListMails {
    /// Only mails to this address (compared without regard to letter case).
    pub to: Option<String>,
    /// At most this many (capped at [`MAX_LIST`]).
    pub limit: u32,
}

/// The most mails one [`ListMails`] returns.
pub const MAX_LIST: u32 = 500;

/// Why notifications could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum NotificationError {
    /// The service could not read its data (details are in its log).
    #[error("the notification service failed to read its data")]
    Internal,
}

impl Message for ListMails {
    type Reply = Result<Vec<Mail>, NotificationError>;
}
impl Idempotent for ListMails {}
impl RemoteMessage for ListMails {
    const TAG: &'static str = "shop.notifications.list.v1";
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS mails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    to_addr TEXT NOT NULL COLLATE NOCASE,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mails_to ON mails (to_addr);";

impl Service for Notifications {
    const NAME: &'static str = "notifications";
    fn new(env: &Env) -> Self {
        Notifications {
            db: Db::new(env.storage.clone(), Self::NAME, SCHEMA),
        }
    }
}

impl RemoteActor for Notifications {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<ListMails>();
    }
}

impl Actor for Notifications {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.db.open()?;
        events::subscribe_to_all(ctx);
        Ok(())
    }
}

impl Handler<UserRegistered> for Notifications {
    async fn handle(&mut self, event: UserRegistered, _: &mut Context<Self>) {
        let body = format!(
            "Hello {}, welcome to the demo shop! Your customer number is {}.",
            event.name, event.user_id
        );
        self.record(
            &event.email,
            MailKind::Welcome,
            "Welcome to the demo shop",
            &body,
        );
    }
}

impl Handler<OrderCreated> for Notifications {
    async fn handle(&mut self, event: OrderCreated, _: &mut Context<Self>) {
        let subject = format!("Order {} confirmed", event.order_id);
        let body = format!(
            "Thank you! Your order {} of {} item(s) is confirmed; we charged {}.",
            event.order_id,
            event.items,
            money(event.total_cents)
        );
        self.record(&event.email, MailKind::OrderConfirmed, &subject, &body);
    }
}

impl Handler<OrderFailed> for Notifications {
    async fn handle(&mut self, event: OrderFailed, _: &mut Context<Self>) {
        let subject = format!("Order {} could not be completed", event.order_id);
        let body = format!(
            "We are sorry: your order {} could not be completed because {}. \
             Nothing was charged, or the charge was refunded.",
            event.order_id, event.reason
        );
        self.record(&event.email, MailKind::OrderFailed, &subject, &body);
    }
}

impl Handler<ListMails> for Notifications {
    async fn handle(
        &mut self,
        msg: ListMails,
        _: &mut Context<Self>,
    ) -> Result<Vec<Mail>, NotificationError> {
        self.list(msg).map_err(|e| {
            tracing::error!(service = Self::NAME, error = %e, "storage failure");
            NotificationError::Internal
        })
    }
}

impl Notifications {
    /// Stores a mail. One that cannot be stored is logged: the event is not redelivered.
    fn record(&mut self, to: &str, kind: MailKind, subject: &str, body: &str) {
        let result = self.db.conn().and_then(|db| {
            db.execute_cached(
                "INSERT INTO mails (to_addr, kind, subject, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![to, kind.as_str(), subject, body, unix_now()],
            )?;
            Ok(())
        });
        match result {
            Ok(()) => tracing::debug!(to, ?kind, "mail recorded"),
            Err(e) => tracing::error!(service = Self::NAME, error = %e, "mail not recorded"),
        }
    }

    fn list(&mut self, msg: ListMails) -> Result<Vec<Mail>, StorageError> {
        let db = self.db.conn()?;
        let mut stmt = db.prepare_cached(
            "SELECT id, to_addr, kind, subject, body, created_at FROM mails
             WHERE ?1 IS NULL OR to_addr = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![msg.to, msg.limit.min(MAX_LIST)], |row| {
            Ok(Mail {
                id: row.get(0)?,
                to: row.get(1)?,
                kind: MailKind::parse(row.get_ref(2)?.as_str()?),
                subject: row.get(3)?,
                body: row.get(4)?,
                created_at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl MailKind {
    fn as_str(self) -> &'static str {
        match self {
            MailKind::Welcome => "welcome",
            MailKind::OrderConfirmed => "order_confirmed",
            MailKind::OrderFailed => "order_failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "welcome" => MailKind::Welcome,
            "order_confirmed" => MailKind::OrderConfirmed,
            _ => MailKind::OrderFailed,
        }
    }
}
