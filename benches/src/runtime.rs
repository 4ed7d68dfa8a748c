//! The runtime every figure runs on, and how scenario code is put onto its workers.
//!
//! All figures, ours and baselines alike, run on a Tokio multi-thread runtime with
//! [`WORKERS`] worker threads, built once per bench group or report figure.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the benchmark runtime.
pub const WORKERS: usize = 2;

/// How the runtime is named in bench groups and report lines.
pub const RUNTIME_LABEL: &str = "tokio multi-thread 2 workers";

/// Builds the multi-thread runtime with [`WORKERS`] workers and its drivers enabled.
///
/// # Errors
/// When the OS refuses the worker threads.
pub fn build() -> std::io::Result<Runtime> {
    build_with_workers(WORKERS)
}

/// Builds a multi-thread runtime like [`build`]'s with `workers` workers, for breakdowns that
/// compare against the same work on one worker.
///
/// # Errors
/// When the OS refuses the worker threads.
pub fn build_with_workers(workers: usize) -> std::io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

/// Runs `fut` as a task on a worker of `rt` and waits for its output.
///
/// `Runtime::block_on` alone would poll the future on the calling thread, a third thread
/// beside the two workers; spawning it keeps the scenario's driver on a worker, where real
/// senders live, for ours and the baseline alike. A panic in `fut` is resumed here.
pub fn on_worker<F>(rt: &Runtime, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match rt.block_on(rt.spawn(fut)) {
        Ok(out) => out,
        Err(err) => match err.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            // Only a runtime shutting down cancels tasks, and we hold it.
            Err(err) => panic!("scenario task cancelled: {err}"),
        },
    }
}
