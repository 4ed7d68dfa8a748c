//! Measurements of the framework beside raw baselines, shared by the criterion benches and
//! the report binary.
//!
//! Every figure is a pair: our number and the number of the raw thing it is built on
//! (a bounded `tokio::sync::mpsc`, a bare `tokio::spawn`), measured by the same scenario code
//! on the same runtime in the same run, so the ratio means something on any machine.
//!
//! - [`runtime`]: the runtime every figure runs on (Tokio multi-thread, 2 workers) and how a
//!   scenario is put onto a worker.
//! - [`local`]: the in-process scenarios (tell, ask, spawn, idle memory), each with its
//!   baseline next to it.
//! - [`report`]: the figures of the report binary, their JSON lines and markdown table.
//! - [`stats`]: medians and percentiles.
//! - [`rss`]: the resident set size of this process, from `/proc`.
//!
//! Run `cargo bench -p benches` for criterion's view and
//! `cargo run --release -p benches --bin report` for the side-by-side report. Two examples
//! take a figure apart: `alloc_count` (heap allocations per tell, ask and spawn, live bytes
//! per idle actor) and `ask_breakdown` (the ask round trip with our costs added one by one
//! to the raw baseline).

pub mod local;
pub mod report;
pub mod rss;
pub mod runtime;
pub mod stats;

/// Any failure of a scenario: a spawn refused, an ask timed out, a channel closed.
pub type BenchError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result of a scenario.
pub type BenchResult<T> = Result<T, BenchError>;
