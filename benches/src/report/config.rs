//! How big a report run is, and where memory figures run.

use std::path::PathBuf;

use crate::local::{
    ask::ASK_ROUND_TRIPS, idle::IDLE_ACTORS, spawn::SPAWN_BATCH, tell::TELL_MESSAGES,
};
use crate::remote;

/// Where a measurement that needs a clean heap runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// In a fresh child process: this executable re-run with
    /// [`CHILD_FLAG`](super::child::CHILD_FLAG). The honest choice for RSS figures.
    ChildProcess(PathBuf),
    /// In this process, one after the other (for smoke tests: the numbers mean little).
    InProcess,
}

/// The sizes of one report run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Measured rounds per figure (after one warm-up round); the median is reported.
    pub rounds: usize,
    /// Tells per tell round.
    pub tell_messages: u64,
    /// Asks per ask round.
    pub ask_round_trips: u64,
    /// Individually timed asks per side, for p50 / p99.
    pub ask_latency_samples: u64,
    /// Spawns per spawn round.
    pub spawn_batch: u64,
    /// Idle actors (and bare tasks) alive at once for the memory figure.
    pub idle_actors: usize,
    /// Idle actors alive at once for the peer memory figure, ours and each peer's. Fewer than
    /// [`idle_actors`](Self::idle_actors): ractor and kameo keep about 7-8 KB per idle actor
    /// and take about 20 s to spawn a million of them here.
    pub peer_idle_actors: usize,
    /// Where the memory figures run.
    pub isolation: Isolation,
    /// Remote tells per round, one sender or all senders together.
    pub remote_tell_messages: u64,
    /// Individually timed remote round trips per side per round, for p50 / p99.
    pub remote_round_trips: u64,
}

impl RunConfig {
    /// The full report: 7 rounds, 100k tells, 20k asks, 10k spawns, 1M idle actors (100k for
    /// the peer figure); remote: 100k tells and 2k round trips per round.
    pub fn full(isolation: Isolation) -> Self {
        Self {
            rounds: 7,
            tell_messages: TELL_MESSAGES,
            ask_round_trips: ASK_ROUND_TRIPS,
            ask_latency_samples: ASK_ROUND_TRIPS,
            spawn_batch: SPAWN_BATCH,
            idle_actors: IDLE_ACTORS,
            peer_idle_actors: IDLE_ACTORS / 10,
            isolation,
            remote_tell_messages: remote::TELL_MESSAGES,
            remote_round_trips: remote::ASK_ROUND_TRIPS,
        }
    }

    /// `--quick`: 3 rounds, a tenth of the work, 100k idle actors (10k for the peer figure).
    pub fn quick(isolation: Isolation) -> Self {
        Self {
            rounds: 3,
            tell_messages: TELL_MESSAGES / 10,
            ask_round_trips: ASK_ROUND_TRIPS / 10,
            ask_latency_samples: ASK_ROUND_TRIPS / 10,
            spawn_batch: SPAWN_BATCH / 10,
            idle_actors: IDLE_ACTORS / 10,
            peer_idle_actors: IDLE_ACTORS / 100,
            isolation,
            remote_tell_messages: remote::TELL_MESSAGES / 10,
            remote_round_trips: remote::ASK_ROUND_TRIPS / 10,
        }
    }

    /// Tiny sizes, in process: checks that every figure runs, in a debug build, in seconds.
    pub fn smoke() -> Self {
        Self {
            rounds: 1,
            tell_messages: 2_000,
            ask_round_trips: 200,
            ask_latency_samples: 200,
            spawn_batch: 200,
            idle_actors: 1_000,
            peer_idle_actors: 1_000,
            isolation: Isolation::InProcess,
            remote_tell_messages: 800,
            remote_round_trips: 50,
        }
    }
}
