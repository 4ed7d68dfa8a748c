//! `soak`: three node processes under steady mixed traffic, one killed and restarted every
//! `--kill-every`, for `--duration`; prints a report (see `tests::soak`).
//!
//! ```text
//! cargo run --release -p tests --bin soak -- --duration 10m [--kill-every 60s] [--rate 300]
//! ```
//!
//! The soak starts its node processes from its own binary (the hidden `node` subcommand
//! runs `tests::test_node::main`), so it needs no other binary built beside it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tests::node_args::NodeArgs;
use tests::process::NodeProgram;
use tests::soak::SoakArgs;
use tracing_subscriber::EnvFilter;

/// The subcommand the soak starts its node processes with.
const NODE_SUBCOMMAND: &str = "node";

#[derive(Debug, Parser)]
#[command(
    name = "soak",
    about = "Three nodes under steady mixed traffic, one killed and restarted every \
             --kill-every, for --duration; then a report of every message.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    soak: SoakArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one node of the soak's cluster (how the soak starts its children).
    #[command(hide = true)]
    Node(NodeArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Node(args)) => tests::test_node::main(args).await,
        None => soak(cli.soak).await,
    }
}

async fn soak(args: SoakArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("soak: cannot find its own binary to start nodes from: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tests::soak::run(&args, NodeProgram::subcommand(exe, NODE_SUBCOMMAND)).await {
        Ok(report) => {
            println!("{report}");
            if report.problems().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}
