//! Cross-crate and multi-process integration tests of the actor framework.
//!
//! The tests live under `tests/tests/`; this library holds what they and the `test-node`
//! binary share:
//!
//! - [`echo`]: the [`Echo`](echo::Echo) actor and its remote messages, served by every
//!   child node process.
//! - [`cluster`]: what a child offers a cluster (the [`Where`](cluster::Where) actor, topic
//!   ears, its [`Inspector`](cluster::Inspector)) and
//!   [`ProcessCluster`](cluster::ProcessCluster), several children and the test process's
//!   node joined through a seed list.
//! - [`node_args`]: the command line of `test-node`, also the configuration of the test
//!   process's own node, so both ends are configured alike.
//! - [`process`]: [`NodeProcess`](process::NodeProcess), a `test-node` child process with
//!   bounded waits that never outlives its test.
//! - [`test_node`]: what a `test-node` process runs, for the `test-node` binary and any
//!   other binary that starts nodes of its own.
//! - [`relay`]: [`Relay`](relay::Relay), a fault-injecting UDP relay between two nodes
//!   (loss, delay, blackhole, heal), for the network fault tests.
//! - [`rss`]: the resident memory of a process.
//! - [`soak`]: the soak run by the `soak` binary (three nodes, steady traffic, periodic
//!   kill and restart, an account of every message).

pub mod cluster;
pub mod echo;
pub mod node_args;
pub mod process;
pub mod relay;
pub mod rss;
pub mod soak;
pub mod test_node;
