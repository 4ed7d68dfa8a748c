//! [`SoakCluster`]: the cluster under soak. Three `test-node` processes, `a`, `b` and `c`,
//! on 127.0.0.1 with OS-assigned ports, joined through a seed list (a
//! [`ProcessCluster`]), and two nodes in the soak process itself: the driver (the
//! cluster's [`TESTER`] node, which sends the tells and asks) and the [`PUBLISHER`]. The
//! publisher is a node of its own so that the framework's drop counter of the driver
//! (`tells_dropped`) counts the driver's tells and nothing else.
//!
//! Each child serves, besides what every `test-node` serves, a `Where` as
//! [`where_name`]`(node)` and a `Tally` as `tally@<node>` (`--serve`, `--tally`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actor_core::{LookupError, Topic};
use actor_remote::{Member, MemberState, Node, NodeError};

use super::traffic::{NodeTargets, Targets};
use crate::cluster::{OrderCreated, ProcessCluster, TALLY_TOPIC, TESTER, Tally, Where, tally_name};
use crate::echo::Echo;
use crate::node_args::NodeArgs;
use crate::process::{NodeProgram, ProcessError};

/// The node processes, in start order (`a` is everyone's seed).
pub const NODES: [&str; 3] = ["a", "b", "c"];
/// The name of the soak process's publishing node.
pub const PUBLISHER: &str = "publisher";
/// The cluster secret (on the command line of the children: fine for a test).
const SECRET: &str = "soak secret";
/// How long a name or a topic may take to become known.
const KNOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// The name node `node` serves its `Where` under: `where@<node>`.
pub fn where_name(node: &str) -> String {
    format!("where@{node}")
}

/// The command line of child `node`: a `Where` as `where@<node>`, a tally, the test
/// membership timing (probe 100 ms, suspect to down 500 ms, QUIC idle 1.5 s).
pub fn node_args(node: &str) -> NodeArgs {
    NodeArgs::new(node, SECRET).serve(where_name(node)).tally()
}

/// Why the soak's cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The publisher node did not start.
    #[error("the publisher node does not start: {0}")]
    Publisher(#[from] NodeError),
    /// A name the traffic needs did not become known to the driver.
    #[error("{name} is not known to the driver: {source}")]
    Lookup {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: LookupError,
    },
    /// Not every member saw every member alive in time.
    #[error("the cluster did not form within {0:?}")]
    NotFormed(Duration),
    /// The publisher did not learn of every node's tally subscription in time.
    #[error("the publisher sees subscribers of {TALLY_TOPIC} on {seen:?} only")]
    TopicNotKnown {
        /// The nodes it does see.
        seen: Vec<String>,
    },
    /// A child process could not be killed or started.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// There is no node by that name.
    #[error("no node named {0}")]
    NoSuchNode(String),
}

/// The three node processes, the driver and the publisher, as one cluster; see the
/// module docs. Dropping it kills the children.
#[derive(Debug)]
pub struct SoakCluster {
    processes: ProcessCluster,
    publisher: Node,
    pids: Arc<Mutex<BTreeMap<String, Option<u32>>>>,
}

impl SoakCluster {
    /// Starts the children from `program`, the driver and the publisher, and waits (at
    /// most 15 s) until every member sees every member alive and the publisher knows every
    /// tally's subscription.
    ///
    /// # Errors
    /// [`ClusterError::Publisher`], [`ClusterError::NotFormed`],
    /// [`ClusterError::TopicNotKnown`].
    ///
    /// # Panics
    /// If a child does not start (as [`ProcessCluster::start`]).
    pub async fn start(program: NodeProgram) -> Result<SoakCluster, ClusterError> {
        let processes = ProcessCluster::start(program, NODES.map(node_args).to_vec()).await;
        let publisher_args = NodeArgs::new(PUBLISHER, SECRET).seed(processes.seed());
        let publisher = Node::start(publisher_args.config()).await?;
        // Without its codec the publisher would publish to local subscribers only.
        publisher.register_topic(&Topic::<OrderCreated>::new(TALLY_TOPIC));
        let pids = NODES
            .iter()
            .map(|n| (n.to_string(), Some(processes.child(n).pid())))
            .collect();
        let cluster = SoakCluster {
            processes,
            publisher,
            pids: Arc::new(Mutex::new(pids)),
        };
        if !within(KNOWN_TIMEOUT, async || cluster.is_formed().await).await {
            return Err(ClusterError::NotFormed(KNOWN_TIMEOUT));
        }
        let all_subscribed =
            async || cluster.publisher.topic_nodes(TALLY_TOPIC).len() == NODES.len();
        if !within(KNOWN_TIMEOUT, all_subscribed).await {
            return Err(ClusterError::TopicNotKnown {
                seen: cluster.publisher.topic_nodes(TALLY_TOPIC),
            });
        }
        Ok(cluster)
    }

    /// The driver node: the soak process's node that sends the tells and asks.
    pub fn driver(&self) -> &Node {
        self.processes.tester()
    }

    /// The publishing node.
    pub fn publisher(&self) -> &Node {
        &self.publisher
    }

    /// The process id of each child, `None` while it is down; kept up to date across
    /// restarts.
    pub fn pids(&self) -> Arc<Mutex<BTreeMap<String, Option<u32>>>> {
        Arc::clone(&self.pids)
    }

    /// The driver's refs to every node's tally and `Where`, and to the `echo` group,
    /// waiting (at most 15 s each) for the names to be known.
    ///
    /// # Errors
    /// [`ClusterError::Lookup`].
    pub async fn targets(&self) -> Result<Targets, ClusterError> {
        let driver = self.driver();
        let mut nodes = BTreeMap::new();
        for node in NODES {
            let tally = lookup::<Tally>(driver, &tally_name(node)).await?;
            let whereabouts = lookup::<Where>(driver, &where_name(node)).await?;
            nodes.insert(node.to_string(), NodeTargets { tally, whereabouts });
        }
        let echo = lookup::<Echo>(driver, "echo").await?;
        Ok(Targets { nodes, echo })
    }

    /// Every member's name: the children, the driver and the publisher.
    pub fn member_names() -> BTreeSet<String> {
        NODES
            .iter()
            .chain(&[TESTER, PUBLISHER])
            .map(|n| n.to_string())
            .collect()
    }

    /// The members as `observer` sees them, `None` if it does not answer (a child is asked
    /// through its inspector, at most 5 s).
    pub async fn members_seen_by(&self, observer: &str) -> Option<Vec<Member>> {
        match observer {
            PUBLISHER => Some(self.publisher.members()),
            _ => self.processes.members_seen_by(observer).await.ok(),
        }
    }

    /// Whether every member sees exactly every member alive.
    pub async fn is_formed(&self) -> bool {
        let all = Self::member_names();
        for observer in &all {
            let Some(members) = self.members_seen_by(observer).await else {
                return false;
            };
            let alive: BTreeSet<String> = members
                .into_iter()
                .filter(|m| m.state == MemberState::Alive)
                .map(|m| m.name)
                .collect();
            if alive != all {
                return false;
            }
        }
        true
    }

    /// Whether every other member sees `node` down.
    pub async fn is_down_everywhere(&self, node: &str) -> bool {
        for observer in Self::member_names().iter().filter(|o| *o != node) {
            let state = self
                .members_seen_by(observer)
                .await
                .and_then(|members| members.into_iter().find(|m| m.name == node))
                .map(|m| m.state);
            if state != Some(MemberState::Down) {
                return false;
            }
        }
        true
    }

    /// Kills child `node` with SIGKILL and waits until it is gone.
    ///
    /// # Errors
    /// [`ClusterError::NoSuchNode`], [`ClusterError::Process`].
    pub async fn kill(&mut self, node: &str) -> Result<(), ClusterError> {
        if !NODES.contains(&node) {
            return Err(ClusterError::NoSuchNode(node.to_string()));
        }
        self.set_pid(node, None);
        self.processes.child_mut(node).kill().await?;
        Ok(())
    }

    /// Starts child `node` again on the address it had, with the other children as seeds
    /// (so that the seed node itself can rejoin), retrying while the address is released.
    /// Does not wait for it to join.
    ///
    /// # Errors
    /// [`ClusterError::NoSuchNode`], [`ClusterError::Process`].
    pub async fn restart(&mut self, node: &str) -> Result<(), ClusterError> {
        if !NODES.contains(&node) {
            return Err(ClusterError::NoSuchNode(node.to_string()));
        }
        let mut args = node_args(node).listen(self.processes.child(node).addr());
        for other in NODES.iter().filter(|n| **n != node) {
            args = args.seed(self.processes.child(other).addr());
        }
        let pid = self.processes.try_add(args).await?.pid();
        self.set_pid(node, Some(pid));
        Ok(())
    }

    /// Stops the publisher and the driver (each leaves the cluster), then kills the
    /// children.
    pub async fn shutdown(self) {
        self.publisher.shutdown().await;
        self.processes.shutdown().await;
    }

    fn set_pid(&self, node: &str, pid: Option<u32>) {
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node.to_string(), pid);
    }
}

/// Runs `probe` every 20 ms until it returns true, for at most `bound`; returns whether it
/// did.
pub async fn within(bound: Duration, mut probe: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if probe().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lookup<A: actor_remote::RemoteActor>(
    driver: &Node,
    name: &str,
) -> Result<actor_core::ActorRef<A>, ClusterError> {
    driver
        .lookup_wait::<A>(name, KNOWN_TIMEOUT)
        .await
        .map_err(|source| ClusterError::Lookup {
            name: name.to_string(),
            source,
        })
}
