//! The soak: a three-node cluster under steady mixed traffic for `--duration`, one node
//! killed with SIGKILL and restarted every `--kill-every`, and at the end an account of
//! every message. Not part of CI; run it by hand:
//!
//! ```text
//! cargo run --release -p tests --bin soak -- --duration 10m
//! ```
//!
//! | part | what it is |
//! | --- | --- |
//! | [`cluster`] | three `test-node` processes on 127.0.0.1 (a, b, c; OS-assigned ports, joined through a seed list) plus the soak process's driver and publisher nodes |
//! | [`traffic`] | tells and asks from the driver to every node, asks to the `echo` group, publishes from the publisher; each at a steady rate |
//! | [`restart`] | one `kill -9` and restart, timed: down everywhere, rejoined, refs answer again |
//! | [`ledger`] | every node's tally, start by start, and the account of each numbered flow |
//! | [`report`] | the tables: memory over time, tells, asks by outcome, publishes, restarts; the checks |
//! | [`args`] | the command line, defaults stated |
//!
//! # What is counted, and where
//! Every count lives in the soak process, which is never killed. Tells and publishes are
//! numbered by their sender and counted on arrival by the receiving node's tally, per start
//! of that node; the driver asks each tally for its count (just before each kill, every
//! progress interval, and after the traffic has stopped). So the sender knows exactly which
//! numbers each start received, and every tell the framework accepted is either delivered,
//! or lost in the window around a kill of its node, or a failure of the guarantees (lost or
//! reordered while both ends were up). The framework's own drop counter (`tells_dropped` of
//! the driver node) is reported beside the account: it covers the tells refused at the send
//! and those dropped from the queues of a connection that closed.
//!
//! # Ending
//! The soak ends at `--duration`, or at Ctrl-C or SIGTERM the same way: it stops the
//! traffic, waits (bounded) for the last messages, prints the report on stdout and kills its
//! children. Its children run in their own process group and exit by themselves when the
//! soak process dies (their stdin closes), so none outlives it; a panic kills them while
//! unwinding. The process exits 1 when a check failed.

pub mod args;
pub mod cluster;
pub mod ledger;
pub mod report;
pub mod restart;
pub mod traffic;

mod run;

pub use args::SoakArgs;
pub use report::Report;
pub use run::{SoakError, run};
