//! `demo-shop load`: places orders against a running shop and reports throughput and latency.
//!
//! It registers one user, then `orders` orders of one unit of `product` each, from
//! `concurrency` workers, every order with its own idempotency key. It stops after `orders`
//! orders or `timeout`, whichever comes first (a request in flight then gets at most
//! [`REQUEST_TIMEOUT`] more).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Time-out of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The shop's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// How many orders to place.
    pub orders: u64,
    /// Orders in flight at once (at least 1).
    pub concurrency: usize,
    /// Stop placing orders after this long.
    pub timeout: Duration,
    /// The product each order buys one of.
    pub product: String,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Orders answered 201 (confirmed).
    pub confirmed: u64,
    /// Other answers, by HTTP status.
    pub other_statuses: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer.
    pub transport_errors: u64,
    /// From the first order to the last answer.
    pub elapsed: Duration,
    /// Confirmed orders per second.
    pub orders_per_sec: f64,
    /// Median latency of all answered requests.
    pub p50: Duration,
    /// 99th percentile latency of all answered requests.
    pub p99: Duration,
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The shop did not answer the registration of the load user.
    #[error("cannot reach the shop at {url}: {source}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The shop refused to register the load user.
    #[error("the shop refused the load user: {status} {body}")]
    Register {
        /// The HTTP status.
        status: u16,
        /// The answer.
        body: String,
    },
}

/// Runs the load and reports.
///
/// # Errors
/// [`LoadError`] when the load user cannot be registered; failed orders are counted instead.
pub async fn run(options: LoadOptions) -> Result<LoadReport, LoadError> {
    let base = options.url.trim_end_matches('/').to_owned();
    let concurrency = options.concurrency.max(1);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(LoadError::Client)?;
    let run_id = run_id();
    let user_id = register(&client, &base, &run_id).await?;

    let progress = if options.progress {
        ProgressBar::new(options.orders)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} orders  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let worker = Worker {
            client: client.clone(),
            url: format!("{base}/orders"),
            body: json!({
                "user_id": user_id,
                "items": [{"product_id": options.product, "quantity": 1}],
            }),
            run_id: run_id.clone(),
            next: Arc::clone(&next),
            total: options.orders,
            deadline,
            progress: progress.clone(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    let mut results = Results::default();
    for worker in workers {
        if let Ok(done) = worker.await {
            results.merge(done);
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok(results.report(elapsed))
}

async fn register(client: &reqwest::Client, base: &str, run_id: &str) -> Result<u64, LoadError> {
    let unreachable = |source| LoadError::Unreachable {
        url: base.to_owned(),
        source,
    };
    let response = client
        .post(format!("{base}/users"))
        .json(&json!({"email": format!("load-{run_id}@example.com"), "name": "Load test"}))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.map_err(unreachable)?;
    match body.get("id").and_then(serde_json::Value::as_u64) {
        Some(id) if status == 201 => Ok(id),
        _ => Err(LoadError::Register {
            status,
            body: body.to_string(),
        }),
    }
}

struct Worker {
    client: reqwest::Client,
    url: String,
    body: serde_json::Value,
    run_id: String,
    next: Arc<AtomicU64>,
    total: u64,
    deadline: Instant,
    progress: ProgressBar,
}

impl Worker {
    async fn run(self) -> Results {
        let mut results = Results::default();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.total || Instant::now() >= self.deadline {
                return results;
            }
            let sent = Instant::now();
            let answer = self
                .client
                .post(&self.url)
                .header("idempotency-key", format!("load-{}-{i}", self.run_id))
                .json(&self.body)
                .send()
                .await;
            match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read the body so the connection can be reused.
                    let _ = response.bytes().await;
                    results.latencies.push(sent.elapsed());
                    *results.statuses.entry(status).or_default() += 1;
                }
                Err(_) => results.transport_errors += 1,
            }
            self.progress.inc(1);
        }
    }
}

#[derive(Default)]
struct Results {
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl Results {
    fn merge(&mut self, other: Results) {
        self.latencies.extend(other.latencies);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }

    fn report(mut self, elapsed: Duration) -> LoadReport {
        self.latencies.sort_unstable();
        let confirmed = self.statuses.remove(&201).unwrap_or(0);
        LoadReport {
            confirmed,
            other_statuses: self.statuses,
            transport_errors: self.transport_errors,
            elapsed,
            orders_per_sec: confirmed as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: percentile(&self.latencies, 50),
            p99: percentile(&self.latencies, 99),
        }
    }
}

/// The `p`-th percentile of sorted `values` (nearest rank); zero when empty.
fn percentile(values: &[Duration], p: usize) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank.min(values.len()) - 1]
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} orders confirmed in {:.2} s: {:.0} orders/s",
            self.confirmed,
            self.elapsed.as_secs_f64(),
            self.orders_per_sec
        )?;
        write!(
            f,
            "latency p50 {:.2} ms, p99 {:.2} ms",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )?;
        for (status, n) in &self.other_statuses {
            write!(f, "\n{n} answered {status}")?;
        }
        if self.transport_errors > 0 {
            write!(f, "\n{} got no answer", self.transport_errors)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 99), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
