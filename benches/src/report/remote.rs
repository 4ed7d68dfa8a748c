//! The two-node figures over QUIC on loopback: tell throughput from one sender and from
//! [`SENDERS`] senders, and the ask round trip, each against raw quinn in the same run.
//!
//! Each figure starts its two nodes and its raw quinn pair once, on one runtime (the
//! `_2_processes` figures: with node B and the raw server in a child process), and
//! interleaves their rounds; the connections, our lane and the baseline's streams are reused by
//! every round. The tell figures also report the sending node's mean frames per stream write
//! over their rounds (`ours_frames_per_write`, as [`NodeStats::frames_per_write`] counts it)
//! and our bytes on the wire per message.

use std::sync::Arc;

use actor_remote::NodeStats;
use tokio::sync::Mutex;

use super::figure::{round_sig, rounded_samples};
use super::rounds::medians;
use super::serving::ServingSide;
use super::{Better, Figure, RunConfig, Target, interleave};
use crate::BenchResult;
use crate::remote::ours::NodePair;
use crate::remote::raw::{CountingStream, RawQuinn, WriteBatching, raw_tell, raw_tell_concurrent};
use crate::remote::{PAYLOAD_LEN, SENDERS};
use crate::runtime::{RUNTIME_LABEL, build, on_worker};
use crate::stats::{median, ops_per_sec, percentile};

/// Bytes of one baseline frame on the wire: the u32 prefix and the payload.
const RAW_FRAME_BYTES: usize = 4 + PAYLOAD_LEN;

/// `remote_tell_msgs_per_s`: 64-byte tells per second from one sender on node A to an actor on
/// node B, against raw quinn frames on one stream from a buffer-and-flush sender. Target:
/// ratio >= 0.5. Also the baseline with one `write_all` per frame, and our batching.
///
/// # Errors
/// When a scenario fails.
pub fn tell_throughput(config: &RunConfig) -> BenchResult<Figure> {
    let sides = Sides {
        name: "remote_tell_msgs_per_s",
        baseline_name: format!(
            "raw quinn, one stream, {}",
            WriteBatching::DEFAULT.describe()
        ),
        target: Target::RatioAtLeast(0.5),
    };
    in_one_process(|rt, pair, raw| time_tells(config, rt, pair, raw, sides))
}

/// `remote_tell_msgs_per_s_2_processes`: as `remote_tell_msgs_per_s`, with node B and the raw
/// server in a child process (see [`ServingSide`]), as nodes are deployed: each side has its
/// own runtime and its own share of the machine's cores. Informative.
///
/// # Errors
/// When the serving side or a scenario fails.
pub fn tell_throughput_2_processes(config: &RunConfig) -> BenchResult<Figure> {
    let sides = Sides {
        name: "remote_tell_msgs_per_s_2_processes",
        baseline_name: format!(
            "raw quinn, one stream to another process, {}",
            WriteBatching::DEFAULT.describe()
        ),
        target: Target::None,
    };
    across_processes(config, |rt, pair, raw| {
        time_tells(config, rt, pair, raw, sides)
    })
}

/// What tells a figure apart from its twin measured the same way.
struct Sides {
    name: &'static str,
    baseline_name: String,
    target: Target,
}

/// Runs `time` with both nodes and the raw quinn pair started in this process, on one
/// runtime.
fn in_one_process(
    time: impl FnOnce(&tokio::runtime::Runtime, NodePair, RawQuinn) -> BenchResult<Figure>,
) -> BenchResult<Figure> {
    let rt = build()?;
    let pair = on_worker(&rt, NodePair::start())?;
    let raw = on_worker(&rt, RawQuinn::start())?;
    time(&rt, pair, raw)
}

/// Runs `time` with node B and the raw server in the serving side (see [`ServingSide`]) and
/// node A and the raw client here, then notes where the server ran and stops it.
fn across_processes(
    config: &RunConfig,
    time: impl FnOnce(&tokio::runtime::Runtime, NodePair, RawQuinn) -> BenchResult<Figure>,
) -> BenchResult<Figure> {
    let serving = ServingSide::start(&config.isolation)?;
    let addrs = serving.addresses();
    let rt = build()?;
    let pair = on_worker(&rt, NodePair::connect(addrs.node))?;
    let raw = on_worker(&rt, RawQuinn::connect(addrs.raw))?;
    let figure = time(&rt, pair, raw)?.with("server", serving.describe());
    serving.stop()?;
    Ok(figure)
}

/// Interleaves rounds of tells through `pair` and of raw frames on a counting stream of
/// `raw` (buffer-and-flush, and one write per frame), then makes the figure `sides` names.
fn time_tells(
    config: &RunConfig,
    rt: &tokio::runtime::Runtime,
    pair: NodePair,
    raw: RawQuinn,
    sides: Sides,
) -> BenchResult<Figure> {
    let n = config.remote_tell_messages;
    let pair = Arc::new(pair);
    let (raw, stream) = on_worker(rt, async move {
        let stream = raw.counting_stream().await?;
        BenchResult::Ok((raw, Arc::new(Mutex::new(stream))))
    })?;
    let sent_before = pair.sender_stats();
    let mut ours = || {
        let pair = Arc::clone(&pair);
        let run = on_worker(rt, async move { pair.tell(n).await })?;
        Ok(ops_per_sec(run.elapsed, run.delivered))
    };
    let raw_arm = |batching: WriteBatching| {
        let stream = Arc::clone(&stream);
        move || -> BenchResult<f64> {
            let stream = Arc::clone(&stream);
            let run = on_worker(rt, async move {
                raw_tell(&mut *stream.lock().await, n, batching).await
            })?;
            Ok(ops_per_sec(run.elapsed, run.delivered))
        }
    };
    let mut buffered = raw_arm(WriteBatching::DEFAULT);
    let mut each_frame = raw_arm(WriteBatching::EachFrame);
    let samples = interleave(
        config.rounds,
        &mut [&mut ours, &mut buffered, &mut each_frame],
    )?;
    let sent = Sent::between(sent_before, pair.sender_stats());
    drop(stream);
    shutdown(rt, pair, raw);
    let m = medians(&samples);
    let figure = Figure {
        name: sides.name,
        unit: "msgs/s",
        ours: m[0],
        baseline: m[1],
        baseline_name: sides.baseline_name,
        better: Better::Higher,
        target: sides.target,
        runtime: RUNTIME_LABEL,
        capacity: None,
        extra: vec![],
    }
    .with("messages", n)
    .with("payload_bytes", PAYLOAD_LEN)
    .with("rounds", config.rounds)
    .with("ours_samples", rounded_samples(&samples[0]))
    .with("baseline_samples", rounded_samples(&samples[1]))
    .with("baseline_write_per_frame_msgs_per_s", round_sig(m[2]))
    .with("ratio_to_write_per_frame", round_sig(m[0] / m[2]));
    Ok(with_wire_stats(figure, &sent))
}

/// `remote_tell_msgs_per_s_8_senders`: [`SENDERS`] tasks on node A tell the same actor on node
/// B (all through its one lane), against [`SENDERS`] tasks each with its own raw quinn stream
/// on one connection, buffer-and-flush. Informative.
///
/// # Errors
/// When a scenario fails.
pub fn tell_throughput_8_senders(config: &RunConfig) -> BenchResult<Figure> {
    let rt = build()?;
    let per_sender = (config.remote_tell_messages / SENDERS as u64).max(1);
    let n = per_sender * SENDERS as u64;
    let pair = Arc::new(on_worker(&rt, NodePair::start())?);
    let (raw, streams) = on_worker(&rt, async {
        let raw = RawQuinn::start().await?;
        let mut streams = Vec::with_capacity(SENDERS);
        for _ in 0..SENDERS {
            streams.push(raw.counting_stream().await?);
        }
        BenchResult::Ok((raw, Arc::new(Mutex::new(streams))))
    })?;
    let sent_before = pair.sender_stats();
    let mut ours = || {
        let pair = Arc::clone(&pair);
        let run = on_worker(&rt, async move {
            pair.tell_concurrent(SENDERS, per_sender).await
        })?;
        Ok(ops_per_sec(run.elapsed, run.delivered))
    };
    let mut baseline = || {
        let streams = Arc::clone(&streams);
        let run = on_worker(&rt, async move {
            let mut held = streams.lock().await;
            let taken: Vec<CountingStream> = std::mem::take(&mut *held);
            let (run, back) =
                raw_tell_concurrent(taken, per_sender, WriteBatching::DEFAULT).await?;
            *held = back;
            BenchResult::Ok(run)
        })?;
        Ok(ops_per_sec(run.elapsed, run.delivered))
    };
    let samples = interleave(config.rounds, &mut [&mut ours, &mut baseline])?;
    let sent = Sent::between(sent_before, pair.sender_stats());
    shutdown(&rt, pair, raw);
    let m = medians(&samples);
    let figure = Figure {
        name: "remote_tell_msgs_per_s_8_senders",
        unit: "msgs/s",
        ours: m[0],
        baseline: m[1],
        baseline_name: format!(
            "raw quinn, {SENDERS} tasks with a stream each on one connection, {}",
            WriteBatching::DEFAULT.describe()
        ),
        better: Better::Higher,
        target: Target::None,
        runtime: RUNTIME_LABEL,
        capacity: None,
        extra: vec![],
    }
    .with("messages", n)
    .with("senders", SENDERS)
    .with("payload_bytes", PAYLOAD_LEN)
    .with("rounds", config.rounds)
    .with("ours_samples", rounded_samples(&samples[0]))
    .with("baseline_samples", rounded_samples(&samples[1]));
    Ok(with_wire_stats(figure, &sent))
}

/// `remote_ask_rtt_us`: sequential asks carrying 64 bytes from node A to an actor on node B
/// that answers with the same 64 bytes, against a raw quinn echo of one 64-byte frame on one
/// stream, both sides of each in this process. Every round trip is timed; `ours` and
/// `baseline` are the p50 over all rounds. Target: ratio <= 1.5.
///
/// # Errors
/// When a scenario fails.
pub fn ask_round_trip(config: &RunConfig) -> BenchResult<Figure> {
    let sides = Sides {
        name: "remote_ask_rtt_us",
        baseline_name: "raw quinn, one stream, 64-byte frame echoed".into(),
        target: Target::RatioAtMost(1.5),
    };
    in_one_process(|rt, pair, raw| time_asks(config, rt, pair, raw, sides))
}

/// `remote_ask_rtt_us_2_processes`: as `remote_ask_rtt_us`, with node B and the raw echo
/// server in a child process (see [`ServingSide`]), as nodes are deployed: each side's
/// runtime is woken by every packet, which a one-process run can avoid by serving both sides
/// from one worker thread. Informative.
///
/// # Errors
/// When the serving side or a scenario fails.
pub fn ask_round_trip_2_processes(config: &RunConfig) -> BenchResult<Figure> {
    let sides = Sides {
        name: "remote_ask_rtt_us_2_processes",
        baseline_name: "raw quinn, one stream, 64-byte frame echoed by another process".into(),
        target: Target::None,
    };
    across_processes(config, |rt, pair, raw| {
        time_asks(config, rt, pair, raw, sides)
    })
}

/// Interleaves rounds of timed sequential asks through `pair` and echoes on a stream of
/// `raw`, then makes the figure `sides` names from the p50 over all rounds and the details.
fn time_asks(
    config: &RunConfig,
    rt: &tokio::runtime::Runtime,
    pair: NodePair,
    raw: RawQuinn,
    sides: Sides,
) -> BenchResult<Figure> {
    let k = config.remote_round_trips;
    let pair = Arc::new(pair);
    let (raw, stream) = on_worker(rt, async move {
        let stream = raw.echo_stream().await?;
        BenchResult::Ok((raw, Arc::new(Mutex::new(stream))))
    })?;
    let mut ours_all = Vec::new();
    let mut raw_all = Vec::new();
    // Each round's p50 is its sample; the latencies of the measured rounds are pooled.
    let (mut ours_warm, mut raw_warm) = (false, false);
    let mut ours = || {
        let pair = Arc::clone(&pair);
        let lat = on_worker(rt, async move { pair.latencies(k).await })?;
        let p50 = micros(percentile(&lat, 50.0));
        if std::mem::replace(&mut ours_warm, true) {
            ours_all.extend(lat);
        }
        Ok(p50)
    };
    let mut baseline = || {
        let stream = Arc::clone(&stream);
        let lat = on_worker(rt, async move { stream.lock().await.latencies(k).await })?;
        let p50 = micros(percentile(&lat, 50.0));
        if std::mem::replace(&mut raw_warm, true) {
            raw_all.extend(lat);
        }
        Ok(p50)
    };
    let samples = interleave(config.rounds, &mut [&mut ours, &mut baseline])?;
    drop(stream);
    shutdown(rt, pair, raw);
    let p = |lat: &[std::time::Duration], q: f64| round_sig(micros(percentile(lat, q)));
    let mean = |lat: &[std::time::Duration]| {
        round_sig(lat.iter().map(|d| micros(*d)).sum::<f64>() / lat.len().max(1) as f64)
    };
    Ok(Figure {
        name: sides.name,
        unit: "us",
        ours: micros(percentile(&ours_all, 50.0)),
        baseline: micros(percentile(&raw_all, 50.0)),
        baseline_name: sides.baseline_name,
        better: Better::Lower,
        target: sides.target,
        runtime: RUNTIME_LABEL,
        capacity: None,
        extra: vec![],
    }
    .with("round_trips_per_round", k)
    .with("rounds", config.rounds)
    .with("payload_bytes", PAYLOAD_LEN)
    .with("ours_p50_us", p(&ours_all, 50.0))
    .with("ours_p99_us", p(&ours_all, 99.0))
    .with("baseline_p50_us", p(&raw_all, 50.0))
    .with("baseline_p99_us", p(&raw_all, 99.0))
    .with("ours_mean_us", mean(&ours_all))
    .with("baseline_mean_us", mean(&raw_all))
    .with("ours_round_p50_samples", rounded_samples(&samples[0]))
    .with("baseline_round_p50_samples", rounded_samples(&samples[1]))
    .with(
        "ratio_of_medians_of_round_p50s",
        round_sig(median(&samples[0]) / median(&samples[1])),
    ))
}

/// What the sending node wrote over the measured rounds.
#[derive(Debug, Clone, Copy)]
struct Sent {
    frames: u64,
    writes: u64,
    bytes: u64,
}

impl Sent {
    fn between(before: NodeStats, after: NodeStats) -> Self {
        Sent {
            frames: after.frames_sent - before.frames_sent,
            writes: after.writes - before.writes,
            bytes: after.bytes_sent - before.bytes_sent,
        }
    }
}

/// Adds the sending node's batching and wire size over the measured rounds.
fn with_wire_stats(figure: Figure, sent: &Sent) -> Figure {
    let per = |x: u64, y: u64| round_sig(x as f64 / y.max(1) as f64);
    figure
        .with("ours_frames_per_write", per(sent.frames, sent.writes))
        .with("ours_frames_sent", sent.frames)
        .with("ours_writes", sent.writes)
        .with("ours_wire_bytes_per_msg", per(sent.bytes, sent.frames))
        .with("baseline_wire_bytes_per_msg", RAW_FRAME_BYTES)
}

fn shutdown(rt: &tokio::runtime::Runtime, pair: Arc<NodePair>, raw: RawQuinn) {
    on_worker(rt, async move {
        raw.close().await;
        if let Some(pair) = Arc::into_inner(pair) {
            pair.shutdown().await;
        }
    });
}

fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
