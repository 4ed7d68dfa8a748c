//! `demo-shop cluster`: the three-node deployment of `deploy/cluster/`, started here as child
//! processes of this binary, for trying the cluster out on one machine.
//!
//! Each node's output is prefixed with its name. Ctrl-C (or SIGTERM) is forwarded to the
//! nodes as SIGINT, so each leaves the cluster in order; a node still running 10 s later is
//! killed. A node that exits by itself (or is killed from outside, to watch the others cope)
//! is reported; the others keep running.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::config::{CLUSTER, Deployment, DeploymentError};

/// How long a node gets to stop after SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often the nodes are checked for having exited.
const EXIT_POLL: Duration = Duration::from_millis(200);

/// Why the local cluster could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// This binary's path is unknown, so it cannot start copies of itself.
    #[error("cannot find this program to start the nodes: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// A node process could not be started.
    #[error("cannot start {node}: {source}")]
    Spawn {
        /// The node.
        node: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A built-in deployment is broken (a build problem).
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
}

struct NodeProcess {
    name: &'static str,
    child: Child,
    exited: bool,
}

/// Starts the three nodes, waits for Ctrl-C (or for all of them to exit), then stops them.
///
/// # Errors
/// [`ClusterError`] when a node cannot be started (those already started are stopped).
pub async fn run() -> Result<(), ClusterError> {
    let exe = std::env::current_exe().map_err(ClusterError::CurrentExe)?;
    let mut nodes = Vec::with_capacity(CLUSTER.len());
    for (name, _) in CLUSTER {
        let deployment = Deployment::embedded(name)?;
        let spawned = Command::new(&exe)
            .args(["--embedded", name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                stop(&mut nodes).await;
                return Err(ClusterError::Spawn { node: name, source });
            }
        };
        if let Some(out) = child.stdout.take() {
            tokio::spawn(prefix_lines(name, out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(prefix_lines(name, err));
        }
        let services: Vec<&str> = deployment.services.iter().map(|s| s.name()).collect();
        match &deployment.gateway {
            Some(gateway) => println!(
                "{name}: {} and a gateway at http://{}",
                services.join(", "),
                gateway.listen
            ),
            None => println!("{name}: {}", services.join(", ")),
        }
        nodes.push(NodeProcess {
            name,
            child,
            exited: false,
        });
    }
    println!("the nodes find each other through their seeds; Ctrl-C stops all three");
    let stop_requested = stop_signal();
    tokio::pin!(stop_requested);
    loop {
        tokio::select! {
            () = &mut stop_requested => break,
            () = tokio::time::sleep(EXIT_POLL) => {
                for node in nodes.iter_mut().filter(|n| !n.exited) {
                    if let Ok(Some(status)) = node.child.try_wait() {
                        println!("{} exited ({status}); the others keep running", node.name);
                        node.exited = true;
                    }
                }
                if nodes.iter().all(|n| n.exited) {
                    return Ok(());
                }
            }
        }
    }
    println!("stopping the cluster");
    stop(&mut nodes).await;
    Ok(())
}

/// Sends SIGINT to each node still running, waits for it, and kills it after the grace.
async fn stop(nodes: &mut [NodeProcess]) {
    use rustix::process::{Pid, Signal, kill_process};
    for node in nodes.iter().filter(|n| !n.exited) {
        let pid = node
            .child
            .id()
            .and_then(|id| Pid::from_raw(id.try_into().ok()?));
        if let Some(pid) = pid {
            let _ = kill_process(pid, Signal::INT);
        }
    }
    for node in nodes.iter_mut().filter(|n| !n.exited) {
        match tokio::time::timeout(STOP_GRACE, node.child.wait()).await {
            Ok(Ok(status)) => println!("{} stopped ({status})", node.name),
            Ok(Err(e)) => println!("{} could not be waited for: {e}", node.name),
            Err(_) => {
                println!("{} did not stop in time; killing it", node.name);
                let _ = node.child.kill().await;
            }
        }
    }
}

async fn prefix_lines(node: &'static str, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("[{node}] {line}");
    }
}

/// Resolves on Ctrl-C or SIGTERM (or at once if neither can be listened for).
pub async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
