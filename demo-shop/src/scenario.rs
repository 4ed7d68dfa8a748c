//! The end-to-end scenario: what customers and an operator do, with every answer checked.
//!
//! [`run`] takes only a base URL, so the same checks run against any deployment: the
//! monolith in a test, the three-node cluster, or a shop started by hand
//! (`demo-shop scenario --url http://127.0.0.1:8080`). It uses fresh e-mail addresses and
//! compares stock and counts before and after, so it can run against a shop that already
//! has data, as long as nothing else places orders meanwhile.
//!
//! 1. Health is ok; two users register; a duplicate and an invalid address are refused.
//! 2. The catalog lists prices and stock.
//! 3. Two good orders are confirmed, with the totals of the catalog's prices.
//! 4. An order for more grinders than there are fails `out_of_stock` (409).
//! 5. An order paid with the declined test card fails `payment_declined` (422).
//! 6. An order sent twice with one idempotency key is placed once; the key with another
//!    order is refused (409).
//! 7. Stock moved by exactly the confirmed orders (the failed ones released theirs).
//! 8. Analytics counts the events; notifications holds the welcome, confirmation and
//!    apology mails (both polled for up to 10 s: events are delivered asynchronously).
//! 9. The cluster view places all six services; metrics are exported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long events get to reach analytics and notifications.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// The checks that passed, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One line per check.
    pub checks: Vec<String>,
}

/// The first check that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// A request got no HTTP answer.
    #[error("{step}: no answer: {source}")]
    Http {
        /// The step.
        step: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// An answer was not the expected one.
    #[error("{step}: {detail}")]
    Unexpected {
        /// The step.
        step: String,
        /// What was expected and what came.
        detail: String,
    },
}

/// An HTTP answer: status, JSON body (or `null`), and whether it was an idempotent replay.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

struct Shop {
    http: reqwest::Client,
    base: String,
    report: Report,
}

/// Runs the scenario against the shop at `base_url`.
///
/// # Errors
/// The first [`ScenarioError`]: a check that failed, with what was expected and what came.
pub async fn run(base_url: &str) -> Result<Report, ScenarioError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| ScenarioError::Http {
            step: "building the HTTP client".into(),
            source,
        })?;
    let mut shop = Shop {
        http,
        base: base_url.trim_end_matches('/').to_owned(),
        report: Report::default(),
    };
    shop.scenario().await?;
    Ok(shop.report)
}

/// A registered customer.
struct Customer {
    id: u64,
    email: String,
}

/// Price and stock by product id.
type Catalog = HashMap<String, (u64, u64)>;

impl Shop {
    async fn scenario(&mut self) -> Result<(), ScenarioError> {
        let run = run_id();
        let health = self.get("health").await?;
        let ok = health.status == 200 && health.body["status"] == "ok";
        self.expect("health is ok", ok, &health)?;
        let counts_before = self.get("analytics").await?.body;
        let (alice, bob) = self.users(&run).await?;
        let catalog = self.catalog().await?;
        let revenue = self.orders(&alice, &bob, &catalog).await?;
        let revenue = revenue + self.idempotency(&run, &alice, &catalog).await?;
        self.stock_moved(&catalog).await?;
        self.events(&counts_before, revenue, &alice, &bob).await?;
        self.operations().await
    }

    /// Registers two customers; a duplicate and an invalid address are refused.
    async fn users(&mut self, run: &str) -> Result<(Customer, Customer), ScenarioError> {
        let alice = self
            .register(&format!("alice-{run}@example.com"), "Alice")
            .await?;
        let bob = self
            .register(&format!("bob-{run}@example.com"), "Bob")
            .await?;
        let again = json!({"email": alice.email.to_uppercase(), "name": "Alice again"});
        let dup = self.post("users", again, None).await?;
        self.expect_error(
            "a second registration of one address",
            &dup,
            409,
            "email_taken",
        )?;
        let invalid = json!({"email": "not-an-address", "name": "X"});
        let bad = self.post("users", invalid, None).await?;
        self.expect_error("an invalid address", &bad, 400, "invalid_email")?;
        let got = self.get(&format!("users/{}", alice.id)).await?;
        let same = got.status == 200 && got.body["email"] == alice.email.as_str();
        self.expect("reading a user back", same, &got)?;
        Ok((alice, bob))
    }

    /// Reads the catalog, which must have the products the scenario orders.
    async fn catalog(&mut self) -> Result<Catalog, ScenarioError> {
        let catalog = self.prices_and_stock().await?;
        for product in ["mug", "green-tea", "kettle", "grinder", "espresso-beans"] {
            if !catalog.contains_key(product) {
                let detail = format!("no {product} in {catalog:?}");
                return Err(self.unexpected("the catalog", detail));
            }
        }
        self.passed(format!("the catalog lists {} products", catalog.len()));
        Ok(catalog)
    }

    /// Two good orders, one out of stock, one declined; returns the revenue.
    async fn orders(
        &mut self,
        alice: &Customer,
        bob: &Customer,
        catalog: &Catalog,
    ) -> Result<u64, ScenarioError> {
        let price = |id: &str| catalog.get(id).map_or(0, |(price, _)| *price);
        let items = json!([
            {"product_id": "mug", "quantity": 2},
            {"product_id": "green-tea", "quantity": 1},
        ]);
        let first = self.post("orders", order(alice, items, None), None).await?;
        let first_total = 2 * price("mug") + price("green-tea");
        self.expect_confirmed("a good order", &first, first_total)?;
        let items = json!([{"product_id": "kettle", "quantity": 1}]);
        let second = self
            .post(
                "orders",
                order(bob, items, Some("4242 4242 4242 4242")),
                None,
            )
            .await?;
        self.expect_confirmed(
            "a second good order, card number grouped",
            &second,
            price("kettle"),
        )?;
        let read = self.get(&format!("orders/{}", first.body["id"])).await?;
        let confirmed = read.status == 200 && read.body["status"] == "CONFIRMED";
        self.expect("reading an order back", confirmed, &read)?;

        let grinders = catalog.get("grinder").map_or(0, |(_, stock)| *stock);
        let items = json!([{"product_id": "grinder", "quantity": grinders + 1}]);
        let too_many = self.post("orders", order(alice, items, None), None).await?;
        self.expect_failed(
            "an order for more than the stock",
            &too_many,
            409,
            "out_of_stock",
        )?;

        let items = json!([{"product_id": "mug", "quantity": 1}]);
        let declined = self
            .post(
                "orders",
                order(bob, items, Some("4000 0000 0000 0002")),
                None,
            )
            .await?;
        self.expect_failed(
            "an order paid with the declined test card",
            &declined,
            422,
            "payment_declined",
        )?;
        Ok(first_total + price("kettle"))
    }

    /// One order sent twice with one key is placed once; the key with another order is
    /// refused. Returns the revenue.
    async fn idempotency(
        &mut self,
        run: &str,
        alice: &Customer,
        catalog: &Catalog,
    ) -> Result<u64, ScenarioError> {
        let key = format!("scenario-{run}");
        let items = json!([{"product_id": "espresso-beans", "quantity": 1}]);
        let once = self
            .post("orders", order(alice, items.clone(), None), Some(&key))
            .await?;
        let total = catalog.get("espresso-beans").map_or(0, |(price, _)| *price);
        self.expect_confirmed("an order with an idempotency key", &once, total)?;
        let again = self
            .post("orders", order(alice, items, None), Some(&key))
            .await?;
        let same = again.status == 201 && again.replayed && again.body == once.body;
        self.expect(
            "the same request again: the first order, nothing new",
            same,
            &again,
        )?;
        let items = json!([{"product_id": "mug", "quantity": 1}]);
        let other = self
            .post("orders", order(alice, items, None), Some(&key))
            .await?;
        self.expect_error(
            "the key with another order",
            &other,
            409,
            "idempotency_key_reused",
        )?;
        Ok(total)
    }

    /// Stock moved by exactly the confirmed orders: the failed ones released theirs, the
    /// repeated one took nothing.
    async fn stock_moved(&mut self, before: &Catalog) -> Result<(), ScenarioError> {
        let after = self.prices_and_stock().await?;
        let moved = [
            ("mug", 2),
            ("green-tea", 1),
            ("kettle", 1),
            ("espresso-beans", 1),
            ("grinder", 0),
        ];
        for (product, n) in moved {
            let was = before.get(product).map(|(_, stock)| *stock);
            let is = after.get(product).map(|(_, stock)| *stock);
            if was.zip(is).map(|(was, is)| was.checked_sub(is)) != Some(Some(n)) {
                let detail = format!("{product} went from {was:?} to {is:?}, expected -{n}");
                return Err(self.unexpected("stock after the orders", detail));
            }
        }
        self.passed("stock moved by exactly the confirmed orders".into());
        Ok(())
    }

    /// Analytics counted the events; each customer got the mails they should.
    async fn events(
        &mut self,
        before: &Value,
        revenue: u64,
        alice: &Customer,
        bob: &Customer,
    ) -> Result<(), ScenarioError> {
        let want = [
            ("users_registered", 2),
            ("orders_created", 3),
            ("orders_failed", 2),
            ("revenue_cents", revenue),
        ];
        self.poll("analytics counted the events", "analytics", |now| {
            want.iter()
                .all(|(field, n)| counter(now, field) == counter(before, field) + n)
        })
        .await?;
        let path = format!("notifications?to={}", alice.email);
        let kinds = [
            "order_confirmed",
            "order_confirmed",
            "order_failed",
            "welcome",
        ];
        self.poll(
            "alice's mails: welcome, two confirmations, an apology",
            &path,
            |mails| mail_kinds(mails) == kinds,
        )
        .await?;
        let path = format!("notifications?to={}", bob.email);
        let kinds = ["order_confirmed", "order_failed", "welcome"];
        self.poll(
            "bob's mails: welcome, a confirmation, an apology",
            &path,
            |mails| mail_kinds(mails) == kinds,
        )
        .await
    }

    /// The cluster view places every service; metrics are exported.
    async fn operations(&mut self) -> Result<(), ScenarioError> {
        let cluster = self.get("cluster").await?;
        let placed = cluster.body["services"].as_array().is_some_and(|services| {
            services.len() == 6
                && services
                    .iter()
                    .all(|s| s["node"].is_string() && s["alive"] == true)
        });
        self.expect(
            "the cluster view places all six services",
            cluster.status == 200 && placed,
            &cluster,
        )?;
        let metrics = self.text("metrics").await?;
        // Only what every gateway records: a node's other metrics depend on what it hosts.
        let exported = ["shop_asks_total", "http_requests_total"]
            .iter()
            .all(|m| metrics.contains(m));
        if !exported {
            let detail = "shop_asks_total or http_requests_total missing".to_owned();
            return Err(self.unexpected("metrics", detail));
        }
        self.passed("metrics are exported".into());
        Ok(())
    }

    async fn register(&mut self, email: &str, name: &str) -> Result<Customer, ScenarioError> {
        let step = format!("registering {name}");
        let answer = self
            .post("users", json!({"email": email, "name": name}), None)
            .await?;
        let id = answer.body["id"].as_u64().filter(|_| answer.status == 201);
        let id = id.ok_or_else(|| self.unexpected(&step, format!("got {answer:?}")))?;
        self.passed(format!("{step}: 201, id {id}"));
        Ok(Customer {
            id,
            email: email.to_owned(),
        })
    }

    async fn prices_and_stock(&self) -> Result<Catalog, ScenarioError> {
        let answer = self.get("products").await?;
        let products = answer.body.as_array().filter(|_| answer.status == 200);
        let products = products
            .ok_or_else(|| self.unexpected("listing products", format!("got {answer:?}")))?;
        Ok(products
            .iter()
            .filter_map(|p| {
                let id = p["id"].as_str()?.to_owned();
                Some((id, (p["price_cents"].as_u64()?, p["stock"].as_u64()?)))
            })
            .collect())
    }

    fn expect_confirmed(
        &mut self,
        step: &str,
        answer: &Answer,
        total: u64,
    ) -> Result<(), ScenarioError> {
        let ok = answer.status == 201
            && answer.body["status"] == "CONFIRMED"
            && answer.body["total_cents"] == total;
        self.expect(&format!("{step}: 201 CONFIRMED, total {total}"), ok, answer)
    }

    fn expect_failed(
        &mut self,
        step: &str,
        answer: &Answer,
        status: u16,
        code: &str,
    ) -> Result<(), ScenarioError> {
        let order = &answer.body["order"];
        let ok = answer.status == status
            && answer.body["code"] == code
            && answer.body["error"].as_str().is_some_and(|e| !e.is_empty())
            && order["status"] == "FAILED"
            && order["failure"] == code;
        self.expect(
            &format!("{step}: {status} {code}, order FAILED with a reason"),
            ok,
            answer,
        )
    }

    fn expect_error(
        &mut self,
        step: &str,
        answer: &Answer,
        status: u16,
        code: &str,
    ) -> Result<(), ScenarioError> {
        let ok = answer.status == status && answer.body["code"] == code;
        self.expect(&format!("{step}: {status} {code}"), ok, answer)
    }

    fn expect(&mut self, step: &str, ok: bool, answer: &Answer) -> Result<(), ScenarioError> {
        if ok {
            self.passed(step.to_owned());
            Ok(())
        } else {
            Err(self.unexpected(step, format!("got {answer:?}")))
        }
    }

    /// Reads `path` until `done` holds for its body, for up to [`EVENT_WAIT`].
    async fn poll(
        &mut self,
        step: &str,
        path: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<(), ScenarioError> {
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            let answer = self.get(path).await?;
            if answer.status == 200 && done(&answer.body) {
                self.passed(step.to_owned());
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.unexpected(step, format!("after {EVENT_WAIT:?}, got {answer:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> Result<Answer, ScenarioError> {
        let request = self.http.get(format!("{}/{path}", self.base));
        self.send(path, request).await
    }

    async fn post(
        &self,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> Result<Answer, ScenarioError> {
        let mut request = self.http.post(format!("{}/{path}", self.base)).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        self.send(path, request).await
    }

    async fn send(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, ScenarioError> {
        let http = |source| ScenarioError::Http {
            step: format!("/{path}"),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let bytes = response.bytes().await.map_err(http)?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            replayed,
        })
    }

    async fn text(&self, path: &str) -> Result<String, ScenarioError> {
        let http = |source| ScenarioError::Http {
            step: format!("/{path}"),
            source,
        };
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .send()
            .await
            .map_err(http)?;
        response.text().await.map_err(http)
    }

    fn passed(&mut self, check: String) {
        self.report.checks.push(check);
    }

    fn unexpected(&self, step: &str, detail: String) -> ScenarioError {
        ScenarioError::Unexpected {
            step: step.to_owned(),
            detail,
        }
    }
}

/// A `POST /orders` body.
fn order(customer: &Customer, items: Value, card: Option<&str>) -> Value {
    match card {
        Some(card) => json!({"user_id": customer.id, "items": items, "card": card}),
        None => json!({"user_id": customer.id, "items": items}),
    }
}

fn counter(body: &Value, field: &str) -> u64 {
    body[field].as_u64().unwrap_or(0)
}

/// The kinds of the mails in `body`, sorted.
fn mail_kinds(body: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = body
        .as_array()
        .map(|mails| {
            mails
                .iter()
                .filter_map(|m| m["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    kinds.sort();
    kinds
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}
