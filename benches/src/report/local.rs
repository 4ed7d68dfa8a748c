//! The in-process figures: tell throughput (one sender and several), ask round trip, spawn
//! cost, idle memory.

use actor_core::ActorSystem;

use super::child::{IDLE_ACTOR_MEMORY, IDLE_TASK_MEMORY};
use super::figure::{round_sig, rounded_samples};
use super::rounds::medians;
use super::{Better, Figure, RunConfig, Target, interleave};
use crate::BenchResult;
use crate::local::CAPACITY;
use crate::local::RawCounter;
use crate::local::ask::{actor_ask, mpsc_ask, round_trip_latencies, spawn_counter};
use crate::local::idle::IdleMemory;
use crate::local::spawn::{actor_spawn_batch, task_spawn_batch, task_spawn_started_batch};
use crate::local::tell::{TELL_SENDERS, actor_tell_from, mpsc_tell_from};
use crate::runtime::{RUNTIME_LABEL, build, on_worker};
use crate::stats::{ns_per_op, ops_per_sec, percentile};

/// `local_tell_msgs_per_s`: tells per second from one sender to one counter actor, against a
/// raw bounded mpsc of the same capacity. Target: ratio >= 0.8.
///
/// # Errors
/// When a scenario fails.
pub fn tell_throughput(config: &RunConfig) -> BenchResult<Figure> {
    tell_figure(config, 1)
}

/// `local_tell_msgs_per_s_4_senders`: the same tells from [`TELL_SENDERS`] concurrent tasks
/// to one counter actor, against as many tasks sending on clones of one raw bounded mpsc.
/// Informative.
///
/// # Errors
/// When a scenario fails.
pub fn tell_throughput_4_senders(config: &RunConfig) -> BenchResult<Figure> {
    tell_figure(config, TELL_SENDERS)
}

fn tell_figure(config: &RunConfig, senders: usize) -> BenchResult<Figure> {
    let rt = build()?;
    let system = ActorSystem::new();
    let n = config.tell_messages;
    let mut ours = || {
        let system = system.clone();
        let elapsed = on_worker(&rt, async move {
            actor_tell_from(&system, senders, n, CAPACITY).await
        })?;
        Ok(ops_per_sec(elapsed, n))
    };
    let mut raw = || {
        let elapsed = on_worker(&rt, mpsc_tell_from(senders, n, CAPACITY))?;
        Ok(ops_per_sec(elapsed, n))
    };
    let samples = interleave(config.rounds, &mut [&mut ours, &mut raw])?;
    shutdown(&rt, system);
    let m = medians(&samples);
    let (name, baseline_name, target) = if senders == 1 {
        (
            "local_tell_msgs_per_s",
            "tokio mpsc bounded + consumer task".to_string(),
            Target::RatioAtLeast(0.8),
        )
    } else {
        (
            "local_tell_msgs_per_s_4_senders",
            format!("tokio mpsc bounded, {senders} sender tasks + consumer task"),
            Target::None,
        )
    };
    Ok(Figure {
        name,
        unit: "msgs/s",
        ours: m[0],
        baseline: m[1],
        baseline_name,
        better: Better::Higher,
        target,
        runtime: RUNTIME_LABEL,
        capacity: Some(CAPACITY),
        extra: vec![],
    }
    .with("messages", n)
    .with("senders", senders)
    .with("rounds", config.rounds)
    .with("ours_samples", rounded_samples(&samples[0]))
    .with("baseline_samples", rounded_samples(&samples[1])))
}

/// `local_ask_rtt_ns`: one sequential ask round trip, against a raw mpsc request carrying a
/// oneshot. Target: ratio <= 1.3. Also p50 / p99 of individually timed round trips.
///
/// # Errors
/// When a scenario fails.
pub fn ask_round_trip(config: &RunConfig) -> BenchResult<Figure> {
    let rt = build()?;
    let system = ActorSystem::new();
    let n = config.ask_round_trips;
    let mut ours = || {
        let system = system.clone();
        let elapsed = on_worker(&rt, async move { actor_ask(&system, n, CAPACITY).await })?;
        Ok(ns_per_op(elapsed, n))
    };
    let mut raw = || Ok(ns_per_op(on_worker(&rt, mpsc_ask(n, CAPACITY))?, n));
    let samples = interleave(config.rounds, &mut [&mut ours, &mut raw])?;

    let k = config.ask_latency_samples;
    let sys = system.clone();
    let ours_lat = on_worker(&rt, async move {
        let counter = spawn_counter(&sys, CAPACITY).await?;
        let lat = round_trip_latencies(&counter, k).await;
        counter.stop();
        lat
    })?;
    let raw_lat = on_worker(&rt, async move {
        let counter = RawCounter::spawn(CAPACITY);
        let lat = round_trip_latencies(&counter, k).await?;
        counter.stop().await?;
        BenchResult::Ok(lat)
    })?;
    shutdown(&rt, system);
    let ns = |d: std::time::Duration| d.as_nanos() as u64;
    let m = medians(&samples);
    Ok(Figure {
        name: "local_ask_rtt_ns",
        unit: "ns",
        ours: m[0],
        baseline: m[1],
        baseline_name: "tokio mpsc bounded + oneshot reply".into(),
        better: Better::Lower,
        target: Target::RatioAtMost(1.3),
        runtime: RUNTIME_LABEL,
        capacity: Some(CAPACITY),
        extra: vec![],
    }
    .with("round_trips", n)
    .with("rounds", config.rounds)
    .with("ours_samples", rounded_samples(&samples[0]))
    .with("baseline_samples", rounded_samples(&samples[1]))
    .with("latency_samples", k)
    .with("ours_p50_ns", ns(percentile(&ours_lat, 50.0)))
    .with("ours_p99_ns", ns(percentile(&ours_lat, 99.0)))
    .with("baseline_p50_ns", ns(percentile(&raw_lat, 50.0)))
    .with("baseline_p99_ns", ns(percentile(&raw_lat, 99.0))))
}

/// `spawn_ns_per_actor`: spawning one actor (returning once it started), against a bare
/// `tokio::spawn` of a task owning a fresh channel's receiver. Informative; the extra
/// `baseline_started_ns` adds to the baseline the start hand-shake our spawn promises.
///
/// # Errors
/// When a scenario fails.
pub fn spawn_cost(config: &RunConfig) -> BenchResult<Figure> {
    let rt = build()?;
    let n = config.spawn_batch;
    let mut ours = || {
        Ok(ns_per_op(
            on_worker(&rt, actor_spawn_batch(n, CAPACITY))?,
            n,
        ))
    };
    let mut bare = || Ok(ns_per_op(on_worker(&rt, task_spawn_batch(n, CAPACITY))?, n));
    let mut started = || {
        Ok(ns_per_op(
            on_worker(&rt, task_spawn_started_batch(n, CAPACITY))?,
            n,
        ))
    };
    let samples = interleave(config.rounds, &mut [&mut ours, &mut bare, &mut started])?;
    let m = medians(&samples);
    Ok(Figure {
        name: "spawn_ns_per_actor",
        unit: "ns",
        ours: m[0],
        baseline: m[1],
        baseline_name: "tokio::spawn + mpsc channel".into(),
        better: Better::Lower,
        target: Target::None,
        runtime: RUNTIME_LABEL,
        capacity: Some(CAPACITY),
        extra: vec![],
    }
    .with("batch", n)
    .with("rounds", config.rounds)
    .with("ours_samples", rounded_samples(&samples[0]))
    .with("baseline_samples", rounded_samples(&samples[1]))
    .with("baseline_started_ns", round_sig(m[2]))
    .with("ratio_vs_started", round_sig(m[0] / m[2])))
}

/// `idle_actor_bytes`: RSS growth per live idle actor, each side in a fresh process, against
/// bare tasks holding a channel receiver. Target: <= 1024 bytes per actor.
///
/// # Errors
/// When a child run fails.
pub fn idle_memory(config: &RunConfig) -> BenchResult<Figure> {
    let n = config.idle_actors.to_string();
    let ours = IdleMemory::from_json(
        &config
            .isolation
            .run(IDLE_ACTOR_MEMORY, std::slice::from_ref(&n))?,
    )?;
    let raw = IdleMemory::from_json(&config.isolation.run(IDLE_TASK_MEMORY, &[n])?)?;
    let per = |m: &IdleMemory, d: std::time::Duration| round_sig(ns_per_op(d, m.count as u64));
    Ok(Figure {
        name: "idle_actor_bytes",
        unit: "B",
        ours: ours.bytes_per_actor(),
        baseline: raw.bytes_per_actor(),
        baseline_name: "bare tokio task holding an mpsc receiver".into(),
        better: Better::Lower,
        target: Target::OursAtMost(1024.0),
        runtime: RUNTIME_LABEL,
        capacity: Some(CAPACITY),
        extra: vec![],
    }
    .with("count", ours.count)
    .with("isolation", isolation_name(&config.isolation))
    .with(
        "ours_rss_growth_mib",
        mib(ours.rss_after.saturating_sub(ours.rss_before)),
    )
    .with(
        "baseline_rss_growth_mib",
        mib(raw.rss_after.saturating_sub(raw.rss_before)),
    )
    .with(
        "harness_bytes_subtracted_per_actor",
        ours.harness_bytes / ours.count.max(1) as u64,
    )
    .with("ours_spawn_ns_per_actor", per(&ours, ours.spawn_time))
    .with("baseline_spawn_ns_per_task", per(&raw, raw.spawn_time))
    .with("ours_shutdown_ns_per_actor", per(&ours, ours.teardown_time))
    .with(
        "baseline_teardown_ns_per_task",
        per(&raw, raw.teardown_time),
    ))
}

/// Shuts `system` down on a worker of `rt`.
pub(super) fn shutdown(rt: &tokio::runtime::Runtime, system: ActorSystem) {
    on_worker(rt, async move { system.shutdown().await });
}

fn mib(bytes: u64) -> f64 {
    round_sig(bytes as f64 / (1024.0 * 1024.0))
}

fn isolation_name(isolation: &super::Isolation) -> &'static str {
    match isolation {
        super::Isolation::ChildProcess(_) => "child process per side",
        super::Isolation::InProcess => "in process (smoke test; numbers not meaningful)",
    }
}
