//! Throughput of tells to one counting actor, from one sender or several, against a raw
//! bounded `mpsc`.
//!
//! Every side sends the payloads `0..n` (split into equal consecutive ranges when there are
//! several senders), waiting for room when the queue is full, and finishes with one round
//! trip through the same queue, so the clock stops only once every message has been handled.
//! The sum is checked. The timing code is [`time_tells`], the same for ours, the baseline and
//! any other [`TellTarget`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_core::{ActorRef, ActorSystem};

use super::ask::{RoundTrip, spawn_counter};
use super::{Add, Counter, RawCounter};
use crate::BenchResult;

/// Messages per run in the benches and the report: 100,000.
pub const TELL_MESSAGES: u64 = 100_000;

/// Concurrent senders of the multi-sender figures: 4.
pub const TELL_SENDERS: usize = 4;

/// A counter that takes tells: ours, the raw baseline, or another framework's actor.
///
/// Its [`RoundTrip`] must answer with the total of every value added before it.
pub trait TellTarget: RoundTrip + 'static {
    /// Adds `value` to the total without waiting for it to be handled (a tell). Waits for
    /// room where the mailbox is bounded.
    fn add(&self, value: u64) -> impl Future<Output = BenchResult<()>> + Send;
}

impl TellTarget for ActorRef<Counter> {
    async fn add(&self, value: u64) -> BenchResult<()> {
        Ok(self.tell(Add(value)).await?)
    }
}

impl TellTarget for RawCounter {
    async fn add(&self, value: u64) -> BenchResult<()> {
        RawCounter::add(self, value).await
    }
}

/// Times `n` tells to `target` from `senders` concurrent tasks (in the calling task when
/// there is one sender), then one round trip for the total, and checks it.
///
/// # Errors
/// When a tell or the round trip fails, a sender task panicked, or the total is wrong.
pub async fn time_tells<T: TellTarget>(
    target: &Arc<T>,
    senders: usize,
    n: u64,
) -> BenchResult<Duration> {
    let senders = senders.max(1);
    let per_sender = n / senders as u64;
    let sent = per_sender * senders as u64;
    let start = Instant::now();
    if senders == 1 {
        send_range(&**target, 0..n).await?;
    } else {
        let tasks: Vec<_> = (0..senders as u64)
            .map(|k| {
                let target = Arc::clone(target);
                tokio::spawn(async move {
                    send_range(&*target, k * per_sender..(k + 1) * per_sender).await
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
    }
    let total = target.round_trip().await?;
    let elapsed = start.elapsed();
    check_total(total, sent)?;
    Ok(elapsed)
}

async fn send_range<T: TellTarget>(target: &T, values: std::ops::Range<u64>) -> BenchResult<()> {
    for i in values {
        target.add(i).await?;
    }
    Ok(())
}

/// Ours: spawns a [`Counter`] with a mailbox of `capacity`, times `n` tells and one final
/// ask, and stops it again. Returns the timed part.
///
/// # Errors
/// When the spawn, a tell or the ask fails, or the total is wrong.
pub async fn actor_tell(system: &ActorSystem, n: u64, capacity: usize) -> BenchResult<Duration> {
    actor_tell_from(system, 1, n, capacity).await
}

/// Ours from `senders` tasks: like [`actor_tell`], the `n` tells split between them.
///
/// # Errors
/// When the spawn, a tell or the ask fails, or the total is wrong.
pub async fn actor_tell_from(
    system: &ActorSystem,
    senders: usize,
    n: u64,
    capacity: usize,
) -> BenchResult<Duration> {
    let counter = Arc::new(spawn_counter(system, capacity).await?);
    let elapsed = time_tells(&counter, senders, n).await;
    counter.stop();
    elapsed
}

/// Baseline: spawns a [`RawCounter`] on a channel of `capacity`, times `n` sends and one
/// `oneshot` round trip, and stops it again. Returns the timed part.
///
/// # Errors
/// When the consumer task ended early or the total is wrong.
pub async fn mpsc_tell(n: u64, capacity: usize) -> BenchResult<Duration> {
    mpsc_tell_from(1, n, capacity).await
}

/// Baseline from `senders` tasks, each with a clone of the channel's sender: like
/// [`mpsc_tell`], the `n` sends split between them.
///
/// # Errors
/// When the consumer task ended early or the total is wrong.
pub async fn mpsc_tell_from(senders: usize, n: u64, capacity: usize) -> BenchResult<Duration> {
    let counter = Arc::new(RawCounter::spawn(capacity));
    let elapsed = time_tells(&counter, senders, n).await?;
    Arc::into_inner(counter)
        .ok_or("a sender task still holds the raw counter")?
        .stop()
        .await?;
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
