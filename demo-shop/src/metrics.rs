//! The Prometheus text behind `GET /metrics`.
//!
//! Counters and histograms are recorded where things happen, through the `metrics` facade:
//! `shop_asks_total` and `shop_ask_seconds` (every service call, by message and outcome),
//! `shop_events_published_total`, `http_requests_total` and `http_request_seconds`; the call
//! policies add `actor_calls_total`, `actor_call_retries_total` and `actor_breaker_state`.
//! Figures the framework keeps itself are sampled when scraped: each service's restarts
//! (`shop_service_restarts_total`), mailbox depth and liveness and, in a cluster, the node's
//! transport counters (`node_*`), and the framework's own actor and system counters
//! (`actor_messages_handled_total`, `actor_restarts_total`, `actor_mailbox_depth`,
//! `actor_system_*`; see `actor_core::stats`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::runtime::Process;

/// Bucket bounds of the `_seconds` histograms: 100 µs to 10 s.
const BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0, 10.0,
];

/// Installs the process-wide recorder once; later calls return the same handle.
pub(crate) fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        {
            Ok(builder) => builder.build_recorder(),
            // Only an empty bucket list is refused; summaries then stand in for histograms.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows only sampled figures"
            );
        }
        actor_core::policy::describe_metrics();
        handle
    })
}

/// Samples the framework's figures for `process` and renders everything.
pub(crate) fn render(process: &Process) -> String {
    actor_core::export_metrics(&process.system);
    for (kind, supervisor) in &process.hosted {
        let service = kind.name();
        metrics::counter!("shop_service_restarts_total", "service" => service)
            .absolute(supervisor.restarts());
        let depth = kind.mailbox_len(&process.system).unwrap_or(0);
        metrics::gauge!("shop_service_mailbox_depth", "service" => service).set(depth as f64);
        let up = kind.locate(&process.system).is_some_and(|l| l.alive);
        metrics::gauge!("shop_service_up", "service" => service).set(if up { 1.0 } else { 0.0 });
    }
    if let Some(node) = &process.node {
        let stats = node.stats();
        let counters = [
            ("node_frames_sent_total", stats.frames_sent),
            ("node_frames_received_total", stats.frames_received),
            ("node_bytes_sent_total", stats.bytes_sent),
            ("node_stream_writes_total", stats.writes),
            ("node_tells_dropped_total", stats.tells_dropped),
            (
                "node_asks_failed_node_down_total",
                stats.asks_failed_node_down,
            ),
            ("node_handshakes_refused_total", stats.handshakes_refused),
        ];
        for (name, value) in counters {
            metrics::counter!(name).absolute(value);
        }
        metrics::gauge!("node_peers").set(node.peers().len() as f64);
    }
    let handle = install();
    handle.run_upkeep();
    handle.render()
}
