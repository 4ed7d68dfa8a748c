//! The figures of the report binary: each is our number beside its raw baseline, measured in
//! one process (or in fresh child processes, for memory), with a target from DESIGN.md.
//! [`local`] holds the in-process figures, [`remote`] the two-node figures over QUIC.
//!
//! The report prints one JSON object per figure per line, then a markdown table:
//!
//! ```text
//! {"figure":"local_tell_msgs_per_s","ours":1.2e7,"baseline":1.5e7,"ratio":0.8,"unit":"msgs/s","target":">= 0.8","target_on":"ratio","met":true,...}
//! ```
//!
//! # Adding a figure
//! Write a function `fn(&RunConfig) -> BenchResult<Figure>` (see [`local`] for examples; use
//! [`interleave`] so that machine noise hits ours and the baseline alike), then add one
//! [`FigureSpec`] line to [`FIGURES`]. A figure that needs a fresh process registers a child
//! task in [`child`].

pub mod child;
mod config;
mod figure;
pub mod local;
pub mod remote;
mod rounds;
mod table;

pub use config::{Isolation, RunConfig};
pub use figure::{Better, Figure, FigureSpec, Target, error_line};
pub use rounds::{Arm, interleave};
pub use table::markdown_table;

/// Every figure the report knows, in the order it prints them.
pub const FIGURES: &[FigureSpec] = &[
    FigureSpec::new("local_tell_msgs_per_s", local::tell_throughput),
    FigureSpec::new(
        "local_tell_msgs_per_s_4_senders",
        local::tell_throughput_4_senders,
    ),
    FigureSpec::new("local_ask_rtt_ns", local::ask_round_trip),
    FigureSpec::new("spawn_ns_per_actor", local::spawn_cost),
    FigureSpec::new("idle_actor_bytes", local::idle_memory),
    FigureSpec::new("remote_tell_msgs_per_s", remote::tell_throughput),
    FigureSpec::new("remote_ask_rtt_us", remote::ask_round_trip),
    FigureSpec::new(
        "remote_tell_msgs_per_s_8_senders",
        remote::tell_throughput_8_senders,
    ),
];

/// The figure named `name`, if the report knows it.
pub fn figure(name: &str) -> Option<&'static FigureSpec> {
    FIGURES.iter().find(|f| f.name == name)
}
