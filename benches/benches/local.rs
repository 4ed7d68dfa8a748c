//! Criterion view of the local figures: each group holds our figure and its raw baseline,
//! on the same runtime (Tokio multi-thread, 2 workers, built once per group), with the same
//! capacity. The scenario code is the `benches` library's, shared with the report binary.
//!
//! `cargo bench -p benches` (a few minutes); `cargo bench -p benches -- local_ask` for one group.

use std::time::Duration;

use actor_core::ActorSystem;
use benches::local::CAPACITY;
use benches::local::ask::{actor_ask, mpsc_ask};
use benches::local::spawn::{SPAWN_BATCH, actor_spawn_batch, task_spawn_batch};
use benches::local::tell::{TELL_MESSAGES, actor_tell, mpsc_tell};
use benches::runtime::{self, RUNTIME_LABEL, on_worker};
use criterion::{Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;

fn group_name(figure: &str) -> String {
    format!("{figure} (capacity {CAPACITY}, {RUNTIME_LABEL})")
}

fn new_runtime() -> Runtime {
    runtime::build().expect("build the benchmark runtime")
}

fn local_tell(c: &mut Criterion) {
    let rt = new_runtime();
    let system = ActorSystem::new();
    let mut group = c.benchmark_group(group_name("local_tell"));
    group.throughput(Throughput::Elements(TELL_MESSAGES));
    // One iteration is a whole 100k-message run (10-20 ms): linear sampling would need
    // 210 of them per side, more than the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("actor tell + final ask", |b| {
        b.iter_custom(|iters| {
            let system = system.clone();
            on_worker(&rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += actor_tell(&system, TELL_MESSAGES, CAPACITY)
                        .await
                        .expect("actor tell");
                }
                total
            })
        })
    });
    group.bench_function("raw mpsc send + final oneshot", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += mpsc_tell(TELL_MESSAGES, CAPACITY).await.expect("mpsc tell");
                }
                total
            })
        })
    });
    group.finish();
    on_worker(&rt, async move { system.shutdown().await });
}

fn local_ask(c: &mut Criterion) {
    let rt = new_runtime();
    let system = ActorSystem::new();
    let mut group = c.benchmark_group(group_name("local_ask"));
    group.bench_function("actor ask", |b| {
        b.iter_custom(|iters| {
            let system = system.clone();
            on_worker(&rt, async move {
                actor_ask(&system, iters, CAPACITY)
                    .await
                    .expect("actor ask")
            })
        })
    });
    group.bench_function("raw mpsc + oneshot", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, async move {
                mpsc_ask(iters, CAPACITY).await.expect("mpsc ask")
            })
        })
    });
    group.finish();
    on_worker(&rt, async move { system.shutdown().await });
}

/// Spawns in batches of at most [`SPAWN_BATCH`], each torn down untimed, so memory stays bounded.
fn in_batches(iters: u64, mut batch: impl FnMut(u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(SPAWN_BATCH);
        total += batch(n);
        left -= n;
    }
    total
}

fn spawn(c: &mut Criterion) {
    let rt = new_runtime();
    let mut group = c.benchmark_group(group_name("spawn"));
    group.bench_function("actor spawn (until started)", |b| {
        b.iter_custom(|iters| {
            in_batches(iters, |n| {
                on_worker(&rt, async move {
                    actor_spawn_batch(n, CAPACITY).await.expect("spawn")
                })
            })
        })
    });
    group.bench_function("tokio::spawn + mpsc channel", |b| {
        b.iter_custom(|iters| {
            in_batches(iters, |n| {
                on_worker(&rt, async move {
                    task_spawn_batch(n, CAPACITY).await.expect("spawn")
                })
            })
        })
    });
    group.finish();
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
    local_tell(&mut criterion);
    local_ask(&mut criterion);
    spawn(&mut criterion);
    criterion.final_summary();
}
