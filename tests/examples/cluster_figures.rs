//! Cluster figures of `test-node` processes on 127.0.0.1, printed as JSON lines on stdout
//! (one object per figure, `figure` and `ours` first, like the benches report); progress
//! goes to stderr.
//!
//! | figure | what is measured |
//! | --- | --- |
//! | `cluster_down_detected_everywhere_ms` | from `kill -9` of a member to the last other member's `Down` event; median of `--runs` |
//! | `cluster_down_detected_first_ms` | the same, to the first other member's `Down` event |
//! | `cluster_name_resolvable_everywhere_ms` | from a new node having served its name to the last other member able to look it up; median of `--runs` |
//! | `cluster_name_resolvable_from_spawn_ms` | the same, from spawning the new node's process |
//! | `membership_packets_per_node_per_s` | SWIM packets a node sends per second in steady state (mean over the nodes), at each `--sizes` |
//! | `membership_bytes_per_node_per_s` | their bytes |
//!
//! A cluster of N members is N−1 `test-node` processes plus this process's own node, all
//! with the same membership timing (`--probe-period-ms`, `--probe-rtt-ms`,
//! `--suspect-to-down-ms`; the test defaults 100/50/500 unless given). Event times are
//! wall-clock stamps taken in the process that saw the event (same machine, same clock), so
//! no polling delay is added to them; a look-up is tried every millisecond.
//!
//! ```text
//! cargo build -p tests --bins --examples --release
//! target/release/examples/cluster_figures [--runs 7] [--steady-secs 10] [--sizes 3,10]
//! ```
//! The `test-node` binary is looked for next to the `examples` directory (`--test-node`
//! overrides).

use std::path::PathBuf;
use std::time::Duration;

use actor_remote::Node;
use clap::Parser;
use serde_json::{Value, json};
use tests::cluster::{
    AwaitName, GetCounters, GetMemberChanges, GetServingSince, ProcessCluster, TESTER, Where,
    eventually, unix_micros,
};
use tests::node_args::{
    DEFAULT_PROBE_PERIOD_MS, DEFAULT_PROBE_RTT_MS, DEFAULT_SUSPECT_TO_DOWN_MS, NodeArgs,
};

/// The design's failure-detection target.
const DOWN_TARGET_MS: f64 = 3_000.0;
const SECRET: &str = "cluster figures secret";
/// How long any one step may take before the run is abandoned.
const STEP: Duration = Duration::from_secs(20);

/// Measures failure detection, name propagation and membership traffic.
#[derive(Debug, Parser)]
struct Args {
    /// Kill/restart runs and new-node runs (each figure is their median).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Seconds of steady state over which traffic is counted.
    #[arg(long, default_value_t = 10)]
    steady_secs: u64,
    /// Cluster sizes (members, this process's node included) to count traffic at.
    #[arg(long, value_delimiter = ',', default_value = "3,10")]
    sizes: Vec<usize>,
    /// SWIM probe period.
    #[arg(long, default_value_t = DEFAULT_PROBE_PERIOD_MS)]
    probe_period_ms: u64,
    /// SWIM direct-probe wait.
    #[arg(long, default_value_t = DEFAULT_PROBE_RTT_MS)]
    probe_rtt_ms: u64,
    /// SWIM suspicion time-out.
    #[arg(long, default_value_t = DEFAULT_SUSPECT_TO_DOWN_MS)]
    suspect_to_down_ms: u64,
    /// The `test-node` binary (default: next to the `examples` directory).
    #[arg(long)]
    test_node: Option<PathBuf>,
}

impl Args {
    fn node(&self, name: &str) -> NodeArgs {
        NodeArgs::new(name, SECRET).membership_timing(
            self.probe_period_ms,
            self.probe_rtt_ms,
            self.suspect_to_down_ms,
        )
    }

    /// The facts every figure carries.
    fn context(&self, nodes: usize) -> Vec<(&'static str, Value)> {
        vec![
            ("nodes", json!(nodes)),
            ("probe_period_ms", json!(self.probe_period_ms)),
            ("probe_rtt_ms", json!(self.probe_rtt_ms)),
            ("suspect_to_down_ms", json!(self.suspect_to_down_ms)),
            (
                "profile",
                json!(if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }),
            ),
        ]
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let program = match &args.test_node {
        Some(path) => path.clone(),
        None => default_test_node()?,
    };
    if !program.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build -p tests --bins)",
            program.display()
        )
        .into());
    }

    let nodes = ["a", "b", "c"].map(|n| args.node(n)).to_vec();
    let mut cluster = ProcessCluster::start(program.as_path(), nodes).await;
    detection(&args, &mut cluster).await;
    resolution(&args, &mut cluster).await;
    cluster.shutdown().await;

    for &size in &args.sizes {
        traffic(&args, &program, size).await;
    }
    Ok(())
}

/// `target/<profile>/test-node`, for an example in `target/<profile>/examples/`.
fn default_test_node() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or_else(|| std::io::Error::other("the example has no profile directory"))?;
    Ok(profile_dir.join(format!("test-node{}", std::env::consts::EXE_SUFFIX)))
}

/// Kills `b` and `c` in turn, times their `Down` on every other member, restarts them.
async fn detection(args: &Args, cluster: &mut ProcessCluster) {
    let (mut everywhere, mut first) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let victim = if run % 2 == 0 { "c" } else { "b" };
        let observers: Vec<String> = cluster
            .all_names()
            .into_iter()
            .filter(|n| n != victim)
            .collect();
        let addr = cluster.child(victim).addr();
        let killed_at = unix_micros();
        if let Err(e) = cluster.child_mut(victim).kill().await {
            panic!("kill -9 {victim}: {e}");
        }
        let mut seen = Vec::new();
        for observer in &observers {
            let what = format!("{observer} to log {victim} down");
            let at = eventually(&what, STEP, async || {
                let changes = if observer == TESTER {
                    cluster.tester_changes().snapshot()
                } else {
                    cluster.try_inspect(observer, GetMemberChanges).await.ok()?
                };
                changes
                    .into_iter()
                    .find(|c| {
                        c.node == victim
                            && c.state == actor_remote::MemberState::Down
                            && c.at_unix_micros >= killed_at
                    })
                    .map(|c| c.at_unix_micros)
            })
            .await;
            seen.push(ms_between(killed_at, at));
        }
        let last = seen.iter().copied().fold(0.0, f64::max);
        let earliest = seen.iter().copied().fold(f64::INFINITY, f64::min);
        eprintln!(
            "run {run}: {victim} down everywhere after {last:.0} ms (first {earliest:.0} ms)"
        );
        everywhere.push(last);
        first.push(earliest);

        cluster.add(args.node(victim).listen(addr)).await;
        cluster.until_converged(STEP).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let nodes = cluster.all_names().len();
    emit(
        "cluster_down_detected_everywhere_ms",
        &everywhere,
        Some(DOWN_TARGET_MS),
        args.context(nodes),
    );
    emit(
        "cluster_down_detected_first_ms",
        &first,
        None,
        args.context(nodes),
    );
}

/// Starts a new node serving a fresh name, times until every other member can look it up,
/// and lets it leave again.
async fn resolution(args: &Args, cluster: &mut ProcessCluster) {
    let (mut from_serving, mut from_spawn) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let (newcomer, name) = (format!("n{run}"), format!("fresh-{run}"));
        let mut waiters = tokio::task::JoinSet::new();
        for member in cluster.child_names() {
            let inspector = cluster.inspector(&member).await;
            let wait = AwaitName {
                name: name.clone(),
                timeout_ms: STEP.as_millis() as u64,
            };
            waiters.spawn(async move { inspector.ask_timeout(wait, STEP).await.ok().flatten() });
        }
        waiters.spawn(until_resolvable(cluster.tester().clone(), name.clone()));

        let spawned_at = unix_micros();
        cluster.add(args.node(&newcomer).serve(&name)).await;
        let serving_since = cluster.inspect(&newcomer, GetServingSince).await;
        let mut last = 0;
        while let Some(found) = waiters.join_next().await {
            match found {
                Ok(Some(at)) => last = last.max(at),
                _ => panic!("{name} did not become resolvable everywhere"),
            }
        }
        let (served, spawned) = (
            ms_between(serving_since, last),
            ms_between(spawned_at, last),
        );
        eprintln!(
            "run {run}: {name} resolvable everywhere {served:.0} ms after it was served ({spawned:.0} ms after spawn)"
        );
        from_serving.push(served);
        from_spawn.push(spawned);

        if let Some(mut gone) = cluster.remove(&newcomer) {
            let _ = gone.stop(STEP).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let nodes = cluster.all_names().len() + 1;
    emit(
        "cluster_name_resolvable_everywhere_ms",
        &from_serving,
        None,
        args.context(nodes),
    );
    emit(
        "cluster_name_resolvable_from_spawn_ms",
        &from_spawn,
        None,
        args.context(nodes),
    );
}

/// When (Unix µs) `node` can look up `name`, trying every millisecond.
async fn until_resolvable(node: Node, name: String) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + STEP;
    while tokio::time::Instant::now() < deadline {
        if node.lookup::<Where>(&name).is_ok() {
            return Some(unix_micros());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// Counts each member's membership packets and bytes over the steady state of a cluster of
/// `size` members.
async fn traffic(args: &Args, program: &std::path::Path, size: usize) {
    let nodes = (1..size).map(|i| args.node(&format!("m{i}"))).collect();
    let cluster = ProcessCluster::start(program, nodes).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = counters(&cluster).await;
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(args.steady_secs)).await;
    let after = counters(&cluster).await;
    let secs = started.elapsed().as_secs_f64();
    cluster.shutdown().await;

    let rate = |f: fn(&(u64, u64)) -> u64| -> Vec<f64> {
        before
            .iter()
            .zip(&after)
            .map(|(b, a)| (f(a) - f(b)) as f64 / secs)
            .collect()
    };
    let packets = rate(|c| c.0);
    let bytes = rate(|c| c.1);
    eprintln!(
        "{size} nodes: {:.1} packets/s, {:.0} bytes/s per node",
        mean(&packets),
        mean(&bytes)
    );
    for (figure, unit, rates) in [
        ("membership_packets_per_node_per_s", "packets/s", &packets),
        ("membership_bytes_per_node_per_s", "bytes/s", &bytes),
    ] {
        let mut fields = vec![
            ("figure", json!(figure)),
            ("ours", json!(round(mean(rates)))),
            ("unit", json!(unit)),
            ("stat", json!("mean over nodes")),
            (
                "min",
                json!(round(rates.iter().copied().fold(f64::INFINITY, f64::min))),
            ),
            (
                "max",
                json!(round(rates.iter().copied().fold(0.0, f64::max))),
            ),
            ("steady_secs", json!(round(secs))),
        ];
        fields.extend(args.context(size));
        println!("{}", line(&fields));
    }
}

/// (membership packets, membership bytes) sent so far by every member, test node first.
async fn counters(cluster: &ProcessCluster) -> Vec<(u64, u64)> {
    let stats = cluster.tester().stats();
    let mut all = vec![(stats.membership_packets_sent, stats.membership_bytes_sent)];
    for child in cluster.child_names() {
        let c = cluster.inspect(&child, GetCounters).await;
        all.push((c.membership_packets_sent, c.membership_bytes_sent));
    }
    all
}

/// Prints a timing figure: the median of `samples` with their spread.
fn emit(
    figure: &str,
    samples: &[f64],
    target_ms: Option<f64>,
    context: Vec<(&'static str, Value)>,
) {
    let median = median(samples);
    let mut fields = vec![
        ("figure", json!(figure)),
        ("ours", json!(round(median))),
        ("unit", json!("ms")),
        ("stat", json!("median")),
        ("target", json!(target_ms.map(|t| format!("<= {t}")))),
        ("met", json!(target_ms.map(|t| median <= t))),
        (
            "min",
            json!(round(samples.iter().copied().fold(f64::INFINITY, f64::min))),
        ),
        (
            "max",
            json!(round(samples.iter().copied().fold(0.0, f64::max))),
        ),
        (
            "samples",
            json!(samples.iter().map(|s| round(*s)).collect::<Vec<_>>()),
        ),
    ];
    fields.extend(context);
    println!("{}", line(&fields));
}

/// A JSON object with its keys in the order given.
fn line(fields: &[(&str, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", json!(key)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn ms_between(from_micros: u64, to_micros: u64) -> f64 {
    to_micros.saturating_sub(from_micros) as f64 / 1_000.0
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Rounded to one decimal.
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
