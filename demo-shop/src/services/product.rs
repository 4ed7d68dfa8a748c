//! The product service: the catalog, its prices and its stock.
//!
//! [`Quote`] checks product ids and quantities and prices them in one call. [`Reserve`] takes
//! an order's items out of stock, all or nothing; [`Release`] puts them back. Both are keyed
//! by order id, so repeating either changes nothing. A fresh database is seeded with
//! [`CATALOG`].

use std::collections::BTreeMap;

use actor_core::policy::Idempotent;
use actor_core::{Actor, BoxError, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::services::{Env, Service};
use crate::storage::{CachedSql, Db, StorageError};

/// The product service actor.
#[derive(Debug)]
pub struct Products {
    db: Db,
}

/// The catalog a fresh shop starts with: id, name, price in cents, stock.
pub const CATALOG: [(&str, &str, u64, u64); 6] = [
    ("espresso-beans", "Espresso beans, 1 kg", 2_490, 500),
    ("green-tea", "Sencha green tea, 100 g", 890, 500),
    ("mug", "Stoneware mug", 1_200, 200),
    ("kettle", "Gooseneck kettle", 6_900, 20),
    ("grinder", "Burr grinder", 24_900, 10),
    ("sticker", "Shop sticker", 150, 1_000_000),
];

/// A product in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stable id (`"mug"`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unit price in cents.
    pub price_cents: u64,
    /// Units in stock, not reserved.
    pub stock: u64,
}

/// A quantity of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product's id.
    pub product_id: String,
    /// How many, at least 1.
    pub quantity: u32,
}

/// A line with its product's name and current unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The product's id.
    pub product_id: String,
    /// The product's name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Unit price in cents.
    pub unit_price_cents: u64,
}

/// Priced lines (one per product, sorted by id) and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// Sum of quantity times unit price, in cents.
    pub total_cents: u64,
}

/// Lists the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListProducts;

/// Checks product ids and quantities, and prices them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuoteLines {
    /// The lines; several for one product are added up.
    pub lines: Vec<Line>,
}

/// Takes `lines` out of stock for `order_id`, all or nothing; again for the same order, it
/// does nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reserve {
    /// The order the stock is for.
    pub order_id: u64,
    /// What to take.
    pub lines: Vec<Line>,
}

/// Puts back what was reserved for `order_id`; nothing reserved (or already released) is
/// not an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// The order whose reservation to undo.
    pub order_id: u64,
}

/// Why a product request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ProductError {
    /// No product has this id.
    #[error("there is no product {0:?}")]
    UnknownProduct(String),
    /// A quantity of zero.
    #[error("the quantity of {0:?} must be at least 1")]
    ZeroQuantity(String),
    /// No lines at all.
    #[error("no items")]
    NoLines,
    /// Less in stock than requested.
    #[error("not enough {product_id} in stock: {requested} requested, {available} left")]
    OutOfStock {
        /// The product.
        product_id: String,
        /// Units requested.
        requested: u64,
        /// Units left.
        available: u64,
    },
    /// The order's reservation was released already; it cannot be taken again.
    #[error("the reservation of order {0} was released")]
    Released(u64),
    /// The service could not read or write its data (details are in its log).
    #[error("the product service failed to store or read data")]
    Internal,
}

impl Message for ListProducts {
    type Reply = Result<Vec<Product>, ProductError>;
}
impl Message for QuoteLines {
    type Reply = Result<Quote, ProductError>;
}
impl Message for Reserve {
    type Reply = Result<(), ProductError>;
}
impl Message for Release {
    type Reply = Result<(), ProductError>;
}
// Reads, and reservations keyed by order id: each may be repeated.
impl Idempotent for ListProducts {}
impl Idempotent for QuoteLines {}
impl Idempotent for Reserve {}
impl Idempotent for Release {}
impl RemoteMessage for ListProducts {
    const TAG: &'static str = "shop.products.list.v1";
}
impl RemoteMessage for QuoteLines {
    const TAG: &'static str = "shop.products.quote.v1";
}
impl RemoteMessage for Reserve {
    const TAG: &'static str = "shop.products.reserve.v1";
}
impl RemoteMessage for Release {
    const TAG: &'static str = "shop.products.release.v1";
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    order_id INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    released INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, product_id)
);";

impl Service for Products {
    const NAME: &'static str = "products";
    fn new(env: &Env) -> Self {
        Products {
            db: Db::new(env.storage.clone(), Self::NAME, SCHEMA),
        }
    }
}

impl RemoteActor for Products {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<ListProducts>()
            .message::<QuoteLines>()
            .message::<Reserve>()
            .message::<Release>();
    }
}

impl Actor for Products {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let db = self.db.open()?;
        let tx = db.transaction()?;
        for (id, name, price, stock) in CATALOG {
            tx.execute_cached(
                "INSERT OR IGNORE INTO products (id, name, price_cents, stock)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, name, price, stock],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Handler<ListProducts> for Products {
    async fn handle(
        &mut self,
        _: ListProducts,
        _: &mut Context<Self>,
    ) -> Result<Vec<Product>, ProductError> {
        let db = self.db.conn()?;
        let mut stmt = db
            .prepare_cached("SELECT id, name, price_cents, stock FROM products ORDER BY id")
            .map_err(StorageError::from)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(Product {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    price_cents: row.get(2)?,
                    stock: row.get(3)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(StorageError::from)?;
        Ok(rows)
    }
}

impl Handler<QuoteLines> for Products {
    async fn handle(
        &mut self,
        msg: QuoteLines,
        _: &mut Context<Self>,
    ) -> Result<Quote, ProductError> {
        let wanted = merge(&msg.lines)?;
        let db = self.db.conn()?;
        let mut quote = Quote {
            lines: Vec::with_capacity(wanted.len()),
            total_cents: 0,
        };
        for (product_id, quantity) in wanted {
            let (name, price, _) = product(db, &product_id)?;
            let line_total = price.saturating_mul(u64::from(quantity));
            quote.total_cents = quote.total_cents.saturating_add(line_total);
            quote.lines.push(PricedLine {
                product_id,
                name,
                quantity,
                unit_price_cents: price,
            });
        }
        Ok(quote)
    }
}

impl Handler<Reserve> for Products {
    async fn handle(&mut self, msg: Reserve, _: &mut Context<Self>) -> Result<(), ProductError> {
        let wanted = merge(&msg.lines)?;
        let tx = self.db.conn()?.transaction().map_err(StorageError::from)?;
        let released: Option<bool> = tx
            .query_row_cached(
                "SELECT MAX(released) FROM reservations WHERE order_id = ?1",
                [msg.order_id],
                |row| row.get(0),
            )
            .map_err(StorageError::from)?;
        match released {
            Some(false) => return Ok(()), // reserved already
            Some(true) => return Err(ProductError::Released(msg.order_id)),
            None => {}
        }
        for (product_id, quantity) in wanted {
            let (_, _, available) = product(&tx, &product_id)?;
            let requested = u64::from(quantity);
            if available < requested {
                return Err(ProductError::OutOfStock {
                    product_id,
                    requested,
                    available,
                });
            }
            tx.execute_cached(
                "UPDATE products SET stock = stock - ?2 WHERE id = ?1",
                params![product_id, requested],
            )
            .map_err(StorageError::from)?;
            tx.execute_cached(
                "INSERT INTO reservations (order_id, product_id, quantity) VALUES (?1, ?2, ?3)",
                params![msg.order_id, product_id, requested],
            )
            .map_err(StorageError::from)?;
        }
        tx.commit().map_err(StorageError::from)?;
        tracing::debug!(order = msg.order_id, "stock reserved");
        Ok(())
    }
}

impl Handler<Release> for Products {
    async fn handle(&mut self, msg: Release, _: &mut Context<Self>) -> Result<(), ProductError> {
        let tx = self.db.conn()?.transaction().map_err(StorageError::from)?;
        let restocked = tx
            .execute_cached(
                "UPDATE products SET stock = stock + (SELECT quantity FROM reservations r
                     WHERE r.order_id = ?1 AND r.product_id = products.id AND r.released = 0)
                 WHERE id IN (SELECT product_id FROM reservations
                     WHERE order_id = ?1 AND released = 0)",
                [msg.order_id],
            )
            .map_err(StorageError::from)?;
        tx.execute_cached(
            "UPDATE reservations SET released = 1 WHERE order_id = ?1",
            [msg.order_id],
        )
        .map_err(StorageError::from)?;
        tx.commit().map_err(StorageError::from)?;
        if restocked > 0 {
            tracing::info!(
                order = msg.order_id,
                products = restocked,
                "reservation released"
            );
        }
        Ok(())
    }
}

/// Adds up lines per product (sorted by id, so locks and replies have one order); refuses
/// an empty list and zero quantities.
fn merge(lines: &[Line]) -> Result<BTreeMap<String, u32>, ProductError> {
    if lines.is_empty() {
        return Err(ProductError::NoLines);
    }
    let mut merged = BTreeMap::new();
    for line in lines {
        if line.quantity == 0 {
            return Err(ProductError::ZeroQuantity(line.product_id.clone()));
        }
        let total: &mut u32 = merged.entry(line.product_id.clone()).or_default();
        *total = total.saturating_add(line.quantity);
    }
    Ok(merged)
}

/// Name, price and stock of `id`.
fn product(db: &Connection, id: &str) -> Result<(String, u64, u64), ProductError> {
    db.query_row_cached(
        "SELECT name, price_cents, stock FROM products WHERE id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .optional()
    .map_err(StorageError::from)?
    .ok_or_else(|| ProductError::UnknownProduct(id.to_owned()))
}

impl From<StorageError> for ProductError {
    fn from(e: StorageError) -> Self {
        tracing::error!(service = Products::NAME, error = %e, "storage failure");
        ProductError::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, quantity: u32) -> Line {
        Line {
            product_id: id.into(),
            quantity,
        }
    }

    #[test]
    fn lines_of_one_product_are_added_up() {
        let merged = merge(&[line("mug", 2), line("kettle", 1), line("mug", 3)]);
        let expected: BTreeMap<String, u32> = [("kettle".into(), 1), ("mug".into(), 5)].into();
        assert_eq!(merged, Ok(expected));
    }

    #[test]
    fn empty_and_zero_lines_are_refused() {
        assert_eq!(merge(&[]), Err(ProductError::NoLines));
        assert_eq!(
            merge(&[line("mug", 0)]),
            Err(ProductError::ZeroQuantity("mug".into()))
        );
    }
}
