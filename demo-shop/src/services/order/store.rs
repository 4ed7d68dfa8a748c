//! The order service's tables: orders, and the undo steps still to run.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::saga::{Compensation, Outcome, Request};
use super::{FailureCode, Order, OrderStatus};
use crate::services::product::Quote;
use crate::storage::{CachedSql, StorageError, unix_now};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT UNIQUE,
    request TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    lines TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    failure TEXT,
    reason TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS undo_steps (
    order_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    PRIMARY KEY (order_id, step)
);";

const COLUMNS: &str = "id, user_id, status, lines, total_cents, failure, reason, created_at";

/// The order stored under `key`, with the fingerprint of the request that made it.
pub(super) fn by_key(db: &Connection, key: &str) -> Result<Option<(String, Order)>, StorageError> {
    let sql = format!("SELECT request, {COLUMNS} FROM orders WHERE idempotency_key = ?1");
    let found = db
        .query_row_cached(&sql, [key], |row| Ok((row.get(0)?, read(row, 1)?)))
        .optional()?;
    found
        .map(|(fingerprint, order)| Ok((fingerprint, order?)))
        .transpose()
}

pub(super) fn get(db: &Connection, id: u64) -> Result<Option<Order>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = ?1");
    db.query_row_cached(&sql, [id], |row| read(row, 0))
        .optional()?
        .transpose()
}

/// Stores a new `PENDING` order; returns its id.
pub(super) fn insert_pending(
    db: &Connection,
    request: &Request,
    email: &str,
    quote: &Quote,
) -> Result<u64, StorageError> {
    db.execute_cached(
        "INSERT INTO orders
             (idempotency_key, request, user_id, email, lines, total_cents, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'PENDING', ?7)",
        params![
            request.key,
            request.fingerprint(),
            request.user_id,
            email,
            serde_json::to_string(&quote.lines)?,
            quote.total_cents,
            unix_now()
        ],
    )?;
    Ok(db.last_insert_rowid().unsigned_abs())
}

/// Records how the saga of order `id` ended (and the undos still to run) in one transaction.
pub(super) fn finish(
    db: &mut Connection,
    id: u64,
    outcome: &Outcome,
) -> Result<Order, StorageError> {
    let tx = db.transaction()?;
    match outcome {
        Outcome::Confirmed => {
            tx.execute_cached("UPDATE orders SET status = 'CONFIRMED' WHERE id = ?1", [id])?;
        }
        Outcome::Failed {
            code,
            reason,
            undo_later,
        } => record_failure(&tx, id, *code, reason, undo_later)?,
    }
    let order = get(&tx, id)?.ok_or(StorageError::Sql(rusqlite::Error::QueryReturnedNoRows))?;
    tx.commit()?;
    Ok(order)
}

/// Fails every `PENDING` order (their saga was cut off) and queues both undos for each;
/// returns them with the address to mail.
pub(super) fn interrupt_pending(db: &mut Connection) -> Result<Vec<(Order, String)>, StorageError> {
    const REASON: &str = "the order was interrupted by a restart of the order service";
    let tx = db.transaction()?;
    let pending: Vec<(u64, String)> = {
        let mut stmt = tx.prepare("SELECT id, email FROM orders WHERE status = 'PENDING'")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut interrupted = Vec::with_capacity(pending.len());
    for (id, email) in pending {
        let undo = [Compensation::Release, Compensation::Refund];
        record_failure(&tx, id, FailureCode::Interrupted, REASON, &undo)?;
        if let Some(order) = get(&tx, id)? {
            interrupted.push((order, email));
        }
    }
    tx.commit()?;
    Ok(interrupted)
}

fn record_failure(
    db: &Connection,
    id: u64,
    code: FailureCode,
    reason: &str,
    undo_later: &[Compensation],
) -> Result<(), StorageError> {
    db.execute_cached(
        "UPDATE orders SET status = 'FAILED', failure = ?2, reason = ?3 WHERE id = ?1",
        params![id, failure_str(code), reason],
    )?;
    for step in undo_later {
        db.execute_cached(
            "INSERT OR IGNORE INTO undo_steps (order_id, step) VALUES (?1, ?2)",
            params![id, step.as_str()],
        )?;
    }
    Ok(())
}

/// Undo steps still to run, oldest first (at most 100 per call).
pub(super) fn pending_undos(db: &Connection) -> Result<Vec<(u64, Compensation)>, StorageError> {
    let mut stmt =
        db.prepare_cached("SELECT order_id, step FROM undo_steps ORDER BY order_id LIMIT 100")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, u64>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut steps = Vec::new();
    for row in rows {
        let (order_id, step) = row?;
        if let Some(step) = Compensation::parse(&step) {
            steps.push((order_id, step));
        }
    }
    Ok(steps)
}

pub(super) fn undo_done(
    db: &Connection,
    order_id: u64,
    step: Compensation,
) -> Result<(), StorageError> {
    db.execute_cached(
        "DELETE FROM undo_steps WHERE order_id = ?1 AND step = ?2",
        params![order_id, step.as_str()],
    )?;
    Ok(())
}

/// Reads an order from `row`, whose columns from `at` on are [`COLUMNS`].
fn read(row: &Row<'_>, at: usize) -> rusqlite::Result<Result<Order, StorageError>> {
    let lines: String = row.get(at + 3)?;
    let status: String = row.get(at + 2)?;
    let failure: Option<String> = row.get(at + 5)?;
    let lines = match serde_json::from_str(&lines) {
        Ok(lines) => lines,
        Err(e) => return Ok(Err(e.into())),
    };
    Ok(Ok(Order {
        id: row.get(at)?,
        user_id: row.get(at + 1)?,
        status: match status.as_str() {
            "CONFIRMED" => OrderStatus::Confirmed,
            "FAILED" => OrderStatus::Failed,
            _ => OrderStatus::Pending,
        },
        lines,
        total_cents: row.get(at + 4)?,
        failure: failure.as_deref().map(parse_failure),
        reason: row.get(at + 6)?,
        created_at: row.get(at + 7)?,
    }))
}

fn failure_str(code: FailureCode) -> &'static str {
    match code {
        FailureCode::OutOfStock => "out_of_stock",
        FailureCode::PaymentDeclined => "payment_declined",
        FailureCode::ServiceUnavailable => "service_unavailable",
        FailureCode::Interrupted => "interrupted",
    }
}

fn parse_failure(s: &str) -> FailureCode {
    match s {
        "out_of_stock" => FailureCode::OutOfStock,
        "payment_declined" => FailureCode::PaymentDeclined,
        "service_unavailable" => FailureCode::ServiceUnavailable,
        _ => FailureCode::Interrupted,
    }
}
