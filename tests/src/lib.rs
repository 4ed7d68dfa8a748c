//! Cross-crate and multi-process integration tests of the actor framework.
//!
//! The tests live under `tests/tests/`; this library holds what they and the `test-node`
//! binary share:
//!
//! - [`echo`]: the [`Echo`](echo::Echo) actor and its remote messages, the one test actor
//!   type both a child node process and the test process know.
//! - [`node_args`]: the command line of `test-node`, also the configuration of the test
//!   process's own node, so both ends are configured alike.
//! - [`process`]: [`NodeProcess`](process::NodeProcess), a `test-node` child process with
//!   bounded waits that never outlives its test.

pub mod echo;
pub mod node_args;
pub mod process;
