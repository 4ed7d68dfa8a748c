//! Measurements of the framework beside raw baselines, shared by the criterion benches and
//! the report binary.
//!
//! Every figure is a pair: our number and the number of the raw thing it is built on
//! (a bounded `tokio::sync::mpsc`, a bare `tokio::spawn`, a plain quinn stream), measured by the same scenario code
//! on the same runtime in the same run, so the ratio means something on any machine.
//!
//! - [`runtime`]: the runtime every figure runs on (Tokio multi-thread, 2 workers) and how a
//!   scenario is put onto a worker.
//! - [`local`]: the in-process scenarios (tell, ask, spawn, idle memory), each with its
//!   baseline next to it.
//! - [`remote`]: the two-node scenarios over QUIC on loopback, each beside a raw quinn
//!   client and server moving the same payloads.
//! - `peers` (feature `peers`): the local scenarios on ractor, kameo and actix, for the
//!   report's peer figures.
//! - [`report`]: the figures of the report binary, their JSON lines and markdown table.
//! - [`stats`]: medians and percentiles.
//! - [`rss`]: the resident set size of this process, from `/proc`.
//!
//! Run `cargo bench -p benches` for criterion's view (`--bench local`, `--bench remote`) and
//! `cargo run --release -p benches --bin report` for the side-by-side report. Three examples
//! take a figure apart: `alloc_count` (heap allocations per tell, ask and spawn, live bytes
//! per idle actor), `ask_breakdown` (the ask round trip with our costs added one by one
//! to the raw baseline) and `remote_breakdown` (CPU time, allocations, UDP sends and
//! batching per remote message, ours beside raw quinn, and one scenario at a time for
//! `perf`).

pub mod local;
#[cfg(feature = "peers")]
pub mod peers;
pub mod remote;
pub mod report;
pub mod rss;
pub mod runtime;
pub mod stats;

/// Any failure of a scenario: a spawn refused, an ask timed out, a channel closed.
pub type BenchError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result of a scenario.
pub type BenchResult<T> = Result<T, BenchError>;
