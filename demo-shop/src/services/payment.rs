//! The payment service: charges and refunds, one of each at most per order.
//!
//! Both are keyed by order id: charging an order again returns the first outcome (a receipt
//! or the same decline) and never takes money twice; refunding again changes nothing. A
//! refund of an order never charged voids it, so a charge that arrives late is refused.
//!
//! Declines follow two rules a user can trigger on purpose:
//! - an amount over [`AMOUNT_LIMIT_CENTS`] (1000.00) per order;
//! - the test card [`DECLINED_TEST_CARD`] (`4000 0000 0000 0002`), which is always declined.

use actor_core::policy::Idempotent;
use actor_core::{Actor, BoxError, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::services::{Env, Service, money};
use crate::storage::{CachedSql, Db, StorageError, unix_now};

/// The largest amount charged for one order, in cents.
pub const AMOUNT_LIMIT_CENTS: u64 = 100_000;
/// A card number that is always declined.
pub const DECLINED_TEST_CARD: &str = "4000000000000002";

/// The payment service actor.
#[derive(Debug)]
pub struct Payments {
    db: Db,
}

/// Charges `amount_cents` for `order_id` to `card`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Charge {
    /// The order paid for; the idempotency key.
    pub order_id: u64,
    /// Who pays.
    pub user_id: u64,
    /// How much, in cents.
    pub amount_cents: u64,
    /// The card number, digits only.
    pub card: String,
}

/// Gives back what was charged for `order_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    /// The order.
    pub order_id: u64,
}

/// Proof of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order paid for.
    pub order_id: u64,
    /// How much, in cents.
    pub amount_cents: u64,
    /// The card's last four digits.
    pub card_last4: String,
}

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    /// The charge is (now, or already) refunded.
    Refunded {
        /// How much, in cents.
        amount_cents: u64,
    },
    /// Nothing was charged for the order; it is void now.
    NothingCharged,
}

/// Why a payment request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PaymentError {
    /// The payment was declined, for the reason given.
    #[error("{0}")]
    Declined(String),
    /// The order was refunded or voided; it cannot be charged any more.
    #[error("order {0} was refunded or voided and cannot be charged")]
    Voided(u64),
    /// The service could not read or write its data (details are in its log).
    #[error("the payment service failed to store or read data")]
    Internal,
}

impl Message for Charge {
    type Reply = Result<Receipt, PaymentError>;
}
impl Message for Refund {
    type Reply = Result<RefundOutcome, PaymentError>;
}
// Keyed by order id: a repeated charge returns the first outcome, a repeated refund is a no-op.
impl Idempotent for Charge {}
impl Idempotent for Refund {}
impl RemoteMessage for Charge {
    const TAG: &'static str = "shop.payments.charge.v1";
}
impl RemoteMessage for Refund {
    const TAG: &'static str = "shop.payments.refund.v1";
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS payments (
    order_id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    card_last4 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('charged', 'declined', 'refunded', 'void')),
    reason TEXT,
    created_at INTEGER NOT NULL
);";

impl Service for Payments {
    const NAME: &'static str = "payments";
    fn new(env: &Env) -> Self {
        Payments {
            db: Db::new(env.storage.clone(), Self::NAME, SCHEMA),
        }
    }
}

impl RemoteActor for Payments {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<Charge>().message::<Refund>();
    }
}

impl Actor for Payments {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.db.open()?;
        Ok(())
    }
}

/// A stored payment: amount, last four digits, status, decline reason.
type Stored = (u64, String, String, Option<String>);

impl Handler<Charge> for Payments {
    async fn handle(
        &mut self,
        msg: Charge,
        _: &mut Context<Self>,
    ) -> Result<Receipt, PaymentError> {
        let db = self.db.conn()?;
        if let Some((amount_cents, card_last4, status, reason)) = stored(db, msg.order_id)? {
            return match status.as_str() {
                "charged" => Ok(Receipt {
                    order_id: msg.order_id,
                    amount_cents,
                    card_last4,
                }),
                "declined" => Err(PaymentError::Declined(reason.unwrap_or_default())),
                _ => Err(PaymentError::Voided(msg.order_id)),
            };
        }
        let card_last4 = last4(&msg.card);
        let decline = decline_reason(msg.amount_cents, &msg.card);
        let status = if decline.is_some() {
            "declined"
        } else {
            "charged"
        };
        db.execute_cached(
            "INSERT INTO payments
                 (order_id, user_id, amount_cents, card_last4, status, reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                msg.order_id,
                msg.user_id,
                msg.amount_cents,
                card_last4,
                status,
                decline,
                unix_now()
            ],
        )
        .map_err(StorageError::from)?;
        tracing::debug!(
            order = msg.order_id,
            amount = msg.amount_cents,
            status,
            "payment"
        );
        match decline {
            Some(reason) => Err(PaymentError::Declined(reason)),
            None => Ok(Receipt {
                order_id: msg.order_id,
                amount_cents: msg.amount_cents,
                card_last4,
            }),
        }
    }
}

impl Handler<Refund> for Payments {
    async fn handle(
        &mut self,
        msg: Refund,
        _: &mut Context<Self>,
    ) -> Result<RefundOutcome, PaymentError> {
        let db = self.db.conn()?;
        let outcome = match stored(db, msg.order_id)? {
            Some((amount_cents, _, status, _)) if status == "charged" || status == "refunded" => {
                db.execute_cached(
                    "UPDATE payments SET status = 'refunded' WHERE order_id = ?1",
                    [msg.order_id],
                )
                .map_err(StorageError::from)?;
                RefundOutcome::Refunded { amount_cents }
            }
            Some(_) => RefundOutcome::NothingCharged,
            None => {
                db.execute_cached(
                    "INSERT INTO payments
                         (order_id, user_id, amount_cents, card_last4, status, created_at)
                     VALUES (?1, 0, 0, '', 'void', ?2)",
                    params![msg.order_id, unix_now()],
                )
                .map_err(StorageError::from)?;
                RefundOutcome::NothingCharged
            }
        };
        tracing::info!(order = msg.order_id, ?outcome, "refund");
        Ok(outcome)
    }
}

fn stored(db: &rusqlite::Connection, order_id: u64) -> Result<Option<Stored>, StorageError> {
    Ok(db
        .query_row_cached(
            "SELECT amount_cents, card_last4, status, reason FROM payments WHERE order_id = ?1",
            [order_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?)
}

/// Why a charge is declined, if it is.
fn decline_reason(amount_cents: u64, card: &str) -> Option<String> {
    if card == DECLINED_TEST_CARD {
        Some("the card was declined (test card 4000 0000 0000 0002 always is)".into())
    } else if !luhn_valid(card) {
        Some("the card number is not valid".into())
    } else if amount_cents > AMOUNT_LIMIT_CENTS {
        Some(format!(
            "the amount {} is over the limit of {} per order",
            money(amount_cents),
            money(AMOUNT_LIMIT_CENTS)
        ))
    } else {
        None
    }
}

/// The Luhn checksum every card number carries.
fn luhn_valid(card: &str) -> bool {
    let mut sum = 0;
    for (i, c) in card.chars().rev().enumerate() {
        let Some(digit) = c.to_digit(10) else {
            return false;
        };
        sum += match (i % 2 == 1, digit * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => digit,
        };
    }
    !card.is_empty() && sum % 10 == 0
}

fn last4(card: &str) -> String {
    let skip = card.chars().count().saturating_sub(4);
    card.chars().skip(skip).collect()
}

impl From<StorageError> for PaymentError {
    fn from(e: StorageError) -> Self {
        tracing::error!(service = Payments::NAME, error = %e, "storage failure");
        PaymentError::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_card_under_the_limit_is_charged() {
        assert_eq!(decline_reason(AMOUNT_LIMIT_CENTS, "4242424242424242"), None);
    }

    #[test]
    fn amounts_over_the_limit_are_declined() {
        let reason = decline_reason(AMOUNT_LIMIT_CENTS + 1, "4242424242424242");
        assert_eq!(
            reason.as_deref(),
            Some("the amount 1000.01 is over the limit of 1000.00 per order")
        );
    }

    #[test]
    fn the_test_card_and_bad_numbers_are_declined() {
        assert!(decline_reason(100, DECLINED_TEST_CARD).is_some());
        assert!(decline_reason(100, "4242424242424241").is_some());
    }

    #[test]
    fn luhn_accepts_known_test_numbers() {
        assert!(luhn_valid("4242424242424242"));
        assert!(luhn_valid("5555555555554444"));
        assert!(luhn_valid(DECLINED_TEST_CARD));
        assert!(!luhn_valid("1234567812345678"));
    }
}
