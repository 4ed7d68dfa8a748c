//! `test-node`: a node in its own process for the multi-process tests; see
//! `tests::test_node` for what it serves, when it prints `LISTENING <addr>` and how it ends.

use std::process::ExitCode;

use clap::Parser;
use tests::node_args::NodeArgs;

#[tokio::main]
async fn main() -> ExitCode {
    tests::test_node::main(NodeArgs::parse()).await
}
