//! The figures of the report binary: each is our number beside its raw baseline, measured in
//! one process (or in fresh child processes, for memory), with a target from DESIGN.md.
//! [`local`] holds the in-process figures, [`remote`] the two-node figures over QUIC, and
//! `peers` (feature `peers`) ours beside ractor, kameo and actix on the local scenarios.
//!
//! The report prints one JSON object per figure per line, then a markdown table:
//!
//! ```text
//! {"figure":"local_tell_msgs_per_s","ours":1.2e7,"baseline":1.5e7,"ratio":0.8,"unit":"msgs/s","target":">= 0.8","target_on":"ratio","met":true,...}
//! ```
//!
//! A peer figure prints one line per peer, `ratio` being `ours / theirs`, and its own table:
//!
//! ```text
//! {"figure":"peer_tell_1_sender_msgs_per_s","peer":"ractor","ours":6.1e6,"theirs":2.3e6,"ratio":2.65,"unit":"msgs/s","better":"higher","ours_ahead":true,...}
//! ```
//!
//! # Adding a figure
//! Write a function `fn(&RunConfig) -> BenchResult<Figure>` (see [`local`] for examples; use
//! [`interleave`] so that machine noise hits ours and the baseline alike), then add one
//! [`FigureSpec`] line to [`FIGURES`] (a peer figure returns a [`PeerFigure`] and goes to
//! [`PEER_FIGURES`]). A figure that needs a fresh process registers a child task in
//! [`child`].

pub mod child;
mod config;
mod figure;
pub mod local;
mod peer_figure;
#[cfg(feature = "peers")]
pub mod peers;
pub mod remote;
mod rounds;
pub mod serving;
mod table;

pub use config::{Isolation, RunConfig};
pub use figure::{Better, Figure, FigureSpec, Measure, Measured, Target, error_line};
pub use peer_figure::{PeerFigure, PeerValue};
pub use rounds::{Arm, interleave};
pub use table::{markdown_table, peer_table};

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
    FigureSpec::new(
        "remote_tell_msgs_per_s_2_processes",
        remote::tell_throughput_2_processes,
    ),
    FigureSpec::new("remote_ask_rtt_us", remote::ask_round_trip),
    FigureSpec::new(
        "remote_ask_rtt_us_2_processes",
        remote::ask_round_trip_2_processes,
    ),
    FigureSpec::new(
        "remote_tell_msgs_per_s_8_senders",
        remote::tell_throughput_8_senders,
    ),
];

/// The figures of ours beside ractor, kameo and actix, printed after [`FIGURES`]; empty
/// unless the crate is built with the feature `peers`.
#[cfg(feature = "peers")]
pub const PEER_FIGURES: &[FigureSpec] = &[
    FigureSpec::peers("peer_tell_1_sender_msgs_per_s", peers::tell_1_sender),
    FigureSpec::peers("peer_tell_4_senders_msgs_per_s", peers::tell_4_senders),
    FigureSpec::peers("peer_ask_rtt_ns", peers::ask_round_trip),
    FigureSpec::peers("peer_spawn_ns_per_actor", peers::spawn_cost),
    FigureSpec::peers("peer_idle_actor_bytes", peers::idle_memory),
];

/// The figures of ours beside ractor, kameo and actix: none without the feature `peers`.
#[cfg(not(feature = "peers"))]
pub const PEER_FIGURES: &[FigureSpec] = &[];

/// Every figure the report knows, in the order it prints them: [`FIGURES`], then
/// [`PEER_FIGURES`].
pub fn all_figures() -> impl Iterator<Item = &'static FigureSpec> {
    FIGURES.iter().chain(PEER_FIGURES)
}

/// The figure named `name`, if the report knows it.
pub fn figure(name: &str) -> Option<&'static FigureSpec> {
    all_figures().find(|f| f.name == name)
}
