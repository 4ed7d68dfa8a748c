//! What a `test-node` process runs: a node started from its command line
//! ([`NodeArgs`]), joining the cluster through its `--seed`s, offering the cluster:
//! - a supervised [`Echo`] served as `echo`;
//! - a [`Where`] per `--serve NAME`, served as `NAME`;
//! - the [`OrderCreated`] topics of `--subscribe` and `--register-topic`, cluster-wide, with
//!   one [`Ear`] per `--subscribe`;
//! - with `--tally`, a [`Tally`] served as [`tally_name`]`(node)` and subscribed to
//!   [`TALLY_TOPIC`];
//! - its [`Inspector`], served as `inspect@<name>`, with a member log.
//!
//! Then it dials the `--connect` peers and prints exactly one line, `LISTENING <addr>`, on
//! stdout. It runs until it is killed or its stdin closes; then it shuts the node down
//! (leaving the cluster gracefully) and exits with status 0. The stdin rule means a child
//! never outlives the process that started it, even one that died. Logs go to stderr,
//! filtered by `RUST_LOG` (default `info`).
//!
//! The `test-node` binary is [`main`] and nothing else, so that another binary can run the
//! very same node (see [`NodeProgram`](crate::process::NodeProgram)).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use actor_core::{Backoff, ChildSpec, Supervisor, Topic};
use actor_remote::Node;
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;

use crate::cluster::{
    Ear, HeardLog, Inspector, MemberChanges, MemberLog, OrderCreated, TALLY_TOPIC, Tally, Where,
    inspector_name, tally_name, unix_micros,
};
use crate::echo::Echo;
use crate::node_args::NodeArgs;
use crate::process::LISTENING_PREFIX;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sets up logging, runs the node `args` describes until stdin closes, and says how that
/// went: success, or failure (logged) when the node could not start.
pub async fn main(args: NodeArgs) -> ExitCode {
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
    serve_echo(&node).await?;
    for name in &args.serve {
        let actor = node
            .system()
            .spawn_named(name.clone(), Where::new(node.name()))
            .await?;
        node.serve(&actor)?;
    }
    let heard = subscribe_ears(&node, &args).await?;
    if args.tally {
        serve_tally(&node).await?;
    }
    let serving_since = unix_micros();
    serve_inspector(&node, heard, serving_since).await?;
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

/// Runs `echo` under a supervisor that restarts it at once, and serves it.
async fn serve_echo(node: &Node) -> Result<(), BoxError> {
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
    Ok(())
}

/// Makes the `--register-topic` and `--subscribe` topics cluster-wide and subscribes one
/// ear per `--subscribe`; returns what the ears will hear.
async fn subscribe_ears(node: &Node, args: &NodeArgs) -> Result<HeardLog, BoxError> {
    for topic in args.register_topics.iter().chain(&args.subscribe) {
        node.register_topic(&Topic::<OrderCreated>::new(topic.as_str()));
    }
    let heard = HeardLog::default();
    for (i, topic) in args.subscribe.iter().enumerate() {
        let ear = node
            .system()
            .spawn(Ear::new(i, topic.clone(), heard.clone()))
            .await?;
        node.system()
            .pubsub()
            .subscribe(&Topic::new(topic.as_str()), ear.recipient());
    }
    Ok(heard)
}

/// Serves a [`Tally`] as `tally@<name>` and subscribes it to [`TALLY_TOPIC`], cluster-wide.
async fn serve_tally(node: &Node) -> Result<(), BoxError> {
    let topic = Topic::<OrderCreated>::new(TALLY_TOPIC);
    node.register_topic(&topic);
    let tally = node
        .system()
        .spawn_named(tally_name(node.name()), Tally::new(node.incarnation()))
        .await?;
    node.serve(&tally)?;
    node.system().pubsub().subscribe(&topic, tally.recipient());
    Ok(())
}

/// Starts the member log and the inspector, and serves the inspector as `inspect@<name>`.
async fn serve_inspector(node: &Node, heard: HeardLog, serving_since: u64) -> Result<(), BoxError> {
    let changes = MemberChanges::default();
    let log = node.system().spawn(MemberLog::new(changes.clone())).await?;
    node.subscribe_members(log.recipient());
    let inspector = node
        .system()
        .spawn_named(
            inspector_name(node.name()),
            Inspector::new(node.clone(), changes, heard, serving_since),
        )
        .await?;
    node.serve(&inspector)?;
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
