//! Throughput of tells from one sender to one actor, against a raw bounded `mpsc`.
//!
//! Both sides send the payloads `0..n` one after the other, waiting for room when the queue
//! is full, and finish with one round trip through the same queue, so the clock stops only
//! once every message has been handled. The sum is checked.

use std::time::{Duration, Instant};

use actor_core::{ActorSystem, SpawnOptions};

use super::{Add, Counter, RawCounter, Total};
use crate::BenchResult;

/// Messages per run in the benches and the report: 100,000.
pub const TELL_MESSAGES: u64 = 100_000;

/// Ours: spawns a [`Counter`] with a mailbox of `capacity`, times `n` tells and one final
/// ask, and stops it again. Returns the timed part.
///
/// # Errors
/// When the spawn, a tell or the ask fails, or the total is wrong.
pub async fn actor_tell(system: &ActorSystem, n: u64, capacity: usize) -> BenchResult<Duration> {
    let options = SpawnOptions::new().mailbox_capacity(capacity);
    let counter = system.spawn_with(Counter::default(), options).await?;
    let start = Instant::now();
    for i in 0..n {
        counter.tell(Add(i)).await?;
    }
    let total = counter.ask(Total).await?;
    let elapsed = start.elapsed();
    counter.stop();
    check_total(total, n)?;
    Ok(elapsed)
}

/// Baseline: spawns a [`RawCounter`] on a channel of `capacity`, times `n` sends and one
/// `oneshot` round trip, and stops it again. Returns the timed part.
///
/// # Errors
/// When the consumer task ended early or the total is wrong.
pub async fn mpsc_tell(n: u64, capacity: usize) -> BenchResult<Duration> {
    let counter = RawCounter::spawn(capacity);
    let start = Instant::now();
    for i in 0..n {
        counter.add(i).await?;
    }
    let total = counter.total().await?;
    let elapsed = start.elapsed();
    counter.stop().await?;
    check_total(total, n)?;
    Ok(elapsed)
}

fn check_total(total: u64, n: u64) -> BenchResult<()> {
    let expected = (0..n).fold(0u64, u64::wrapping_add);
    if total == expected {
        Ok(())
    } else {
        Err(format!("counter total {total}, expected {expected}: messages were lost").into())
    }
}
