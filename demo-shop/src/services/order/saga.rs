//! The order saga's steps: each a call to another service, found by name.
//!
//! ```text
//! check request -> validate user -> quote products     (a failure here changes nothing)
//!   -> store PENDING -> reserve stock -> charge -> CONFIRMED
//!                           |              |
//!                           v              v
//!                      FAILED          release stock (+ refund if the charge's
//!                                      outcome is unknown) -> FAILED
//! ```

use std::time::Duration;

use actor_core::ActorSystem;

use super::{DEFAULT_CARD, FailureCode, MAX_LINES, OrderError, PlaceOrder};
use crate::call::{CallError, Calls};
use crate::services::payment::{Charge, PaymentError, Payments, Receipt, Refund};
use crate::services::product::{Line, ProductError, Products, Quote, QuoteLines, Release, Reserve};
use crate::services::user::{User, UserError, Users, ValidateUser};

/// Time-out of each step but the charge.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Time-out of each attempt to charge.
const PAYMENT_TIMEOUT: Duration = Duration::from_millis(1_500);

/// A [`PlaceOrder`] that passed its checks: lines merged per product and sorted, the card
/// reduced to its digits.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub(super) key: Option<String>,
    pub(super) user_id: u64,
    pub(super) lines: Vec<Line>,
    pub(super) card: String,
}

impl Request {
    pub(super) fn check(msg: PlaceOrder) -> Result<Self, OrderError> {
        let invalid = |why: &str| Err(OrderError::InvalidInput(why.to_owned()));
        if let Some(key) = &msg.idempotency_key {
            if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return invalid("the idempotency key must be 1 to 200 visible ASCII characters");
            }
        }
        if msg.lines.is_empty() || msg.lines.len() > MAX_LINES {
            return invalid("an order needs 1 to 50 items");
        }
        let mut lines: Vec<Line> = Vec::with_capacity(msg.lines.len());
        for line in msg.lines {
            if line.product_id.is_empty() || line.product_id.len() > 64 {
                return invalid("a product id must be 1 to 64 characters");
            }
            if line.quantity == 0 {
                return Err(OrderError::InvalidInput(format!(
                    "the quantity of {:?} must be at least 1",
                    line.product_id
                )));
            }
            match lines.iter_mut().find(|l| l.product_id == line.product_id) {
                Some(same) => same.quantity = same.quantity.saturating_add(line.quantity),
                None => lines.push(line),
            }
        }
        lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let card: String = msg
            .card
            .as_deref()
            .unwrap_or(DEFAULT_CARD)
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        if !(12..=19).contains(&card.len()) || !card.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("the card number must be 12 to 19 digits");
        }
        Ok(Request {
            key: msg.idempotency_key,
            user_id: msg.user_id,
            lines,
            card,
        })
    }

    /// What must match for a repeated idempotency key to be the same request.
    pub(super) fn fingerprint(&self) -> String {
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| format!("{}x{}", l.quantity, l.product_id))
            .collect();
        let last4 = &self.card[self.card.len().saturating_sub(4)..];
        format!(
            "user={};lines={};card=..{last4}",
            self.user_id,
            lines.join(",")
        )
    }
}

/// How the saga ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Reserved and charged.
    Confirmed,
    /// A step failed and what was done is undone, except `undo_later`, which could not run.
    Failed {
        code: FailureCode,
        reason: String,
        undo_later: Vec<Compensation>,
    },
}

/// An undo step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compensation {
    /// Put the reserved stock back.
    Release,
    /// Refund (or void) the charge.
    Refund,
}

/// The saga's calls: every step finds its service by name through the process's [`Calls`].
pub(super) struct Saga<'a> {
    system: &'a ActorSystem,
    calls: Calls,
}

impl<'a> Saga<'a> {
    pub(super) fn new(system: &'a ActorSystem, calls: Calls) -> Self {
        Saga { system, calls }
    }

    pub(super) fn system(&self) -> &ActorSystem {
        self.system
    }

    /// Checks the user and the products; nothing is changed by these calls.
    pub(super) async fn validate(&self, request: &Request) -> Result<(User, Quote), OrderError> {
        let unavailable = |e: &dyn std::fmt::Display| OrderError::Unavailable(e.to_string());
        let validate = ValidateUser {
            id: request.user_id,
        };
        let user = match self
            .calls
            .ask_idempotent::<Users, _>(self.system, validate, STEP_TIMEOUT)
            .await
        {
            Ok(Ok(user)) => user,
            Ok(Err(UserError::NotFound(id))) => return Err(OrderError::UnknownUser(id)),
            Ok(Err(e)) => return Err(unavailable(&e)),
            Err(e) => return Err(unavailable(&e)),
        };
        let quote = QuoteLines {
            lines: request.lines.clone(),
        };
        let quote = match self
            .calls
            .ask_idempotent::<Products, _>(self.system, quote, STEP_TIMEOUT)
            .await
        {
            Ok(Ok(quote)) => quote,
            Ok(Err(ProductError::UnknownProduct(id))) => {
                return Err(OrderError::UnknownProduct(id));
            }
            Ok(Err(e @ (ProductError::ZeroQuantity(_) | ProductError::NoLines))) => {
                return Err(OrderError::InvalidInput(e.to_string()));
            }
            Ok(Err(e)) => return Err(unavailable(&e)),
            Err(e) => return Err(unavailable(&e)),
        };
        Ok((user, quote))
    }

    /// Reserves stock and charges for the stored order `order_id`, undoing on failure.
    pub(super) async fn execute(&self, order_id: u64, request: &Request, quote: &Quote) -> Outcome {
        use Compensation::{Refund as RefundStep, Release as ReleaseStep};

        let reserve = Reserve {
            order_id,
            lines: request.lines.clone(),
        };
        match self
            .calls
            .ask_idempotent::<Products, _>(self.system, reserve, STEP_TIMEOUT)
            .await
        {
            Ok(Ok(())) => {}
            // A refused reservation took nothing.
            Ok(Err(e @ ProductError::OutOfStock { .. })) => {
                return failed(FailureCode::OutOfStock, e.to_string(), Vec::new());
            }
            Ok(Err(e)) => {
                let reason = format!("the stock could not be reserved ({e})");
                return failed(FailureCode::ServiceUnavailable, reason, Vec::new());
            }
            // No answer: it may have been reserved.
            Err(e) => {
                let reason = format!("the stock could not be reserved ({e})");
                let left = self.undo(order_id, &[ReleaseStep]).await;
                return failed(FailureCode::ServiceUnavailable, reason, left);
            }
        }
        let charge = Charge {
            order_id,
            user_id: request.user_id,
            amount_cents: quote.total_cents,
            card: request.card.clone(),
        };
        match self.charge(charge).await {
            Ok(Ok(_receipt)) => Outcome::Confirmed,
            Ok(Err(PaymentError::Declined(why))) => {
                let reason = format!("the payment was declined: {why}");
                let left = self.undo(order_id, &[ReleaseStep]).await;
                failed(FailureCode::PaymentDeclined, reason, left)
            }
            // No answer, or no usable one: it may have been charged, so refund (a refund of
            // nothing voids the order, so a late charge is refused).
            Ok(Err(e)) => {
                let reason = format!("the payment could not be taken ({e})");
                let left = self.undo(order_id, &[ReleaseStep, RefundStep]).await;
                failed(FailureCode::ServiceUnavailable, reason, left)
            }
            Err(e) => {
                let reason = format!("the payment could not be taken: {e}");
                let left = self.undo(order_id, &[ReleaseStep, RefundStep]).await;
                failed(FailureCode::ServiceUnavailable, reason, left)
            }
        }
    }

    /// The one place the saga charges: retried (a charge is keyed by order id) and guarded
    /// by the payments breaker, so a dead payments node fails orders fast.
    async fn charge(&self, charge: Charge) -> Result<Result<Receipt, PaymentError>, CallError> {
        self.calls
            .ask_guarded::<Payments, _>(self.system, charge, PAYMENT_TIMEOUT)
            .await
    }

    /// Runs `steps`; returns those that could not run, to be retried later.
    pub(super) async fn undo(&self, order_id: u64, steps: &[Compensation]) -> Vec<Compensation> {
        let mut left = Vec::new();
        for step in steps {
            if !self.run(*step, order_id).await {
                tracing::warn!(order = order_id, ?step, "undo failed; will retry");
                left.push(*step);
            }
        }
        left
    }

    /// Runs one undo for `order_id`; whether it is done. Both are idempotent.
    pub(super) async fn run(&self, step: Compensation, order_id: u64) -> bool {
        match step {
            Compensation::Release => {
                let release = Release { order_id };
                let done =
                    self.calls
                        .ask_idempotent::<Products, _>(self.system, release, STEP_TIMEOUT);
                matches!(done.await, Ok(Ok(())))
            }
            Compensation::Refund => {
                let refund = Refund { order_id };
                let done = self
                    .calls
                    .ask_guarded::<Payments, _>(self.system, refund, STEP_TIMEOUT);
                matches!(done.await, Ok(Ok(_)))
            }
        }
    }
}

impl Compensation {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Compensation::Release => "release",
            Compensation::Refund => "refund",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "release" => Some(Compensation::Release),
            "refund" => Some(Compensation::Refund),
            _ => None,
        }
    }
}

fn failed(code: FailureCode, reason: String, undo_later: Vec<Compensation>) -> Outcome {
    Outcome::Failed {
        code,
        reason,
        undo_later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(lines: &[(&str, u32)], card: Option<&str>) -> PlaceOrder {
        PlaceOrder {
            idempotency_key: Some("k-1".into()),
            user_id: 7,
            lines: lines
                .iter()
                .map(|(id, quantity)| Line {
                    product_id: (*id).into(),
                    quantity: *quantity,
                })
                .collect(),
            card: card.map(Into::into),
        }
    }

    #[test]
    fn a_request_is_merged_sorted_and_defaulted() -> Result<(), OrderError> {
        let request = Request::check(place(&[("mug", 1), ("kettle", 2), ("mug", 3)], None))?;
        let lines: Vec<_> = request
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        assert_eq!(lines, [("kettle", 2), ("mug", 4)]);
        assert_eq!(request.card, DEFAULT_CARD);
        assert_eq!(
            request.fingerprint(),
            "user=7;lines=2xkettle,4xmug;card=..4242"
        );
        Ok(())
    }

    #[test]
    fn card_numbers_may_be_grouped() -> Result<(), OrderError> {
        let request = Request::check(place(&[("mug", 1)], Some("4000 0000-0000 0002")))?;
        assert_eq!(request.card, "4000000000000002");
        Ok(())
    }

    #[test]
    fn malformed_requests_are_refused() {
        let bad = [
            place(&[], None),
            place(&[("mug", 0)], None),
            place(&[("", 1)], None),
            place(&[("mug", 1)], Some("12ab")),
            PlaceOrder {
                idempotency_key: Some(String::new()),
                ..place(&[("mug", 1)], None)
            },
        ];
        for msg in bad {
            assert!(
                matches!(
                    Request::check(msg.clone()),
                    Err(OrderError::InvalidInput(_))
                ),
                "{msg:?} passed"
            );
        }
    }
}
