//! Criterion view of the remote figures: the group `remote` holds, for each scenario, ours
//! (two nodes in this process) beside raw quinn (a plain server and client), on the same
//! runtime (Tokio multi-thread, 2 workers), over 127.0.0.1:
//!
//! | id | ours | raw quinn |
//! | --- | --- | --- |
//! | `remote/tell 64 B/..` | tells from one task, then one ask for the count | one stream, buffer-and-flush every 64 KiB, then a count request |
//! | `remote/tell 64 B 8 senders/..` | 8 tasks tell the same actor | 8 tasks with a stream each on one connection |
//! | `remote/ask 64 B/..` | sequential asks carrying 64 bytes, echoed | sequential 64-byte frames, echoed |
//! The scenario code is the `benches`
//! library's, shared with the report binary; nodes, connections and streams are set up once
//! and reused by every iteration.
//!
//! `cargo bench -p benches --bench remote` (about a minute);
//! `cargo bench -p benches --bench remote -- "remote/ask 64 B"` for one pair.

use std::sync::Arc;
use std::time::Duration;

use benches::remote::ours::NodePair;
use benches::remote::raw::{
    CountingStream, EchoStream, RawQuinn, WriteBatching, raw_tell, raw_tell_concurrent,
};
use benches::remote::{SENDERS, TELL_MESSAGES};
use benches::runtime::{self, on_worker};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

/// Tells per criterion iteration: a tenth of a report round, so one iteration is ~20-200 ms.
const TELLS: u64 = TELL_MESSAGES / 10;

/// The raw side, held open for the whole group.
struct Raw {
    quinn: RawQuinn,
    one: Arc<Mutex<CountingStream>>,
    several: Arc<Mutex<Vec<CountingStream>>>,
    echo: Arc<Mutex<EchoStream>>,
}

impl Raw {
    async fn start() -> benches::BenchResult<Self> {
        let quinn = RawQuinn::start().await?;
        let one = quinn.counting_stream().await?;
        let mut several = Vec::with_capacity(SENDERS);
        for _ in 0..SENDERS {
            several.push(quinn.counting_stream().await?);
        }
        let echo = quinn.echo_stream().await?;
        Ok(Raw {
            quinn,
            one: Arc::new(Mutex::new(one)),
            several: Arc::new(Mutex::new(several)),
            echo: Arc::new(Mutex::new(echo)),
        })
    }
}

/// Runs `iters` tell rounds of `per_round` messages each and sums their timed parts.
fn tell_rounds<F, Fut>(rt: &Runtime, iters: u64, mut round: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = benches::BenchResult<Duration>> + Send + 'static,
{
    (0..iters)
        .map(|_| on_worker(rt, round()).expect("tell round"))
        .sum()
}

fn remote(c: &mut Criterion) {
    let rt = runtime::build().expect("build the benchmark runtime");
    let pair = Arc::new(on_worker(&rt, NodePair::start()).expect("start two nodes"));
    let raw = on_worker(&rt, Raw::start()).expect("start raw quinn");
    let several_senders = format!("tell 64 B {SENDERS} senders");
    let mut group = c.benchmark_group("remote");
    // One tell iteration is a whole round of TELLS messages: flat sampling keeps the count
    // of rounds within the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(TELLS));

    group.bench_function(BenchmarkId::new("tell 64 B", "ours"), |b| {
        b.iter_custom(|iters| {
            tell_rounds(&rt, iters, || {
                let pair = Arc::clone(&pair);
                async move { Ok(pair.tell(TELLS).await?.elapsed) }
            })
        })
    });
    group.bench_function(BenchmarkId::new("tell 64 B", "raw quinn"), |b| {
        b.iter_custom(|iters| {
            tell_rounds(&rt, iters, || {
                let one = Arc::clone(&raw.one);
                async move {
                    let mut stream = one.lock().await;
                    Ok(raw_tell(&mut stream, TELLS, WriteBatching::DEFAULT)
                        .await?
                        .elapsed)
                }
            })
        })
    });
    group.bench_function(BenchmarkId::new(several_senders.as_str(), "ours"), |b| {
        b.iter_custom(|iters| {
            tell_rounds(&rt, iters, || {
                let pair = Arc::clone(&pair);
                let per_sender = TELLS / SENDERS as u64;
                async move { Ok(pair.tell_concurrent(SENDERS, per_sender).await?.elapsed) }
            })
        })
    });
    group.bench_function(
        BenchmarkId::new(several_senders.as_str(), "raw quinn"),
        |b| {
            b.iter_custom(|iters| {
                tell_rounds(&rt, iters, || {
                    let several = Arc::clone(&raw.several);
                    let per_sender = TELLS / SENDERS as u64;
                    async move {
                        let mut held = several.lock().await;
                        let streams = std::mem::take(&mut *held);
                        let (run, back) =
                            raw_tell_concurrent(streams, per_sender, WriteBatching::DEFAULT)
                                .await?;
                        *held = back;
                        Ok(run.elapsed)
                    }
                })
            })
        },
    );

    group.sampling_mode(SamplingMode::Auto);
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("ask 64 B", "ours"), |b| {
        b.iter_custom(|iters| {
            let pair = Arc::clone(&pair);
            on_worker(&rt, async move {
                let start = std::time::Instant::now();
                for i in 0..iters {
                    pair.round_trip(i).await.expect("ask");
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(BenchmarkId::new("ask 64 B", "raw quinn"), |b| {
        b.iter_custom(|iters| {
            let echo = Arc::clone(&raw.echo);
            on_worker(&rt, async move {
                let mut echo = echo.lock().await;
                let start = std::time::Instant::now();
                for i in 0..iters {
                    echo.round_trip(i).await.expect("echo");
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    on_worker(&rt, async move {
        raw.quinn.close().await;
        if let Some(pair) = Arc::into_inner(pair) {
            pair.shutdown().await;
        }
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

fn main() {
    // By hand rather than `criterion_group!`, whose generated function has no doc comment.
    let mut criterion = config();
    remote(&mut criterion);
    criterion.final_summary();
}
