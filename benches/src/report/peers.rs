//! The peer figures (feature `peers`): ours beside ractor, kameo and actix on the same local
//! scenarios, interleaved in one run, as ratios `ours / theirs`.
//!
//! ractor, kameo and ours run on one Tokio runtime ([`crate::runtime`], 2 workers), each
//! scenario put on a worker the same way. actix cannot: it runs on an [`ActixSystem`] of its
//! own, a System driven by the report's main thread plus one Arbiter thread (two threads, as
//! our two workers), created once per figure and driven only during its own rounds. Its tell and ask are measured in
//! both [`Layout`]s; the table shows the counter on the senders' arbiter (what
//! `Actor::start` does), and the JSON line adds the other layout. Idle memory runs each side
//! in a fresh child process, as the `idle_actor_bytes` figure does.

use actor_core::ActorSystem;
use serde_json::{Value, json};

use super::child::{IDLE_ACTIX_MEMORY, IDLE_ACTOR_MEMORY, IDLE_KAMEO_MEMORY, IDLE_RACTOR_MEMORY};
use super::figure::{round_sig, rounded_samples};
use super::local::shutdown;
use super::peer_figure::{PeerFigure, PeerValue};
use super::rounds::medians;
use super::{Better, RunConfig, interleave};
use crate::BenchResult;
use crate::local::CAPACITY;
use crate::local::ask::actor_ask;
use crate::local::idle::IdleMemory;
use crate::local::spawn::actor_spawn_batch;
use crate::local::tell::{TELL_SENDERS, actor_tell_from};
use crate::peers::actix::{ActixSystem, Layout};
use crate::peers::{actix, kameo, ractor};
use crate::runtime::{RUNTIME_LABEL, build, on_worker};
use crate::stats::{ns_per_op, ops_per_sec};

/// `peer_tell_1_sender_msgs_per_s`: tells per second from one sender to one counter, then
/// one ask for the total, ours and each peer's.
///
/// # Errors
/// When a scenario fails.
pub fn tell_1_sender(config: &RunConfig) -> BenchResult<PeerFigure> {
    tell_figure(config, 1, "peer_tell_1_sender_msgs_per_s")
}

/// `peer_tell_4_senders_msgs_per_s`: the same tells from [`TELL_SENDERS`] concurrent tasks.
///
/// # Errors
/// When a scenario fails.
pub fn tell_4_senders(config: &RunConfig) -> BenchResult<PeerFigure> {
    tell_figure(config, TELL_SENDERS, "peer_tell_4_senders_msgs_per_s")
}

fn tell_figure(config: &RunConfig, senders: usize, name: &'static str) -> BenchResult<PeerFigure> {
    let rt = build()?;
    let actix = ActixSystem::start();
    let system = ActorSystem::new();
    let n = config.tell_messages;
    let rate = |d| ops_per_sec(d, n);
    let mut ours = || {
        let system = system.clone();
        let elapsed = on_worker(&rt, async move {
            actor_tell_from(&system, senders, n, CAPACITY).await
        })?;
        Ok(rate(elapsed))
    };
    let mut ractor = || Ok(rate(on_worker(&rt, ractor::tell(senders, n))?));
    let mut kameo = || Ok(rate(on_worker(&rt, kameo::tell(senders, n, CAPACITY))?));
    let mut actix_one = || {
        Ok(rate(actix.tell(
            Layout::OneArbiter,
            senders,
            n,
            CAPACITY,
        )?))
    };
    let mut actix_own = || {
        Ok(rate(actix.tell(
            Layout::OwnArbiter,
            senders,
            n,
            CAPACITY,
        )?))
    };
    let samples = interleave(
        config.rounds,
        &mut [
            &mut ours,
            &mut ractor,
            &mut kameo,
            &mut actix_one,
            &mut actix_own,
        ],
    )?;
    shutdown(&rt, system);
    actix.stop()?;
    Ok(figure(name, "msgs/s", Better::Higher, &samples, config)
        .with("messages", n)
        .with("senders", senders))
}

/// `peer_ask_rtt_ns`: one sequential ask round trip to a counter, ours and each peer's.
///
/// # Errors
/// When a scenario fails.
pub fn ask_round_trip(config: &RunConfig) -> BenchResult<PeerFigure> {
    let rt = build()?;
    let actix = ActixSystem::start();
    let system = ActorSystem::new();
    let n = config.ask_round_trips;
    let per = |d| ns_per_op(d, n);
    let mut ours = || {
        let system = system.clone();
        Ok(per(on_worker(&rt, async move {
            actor_ask(&system, n, CAPACITY).await
        })?))
    };
    let mut ractor = || Ok(per(on_worker(&rt, ractor::ask(n))?));
    let mut kameo = || Ok(per(on_worker(&rt, kameo::ask(n, CAPACITY))?));
    let mut actix_one = || Ok(per(actix.ask(Layout::OneArbiter, n, CAPACITY)?));
    let mut actix_own = || Ok(per(actix.ask(Layout::OwnArbiter, n, CAPACITY)?));
    let samples = interleave(
        config.rounds,
        &mut [
            &mut ours,
            &mut ractor,
            &mut kameo,
            &mut actix_one,
            &mut actix_own,
        ],
    )?;
    shutdown(&rt, system);
    actix.stop()?;
    Ok(figure("peer_ask_rtt_ns", "ns", Better::Lower, &samples, config).with("round_trips", n))
}

/// `peer_spawn_ns_per_actor`: spawning one idle actor, returning once it has started, ours and
/// each peer's (actix: on the System's arbiter).
///
/// # Errors
/// When a scenario fails.
pub fn spawn_cost(config: &RunConfig) -> BenchResult<PeerFigure> {
    let rt = build()?;
    let actix = ActixSystem::start();
    let n = config.spawn_batch;
    let per = |d| ns_per_op(d, n);
    let mut ours = || Ok(per(on_worker(&rt, actor_spawn_batch(n, CAPACITY))?));
    let mut ractor = || Ok(per(on_worker(&rt, ractor::spawn_batch(n))?));
    let mut kameo = || Ok(per(on_worker(&rt, kameo::spawn_batch(n, CAPACITY))?));
    let mut actix_one = || Ok(per(actix.spawn_batch(n, CAPACITY)?));
    let samples = interleave(
        config.rounds,
        &mut [&mut ours, &mut ractor, &mut kameo, &mut actix_one],
    )?;
    actix.stop()?;
    Ok(figure(
        "peer_spawn_ns_per_actor",
        "ns",
        Better::Lower,
        &samples,
        config,
    )
    .with("batch", n))
}

/// `peer_idle_actor_bytes`: RSS growth per live idle actor, each side in a fresh process with
/// the same number of actors ([`RunConfig::peer_idle_actors`]), net of the harness's handles.
///
/// # Errors
/// When a child run fails.
pub fn idle_memory(config: &RunConfig) -> BenchResult<PeerFigure> {
    let n = config.peer_idle_actors.to_string();
    let run = |task: &str| -> BenchResult<IdleMemory> {
        IdleMemory::from_json(&config.isolation.run(task, std::slice::from_ref(&n))?)
    };
    let ours = run(IDLE_ACTOR_MEMORY)?;
    let sides = [
        run(IDLE_RACTOR_MEMORY)?,
        run(IDLE_KAMEO_MEMORY)?,
        run(IDLE_ACTIX_MEMORY)?,
    ];
    let peers = peer_values(|i| {
        let m = &sides[i];
        (
            m.bytes_per_actor(),
            vec![
                ("theirs_spawn_ns_per_actor", spawn_ns(m)),
                (
                    "harness_bytes_subtracted_per_actor",
                    json!(m.harness_bytes / m.count.max(1) as u64),
                ),
            ],
        )
    });
    Ok(PeerFigure {
        name: "peer_idle_actor_bytes",
        unit: "B",
        better: Better::Lower,
        ours: ours.bytes_per_actor(),
        runtime: RUNTIME_LABEL,
        capacity: Some(CAPACITY),
        peers,
        extra: vec![],
    }
    .with("count", ours.count)
    .with("ours_spawn_ns_per_actor", spawn_ns(&ours)))
}

/// A peer figure from interleaved samples in the arm order of every figure here: ours, ractor,
/// kameo, actix with the counter on the senders' arbiter, and optionally actix with the
/// counter on its own arbiter.
fn figure(
    name: &'static str,
    unit: &'static str,
    better: Better,
    samples: &[Vec<f64>],
    config: &RunConfig,
) -> PeerFigure {
    let m = medians(samples);
    let peers = peer_values(|i| {
        let mut extra = vec![("theirs_samples", rounded_samples(&samples[i + 1]))];
        let own = samples.get(4).filter(|_| i == 2);
        if let Some(own) = own {
            extra.push(("actix_layout", json!(Layout::OneArbiter.describe())));
            extra.push(("theirs_own_arbiter", json!(round_sig(m[4]))));
            extra.push(("ratio_own_arbiter", json!(round_sig(m[0] / m[4]))));
            extra.push(("theirs_own_arbiter_samples", rounded_samples(own)));
        }
        (m[i + 1], extra)
    });
    PeerFigure {
        name,
        unit,
        better,
        ours: m[0],
        runtime: RUNTIME_LABEL,
        capacity: Some(CAPACITY),
        peers,
        extra: vec![],
    }
    .with("rounds", config.rounds)
    .with("ours_samples", rounded_samples(&samples[0]))
}

/// ractor's, kameo's and actix's values, in that order; `value(i)` gives the i-th peer's
/// value and its extra facts.
fn peer_values(
    mut value: impl FnMut(usize) -> (f64, Vec<(&'static str, Value)>),
) -> Vec<PeerValue> {
    let peers = [
        (
            "ractor",
            ractor::VERSION,
            format!("{RUNTIME_LABEL}; unbounded mailbox (ractor has no bounded one)"),
        ),
        (
            "kameo",
            kameo::VERSION,
            format!("{RUNTIME_LABEL}; bounded mailbox, capacity {CAPACITY}"),
        ),
        (
            "actix",
            actix::VERSION,
            format!(
                "actix System + 1 Arbiter (2 single-threaded runtimes); mailbox capacity \
                 {CAPACITY}, which do_send (tell) ignores"
            ),
        ),
    ];
    peers
        .into_iter()
        .enumerate()
        .map(|(i, (peer, version, setup))| {
            let (theirs, extra) = value(i);
            PeerValue {
                peer,
                version,
                theirs,
                setup,
                extra,
            }
        })
        .collect()
}

fn spawn_ns(m: &IdleMemory) -> Value {
    json!(round_sig(ns_per_op(m.spawn_time, m.count as u64)))
}
