//! Smoke test of the report: every scenario and figure, local and remote, runs with tiny
//! sizes and yields sane, positive numbers and parseable JSON. No timing assertions: CI
//! machines are noisy.

use actor_core::ActorSystem;
use benches::local::CAPACITY;
use benches::local::ask::{actor_ask, mpsc_ask};
use benches::local::idle::{actor_idle_memory, task_idle_memory};
use benches::local::spawn::{actor_spawn_batch, task_spawn_batch, task_spawn_started_batch};
use benches::local::tell::{TELL_SENDERS, actor_tell, actor_tell_from, mpsc_tell, mpsc_tell_from};
use benches::remote::SENDERS;
use benches::remote::ours::NodePair;
use benches::remote::raw::{RawQuinn, WriteBatching, raw_tell, raw_tell_concurrent};
use benches::report::serving::ServingSide;
use benches::report::{
    FIGURES, Isolation, Measured, PEER_FIGURES, RunConfig, markdown_table, peer_table,
};
use benches::runtime::{build, on_worker};
use serde_json::Value;

#[test]
fn scenarios_return_positive_durations() {
    let rt = build().expect("runtime");
    let system = ActorSystem::new();
    let sys = system.clone();
    on_worker(&rt, async move {
        // A capacity below the message count makes the senders wait for room.
        assert!(
            !actor_tell(&sys, 1_000, 16)
                .await
                .expect("actor tell")
                .is_zero()
        );
        assert!(!mpsc_tell(1_000, 16).await.expect("mpsc tell").is_zero());
        assert!(
            !actor_tell_from(&sys, TELL_SENDERS, 1_000, 16)
                .await
                .expect("actor tell, several senders")
                .is_zero()
        );
        assert!(
            !mpsc_tell_from(TELL_SENDERS, 1_000, 16)
                .await
                .expect("mpsc tell, several senders")
                .is_zero()
        );
        assert!(
            !actor_ask(&sys, 50, CAPACITY)
                .await
                .expect("actor ask")
                .is_zero()
        );
        assert!(!mpsc_ask(50, CAPACITY).await.expect("mpsc ask").is_zero());
        assert!(
            !actor_spawn_batch(50, CAPACITY)
                .await
                .expect("actor spawn")
                .is_zero()
        );
        assert!(
            !task_spawn_batch(50, CAPACITY)
                .await
                .expect("task spawn")
                .is_zero()
        );
        assert!(
            !task_spawn_started_batch(50, CAPACITY)
                .await
                .expect("started")
                .is_zero()
        );
        sys.shutdown().await;
    });
}

#[test]
fn idle_memory_keeps_every_actor_alive_until_read() {
    let rt = build().expect("runtime");
    let ours = on_worker(&rt, actor_idle_memory(500)).expect("actors");
    let raw = on_worker(&rt, task_idle_memory(500, CAPACITY)).expect("tasks");
    for m in [&ours, &raw] {
        assert_eq!(m.count, 500);
        assert!(m.rss_before > 0 && m.rss_after > 0);
        assert!(m.bytes_per_actor().is_finite() && m.bytes_per_actor() >= 0.0);
    }
}

#[test]
fn remote_scenarios_deliver_every_message_on_both_sides() {
    let rt = build().expect("runtime");
    on_worker(&rt, async {
        let pair = NodePair::start().await.expect("two nodes");
        assert_eq!(pair.tell(300).await.expect("ours: tell").delivered, 300);
        let several = pair
            .tell_concurrent(SENDERS, 40)
            .await
            .expect("ours: senders");
        assert_eq!(several.delivered, 40 * SENDERS as u64);
        assert_eq!(pair.latencies(20).await.expect("ours: asks").len(), 20);
        let sent = pair.sender_stats();
        assert!(
            sent.frames_sent >= 300 + 40 * SENDERS as u64 + 20,
            "{sent:?}"
        );
        assert!(sent.frames_per_write() >= 1.0, "{sent:?}");
        pair.shutdown().await;

        let raw = RawQuinn::start().await.expect("raw quinn");
        let mut one = raw.counting_stream().await.expect("raw: stream");
        for batching in [WriteBatching::DEFAULT, WriteBatching::EachFrame] {
            let run = raw_tell(&mut one, 300, batching).await.expect("raw: tell");
            assert_eq!(run.delivered, 300, "{batching:?}");
        }
        let mut streams = Vec::new();
        for _ in 0..SENDERS {
            streams.push(raw.counting_stream().await.expect("raw: stream"));
        }
        let (run, back) = raw_tell_concurrent(streams, 40, WriteBatching::DEFAULT)
            .await
            .expect("raw: senders");
        assert_eq!((run.delivered, back.len()), (40 * SENDERS as u64, SENDERS));
        let mut echo = raw.echo_stream().await.expect("raw: echo stream");
        assert_eq!(echo.latencies(20).await.expect("raw: echoes").len(), 20);
        raw.close().await;
    });
}

#[test]
fn a_serving_child_process_answers_both_clients_and_exits_when_stopped() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_report"));
    let serving = ServingSide::start(&Isolation::ChildProcess(exe)).expect("serving child");
    let addrs = serving.addresses();
    assert!(addrs.node.ip().is_loopback() && addrs.raw.ip().is_loopback());
    let rt = build().expect("runtime");
    on_worker(&rt, async move {
        let pair = NodePair::connect(addrs.node).await.expect("node A");
        assert_eq!(pair.latencies(20).await.expect("asks").len(), 20);
        pair.shutdown().await;
        let raw = RawQuinn::connect(addrs.raw).await.expect("raw client");
        let mut echo = raw.echo_stream().await.expect("raw: echo stream");
        assert_eq!(echo.latencies(20).await.expect("raw: echoes").len(), 20);
        raw.close().await;
    });
    serving.stop().expect("the child exits cleanly once asked");
}

#[test]
fn every_figure_prints_a_parseable_json_line() {
    let config = RunConfig::smoke();
    let mut figures = Vec::new();
    for spec in FIGURES {
        let Measured::Baseline(fig) = spec
            .run(&config)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name))
        else {
            panic!("{}: FIGURES holds baseline figures only", spec.name);
        };
        let line: Value = serde_json::from_str(&fig.json_line()).expect("valid JSON line");
        assert_eq!(line["figure"], spec.name);
        for key in ["ours", "baseline", "ratio"] {
            let v = line[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{}: `{key}` is a number", spec.name));
            assert!(v.is_finite(), "{}: `{key}` is finite", spec.name);
        }
        assert!(fig.ours >= 0.0 && fig.baseline >= 0.0, "{}", spec.name);
        for key in ["unit", "baseline_name", "runtime"] {
            assert!(line[key].is_string(), "{}: `{key}` present", spec.name);
        }
        figures.push(fig);
    }
    let table = markdown_table(&figures);
    assert_eq!(table.lines().count(), 2 + FIGURES.len());
}

/// Runs only with `--features peers` (the list is empty without it).
#[test]
fn every_peer_figure_prints_a_line_per_peer() {
    let config = RunConfig::smoke();
    let mut figures = Vec::new();
    for spec in PEER_FIGURES {
        let Measured::Peers(fig) = spec
            .run(&config)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name))
        else {
            panic!("{}: PEER_FIGURES holds peer figures only", spec.name);
        };
        let lines = fig.json_lines();
        assert_eq!(lines.len(), 3, "{}: ractor, kameo, actix", spec.name);
        for line in lines {
            let line: Value = serde_json::from_str(&line).expect("valid JSON line");
            assert_eq!(line["figure"], spec.name);
            for key in ["ours", "theirs", "ratio"] {
                let v = line[key].as_f64().unwrap_or_else(|| {
                    panic!("{} {}: `{key}` is a number", spec.name, line["peer"])
                });
                assert!(
                    v.is_finite() && v >= 0.0,
                    "{} {}: `{key}`",
                    spec.name,
                    line["peer"]
                );
            }
        }
        figures.push(fig);
    }
    assert_eq!(
        peer_table(&figures).lines().count(),
        (2 + PEER_FIGURES.len()) * usize::from(!PEER_FIGURES.is_empty())
    );
}
