//! Memory per idle actor: resident set growth while many of them are alive and waiting.
//!
//! Run each side in a fresh process (the report re-executes itself): an RSS figure taken
//! after another measurement has freed memory would count reused heap as free.
//! The harness's own `Vec` of refs (or senders) is subtracted, so the figure is the cost of
//! the actor (or task) alone. Every kind of actor is measured by the same [`measure_idle`],
//! through its [`Spawner`].

use std::time::{Duration, Instant};

use actor_core::DEFAULT_MAILBOX_CAPACITY;
use serde_json::{Value, json};

use super::spawn::{BareTasks, OurIdleActors, Spawner};
use crate::BenchResult;
use crate::rss::resident_bytes;

/// Idle actors (and bare tasks) alive at once in the full report: 1,000,000.
pub const IDLE_ACTORS: usize = 1_000_000;

/// Every this-many-th actor is pinged before the RSS is read, to show they are alive.
const PING_EVERY: usize = 1_000;

/// What one idle-memory run saw.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleMemory {
    /// Actors (or tasks) alive when the RSS was read.
    pub count: usize,
    /// RSS before the first spawn, in bytes.
    pub rss_before: u64,
    /// RSS with all of them alive, in bytes.
    pub rss_after: u64,
    /// Bytes of the harness's `Vec` of handles, subtracted from the growth.
    pub harness_bytes: u64,
    /// Time to spawn all of them.
    pub spawn_time: Duration,
    /// Time to stop all of them again (system shutdown, or closing every channel and joining).
    pub teardown_time: Duration,
}

impl IdleMemory {
    /// RSS growth per actor, net of the harness's handles.
    pub fn bytes_per_actor(&self) -> f64 {
        let growth = self.rss_after.saturating_sub(self.rss_before);
        growth.saturating_sub(self.harness_bytes) as f64 / self.count.max(1) as f64
    }

    /// As a JSON object (for the report's child processes).
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "rss_before": self.rss_before,
            "rss_after": self.rss_after,
            "harness_bytes": self.harness_bytes,
            "spawn_ns": self.spawn_time.as_nanos() as u64,
            "teardown_ns": self.teardown_time.as_nanos() as u64,
        })
    }

    /// Back from [`to_json`](Self::to_json).
    ///
    /// # Errors
    /// When a field is missing or not a number.
    pub fn from_json(value: &Value) -> BenchResult<Self> {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("idle memory result has no number `{name}`: {value}"))
        };
        Ok(Self {
            count: usize::try_from(field("count")?)?,
            rss_before: field("rss_before")?,
            rss_after: field("rss_after")?,
            harness_bytes: field("harness_bytes")?,
            spawn_time: Duration::from_nanos(field("spawn_ns")?),
            teardown_time: Duration::from_nanos(field("teardown_ns")?),
        })
    }
}

/// Spawns `n` idle actors with `spawner`, pings every 1,000th of them, reads the
/// RSS, then stops them all. The harness's `Vec` of handles is recorded, to be subtracted.
///
/// # Errors
/// When a spawn, a ping or the stopping fails, or the RSS cannot be read.
pub async fn measure_idle<S: Spawner>(mut spawner: S, n: usize) -> BenchResult<IdleMemory> {
    let mut handles = Vec::with_capacity(n);
    let rss_before = resident_bytes()?;
    let start = Instant::now();
    for _ in 0..n {
        handles.push(spawner.spawn().await?);
    }
    let spawn_time = start.elapsed();
    for handle in handles.iter().step_by(PING_EVERY) {
        spawner.ping(handle).await?;
    }
    let rss_after = resident_bytes()?;
    let count = handles.len();
    let harness_bytes = std::mem::size_of_val(handles.as_slice()) as u64;
    let start = Instant::now();
    spawner.stop_all(handles).await?;
    let teardown_time = start.elapsed();
    Ok(IdleMemory {
        count,
        rss_before,
        rss_after,
        harness_bytes,
        spawn_time,
        teardown_time,
    })
}

/// Ours: `n` [`Idle`](super::spawn::Idle) actors with the default mailbox, then the system's
/// shutdown.
///
/// # Errors
/// When a spawn or a ping fails, or the RSS cannot be read.
pub async fn actor_idle_memory(n: usize) -> BenchResult<IdleMemory> {
    measure_idle(OurIdleActors::new(DEFAULT_MAILBOX_CAPACITY), n).await
}

/// Baseline: `n` bare tasks each holding the receiver of a channel of `capacity`; closing
/// every channel and joining the tasks tears them down.
///
/// # Errors
/// When a ping fails or the RSS cannot be read.
pub async fn task_idle_memory(n: usize, capacity: usize) -> BenchResult<IdleMemory> {
    let bare = BareTasks {
        capacity,
        wait_started: false,
    };
    measure_idle(bare, n).await
}
