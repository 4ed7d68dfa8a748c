//! The user service: registers customers and tells the others who they are.
//!
//! Registration checks the e-mail address and refuses one already registered (in any
//! letter case), then publishes `user.registered`.

use actor_core::policy::Idempotent;
use actor_core::{Actor, BoxError, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use rusqlite::{ErrorCode, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::events::{self, UserRegistered};
use crate::services::{Env, Service};
use crate::storage::{CachedSql, Db, StorageError, unix_now};

/// The user service actor.
#[derive(Debug)]
pub struct Users {
    db: Db,
}

/// A registered customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Assigned at registration.
    pub id: u64,
    /// Unique, compared without regard to letter case.
    pub email: String,
    /// As given, trimmed.
    pub name: String,
}

/// Registers a customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Register {
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
}

/// Finds a customer by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetUser {
    /// The id.
    pub id: u64,
}

/// Checks that a customer may place an order, and says where to mail them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateUser {
    /// The id.
    pub id: u64,
}

/// Why a user request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum UserError {
    /// The e-mail address is not one.
    #[error("{0:?} is not a valid e-mail address")]
    InvalidEmail(String),
    /// The name is empty, too long or has control characters.
    #[error("the name must be 1 to 100 printable characters")]
    InvalidName,
    /// Someone registered this address already.
    #[error("{0} is already registered")]
    EmailTaken(String),
    /// No user has this id.
    #[error("no user with id {0}")]
    NotFound(u64),
    /// The service could not read or write its data (details are in its log).
    #[error("the user service failed to store or read data")]
    Internal,
}

impl Message for Register {
    type Reply = Result<User, UserError>;
}
impl Message for GetUser {
    type Reply = Result<User, UserError>;
}
impl Message for ValidateUser {
    type Reply = Result<User, UserError>;
}
// Reads may be repeated; registering twice would answer "taken" the second time.
impl Idempotent for GetUser {}
impl Idempotent for ValidateUser {}
impl RemoteMessage for Register {
    const TAG: &'static str = "shop.users.register.v1";
}
impl RemoteMessage for GetUser {
    const TAG: &'static str = "shop.users.get.v1";
}
impl RemoteMessage for ValidateUser {
    const TAG: &'static str = "shop.users.validate.v1";
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);";

impl Service for Users {
    const NAME: &'static str = "users";
    fn new(env: &Env) -> Self {
        Users {
            db: Db::new(env.storage.clone(), Self::NAME, SCHEMA),
        }
    }
}

impl RemoteActor for Users {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<Register>()
            .message::<GetUser>()
            .message::<ValidateUser>();
    }
}

impl Actor for Users {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.db.open()?;
        Ok(())
    }
}

impl Handler<Register> for Users {
    async fn handle(&mut self, msg: Register, ctx: &mut Context<Self>) -> Result<User, UserError> {
        let user = self.register(msg)?;
        let event = UserRegistered {
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
        };
        events::publish(ctx.system(), &events::user_registered(), event).await;
        tracing::info!(user = user.id, "user registered");
        Ok(user)
    }
}

impl Handler<GetUser> for Users {
    async fn handle(&mut self, msg: GetUser, _ctx: &mut Context<Self>) -> Result<User, UserError> {
        self.find(msg.id)
    }
}

impl Handler<ValidateUser> for Users {
    async fn handle(
        &mut self,
        msg: ValidateUser,
        _: &mut Context<Self>,
    ) -> Result<User, UserError> {
        // Every registered user may order; a blocked-user rule would go here.
        self.find(msg.id)
    }
}

impl Users {
    fn register(&mut self, msg: Register) -> Result<User, UserError> {
        let email = valid_email(&msg.email)?;
        let name = valid_name(&msg.name)?;
        let db = self.db.conn()?;
        let inserted = db.execute_cached(
            "INSERT INTO users (email, name, created_at) VALUES (?1, ?2, ?3)",
            params![email, name, unix_now()],
        );
        match inserted {
            Ok(_) => Ok(User {
                id: db.last_insert_rowid().unsigned_abs(),
                email,
                name,
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                Err(UserError::EmailTaken(email))
            }
            Err(e) => Err(StorageError::from(e).into()),
        }
    }

    fn find(&mut self, id: u64) -> Result<User, UserError> {
        self.db
            .conn()?
            .query_row_cached(
                "SELECT id, email, name FROM users WHERE id = ?1",
                [id],
                |row| {
                    Ok(User {
                        id: row.get(0)?,
                        email: row.get(1)?,
                        name: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(StorageError::from)?
            .ok_or(UserError::NotFound(id))
    }
}

/// A plausible address: one `@`, a local part, a dotted domain, no spaces, at most 254 bytes.
fn valid_email(raw: &str) -> Result<String, UserError> {
    let email = raw.trim();
    let invalid = || UserError::InvalidEmail(email.chars().take(100).collect());
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    let ok = email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain_ok
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email.to_owned())
    } else {
        Err(invalid())
    }
}

fn valid_name(raw: &str) -> Result<String, UserError> {
    let name = raw.trim();
    let count = name.chars().count();
    if (1..=100).contains(&count) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(UserError::InvalidName)
    }
}

impl From<StorageError> for UserError {
    fn from(e: StorageError) -> Self {
        tracing::error!(service = Users::NAME, error = %e, "storage failure");
        UserError::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses_pass_trimmed() {
        assert_eq!(
            valid_email(" ada@example.com ").as_deref(),
            Ok("ada@example.com")
        );
        assert!(valid_email("a.b+tag@mail.example.org").is_ok());
    }

    #[test]
    fn implausible_addresses_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@example..com",
            "ada@-example.com",
        ] {
            assert!(valid_email(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(valid_name("  Ada ").as_deref(), Ok("Ada"));
        assert_eq!(valid_name("   "), Err(UserError::InvalidName));
        assert_eq!(valid_name(&"x".repeat(101)), Err(UserError::InvalidName));
    }
}
