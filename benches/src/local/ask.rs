//! Sequential request-reply round trips, against a raw `mpsc` request carrying a `oneshot`.
//!
//! One sender asks, waits for the reply, asks again. Both sides implement [`RoundTrip`], so
//! the timing loops below are the same code for ours and the baseline.

use std::future::Future;
use std::time::{Duration, Instant};

use actor_core::{ActorRef, ActorSystem, SpawnOptions};

use super::{Counter, RawCounter, Total};
use crate::BenchResult;

/// Round trips per timed run in the report: 20,000.
pub const ASK_ROUND_TRIPS: u64 = 20_000;

/// One request and its reply.
pub trait RoundTrip: Send + Sync {
    /// Sends one request and waits for its reply.
    fn round_trip(&self) -> impl Future<Output = BenchResult<u64>> + Send;
}

impl RoundTrip for ActorRef<Counter> {
    async fn round_trip(&self) -> BenchResult<u64> {
        Ok(self.ask(Total).await?)
    }
}

impl RoundTrip for RawCounter {
    async fn round_trip(&self) -> BenchResult<u64> {
        self.total().await
    }
}

/// Spawns the [`Counter`] our side asks, with a mailbox of `capacity`.
///
/// # Errors
/// When the spawn fails.
pub async fn spawn_counter(
    system: &ActorSystem,
    capacity: usize,
) -> BenchResult<ActorRef<Counter>> {
    let options = SpawnOptions::new().mailbox_capacity(capacity);
    Ok(system.spawn_with(Counter::default(), options).await?)
}

/// Times `n` sequential round trips as one batch (no clock read per round trip).
///
/// # Errors
/// The first failed round trip.
pub async fn time_round_trips(target: &impl RoundTrip, n: u64) -> BenchResult<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(target.round_trip().await?);
    }
    Ok(start.elapsed())
}

/// Times each of `n` sequential round trips, for percentiles (two clock reads each).
///
/// # Errors
/// The first failed round trip.
pub async fn round_trip_latencies(target: &impl RoundTrip, n: u64) -> BenchResult<Vec<Duration>> {
    let mut out = Vec::with_capacity(usize::try_from(n)?);
    for _ in 0..n {
        let start = Instant::now();
        std::hint::black_box(target.round_trip().await?);
        out.push(start.elapsed());
    }
    Ok(out)
}

/// Ours: spawns a counter, times `n` asks, stops it. Returns the timed part.
///
/// # Errors
/// When the spawn or an ask fails.
pub async fn actor_ask(system: &ActorSystem, n: u64, capacity: usize) -> BenchResult<Duration> {
    let counter = spawn_counter(system, capacity).await?;
    let elapsed = time_round_trips(&counter, n).await;
    counter.stop();
    elapsed
}

/// Baseline: spawns a raw counter, times `n` request-reply exchanges, stops it.
///
/// # Errors
/// When the consumer task ended early.
pub async fn mpsc_ask(n: u64, capacity: usize) -> BenchResult<Duration> {
    let counter = RawCounter::spawn(capacity);
    let elapsed = time_round_trips(&counter, n).await?;
    counter.stop().await?;
    Ok(elapsed)
}
