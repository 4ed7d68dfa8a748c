//! `test-node`: a node in its own process for the multi-process tests.
//!
//! Starts a node from its command line (see `tests::node_args`), runs a supervised
//! `tests::echo::Echo` named `echo` and serves it, dials the `--connect` peers, then prints
//! exactly one line, `LISTENING <addr>`, on stdout. It runs until it is killed or its stdin
//! closes; then it shuts the node down and exits with status 0. The stdin rule means a child
//! never outlives a test process that died. Logs go to stderr, filtered by `RUST_LOG`
//! (default `info`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use actor_core::{Backoff, ChildSpec, Supervisor};
use actor_remote::Node;
use clap::Parser;
use tests::echo::Echo;
use tests::node_args::NodeArgs;
use tests::process::LISTENING_PREFIX;
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = NodeArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "test-node failed");
            ExitCode::FAILURE
        }
    }
}

/// Runs the node until stdin closes; errors are those of starting it.
async fn run(args: NodeArgs) -> Result<(), BoxError> {
    let node = Node::start(args.config()).await?;
    node.system()
        .spawn_supervisor(
            Supervisor::one_for_one()
                .backoff(Backoff::none())
                .max_restarts(100, Duration::from_secs(10))
                .child(ChildSpec::new("echo", Echo::default)),
        )
        .await?;
    let echo = node.system().lookup::<Echo>("echo")?;
    node.serve(&echo)?;
    for addr in &args.connect {
        let peer = node.connect(*addr).await?;
        tracing::info!(%peer, %addr, "connected at start");
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{LISTENING_PREFIX}{}", node.local_addr())?;
    stdout.flush()?;
    drop(stdout);

    stdin_closed().await;
    tracing::info!(node = %node.name(), "stdin closed; shutting down");
    node.shutdown().await;
    Ok(())
}

/// Resolves when stdin reaches its end (the parent closed it, or died).
async fn stdin_closed() {
    let (closed_tx, closed) = oneshot::channel();
    // A plain thread: a blocking read must not hold up the runtime.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let _ = closed.await;
}
