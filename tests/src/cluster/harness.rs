//! [`ProcessCluster`]: `test-node` processes on 127.0.0.1, joined only through a seed list,
//! and the test process's own node as one more member.
//!
//! The first process lists no seeds and so starts the cluster; every later one, and the
//! test process's node ([`TESTER`]), lists the first as its only seed. The test process's
//! node is a full member, not a bystander: in this framework an authenticated connection is
//! a membership (a node that dials announces itself to the peer's SWIM), and being a member
//! is what lets the test use the same public API as any node: `lookup`, `ActorRef`, pub/sub,
//! and asks to each child's [`Inspector`] for that child's own view.
//!
//! Every wait here is bounded; a wait that runs out panics, naming what it waited for.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use actor_core::{ActorRef, AskError, Handler, Message};
use actor_remote::{Member, MemberState, Node};

use super::{Inspector, MemberChanges, MemberLog, inspector_name};
use crate::node_args::NodeArgs;
use crate::process::{NodeProcess, NodeProgram, ProcessError};

/// The name of the test process's own node.
pub const TESTER: &str = "tester";

/// How long [`ProcessCluster::start`] waits for every node to see every other as alive.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an ask to an inspector may take (an inspector answers at once, except while it
/// runs an `AskWhere` or `AwaitName`).
const INSPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a child's inspector to become known to the test node.
const INSPECTOR_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often [`eventually`] looks.
const POLL: Duration = Duration::from_millis(20);
/// How many times a child is started again while its old address is being released.
const RESPAWN_ATTEMPTS: u32 = 50;

/// Runs `probe` every 20 ms until it returns `Some`, for at most `timeout`, and returns
/// that value.
///
/// # Panics
/// When `timeout` runs out first, naming `what`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `test-node` children and the test process's node, one cluster. Dropping it kills the
/// children; [`shutdown`](Self::shutdown) also stops the test node.
#[derive(Debug)]
pub struct ProcessCluster {
    program: NodeProgram,
    seed: SocketAddr,
    tester: Node,
    tester_changes: MemberChanges,
    children: Vec<NodeProcess>,
}

impl ProcessCluster {
    /// Starts `nodes` as `test-node` processes (`program`: see [`NodeProgram`]) in order, the
    /// first one without seeds and every other with the first as its only seed; then starts
    /// the test node ([`TESTER`], with the first node's secret, time-outs and membership
    /// timing) with the same seed; then waits until every node sees every node alive.
    ///
    /// # Panics
    /// If `nodes` is empty, a child does not start, or the cluster does not form within
    /// 15 s.
    pub async fn start(program: impl Into<NodeProgram>, nodes: Vec<NodeArgs>) -> ProcessCluster {
        let program = program.into();
        let mut nodes = nodes.into_iter();
        let first = nodes.next().expect("a cluster has a first node");
        let tester_args = NodeArgs {
            idle_timeout_ms: first.idle_timeout_ms,
            keep_alive_ms: first.keep_alive_ms,
            reconnect_backoff_max_ms: first.reconnect_backoff_max_ms,
            ..NodeArgs::new(TESTER, first.secret.clone()).membership_timing(
                first.probe_period_ms,
                first.probe_rtt_ms,
                first.suspect_to_down_ms,
            )
        };
        let seed_process = spawn(&program, &first).await;
        let seed = seed_process.addr();
        let mut children = vec![seed_process];
        for args in nodes {
            children.push(spawn(&program, &args.seed(seed)).await);
        }
        let tester = Node::start(tester_args.seed(seed).config())
            .await
            .expect("the test node starts");
        let tester_changes = MemberChanges::default();
        let log = tester
            .system()
            .spawn(MemberLog::new(tester_changes.clone()))
            .await
            .expect("the test node's member log starts");
        tester.subscribe_members(log.recipient());
        let cluster = ProcessCluster {
            program,
            seed,
            tester,
            tester_changes,
            children,
        };
        cluster.until_converged(CONVERGE_TIMEOUT).await;
        cluster
    }

    /// The test process's own node.
    pub fn tester(&self) -> &Node {
        &self.tester
    }

    /// The member events the test node has seen since it started.
    pub fn tester_changes(&self) -> &MemberChanges {
        &self.tester_changes
    }

    /// The address of the first node, everyone's seed.
    pub fn seed(&self) -> SocketAddr {
        self.seed
    }

    /// The child named `name`.
    ///
    /// # Panics
    /// If there is none.
    pub fn child(&self, name: &str) -> &NodeProcess {
        self.children
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no child node named {name}"))
    }

    /// The child named `name`, to kill or stop it.
    ///
    /// # Panics
    /// If there is none.
    pub fn child_mut(&mut self, name: &str) -> &mut NodeProcess {
        self.children
            .iter_mut()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no child node named {name}"))
    }

    /// The names of the children, in start order.
    pub fn child_names(&self) -> Vec<String> {
        self.children.iter().map(|c| c.name().to_string()).collect()
    }

    /// Every node's name, the test node's included, sorted.
    pub fn all_names(&self) -> Vec<String> {
        let mut names = self.child_names();
        names.push(TESTER.to_string());
        names.sort();
        names
    }

    /// Starts another child with `args` plus the seed, replacing any child of that name
    /// (which is killed if it still runs). While `args.listen` is still held by a killed
    /// predecessor, tries again, up to 50 times 100 ms. Does not wait for it to join.
    ///
    /// # Panics
    /// If the child does not start.
    pub async fn add(&mut self, args: NodeArgs) -> &NodeProcess {
        let name = args.name.clone();
        match self.try_add(args).await {
            Ok(child) => child,
            Err(e) => panic!("node {name} does not start: {e}"),
        }
    }

    /// Like [`add`](Self::add), but says why the child did not start instead of panicking.
    ///
    /// # Errors
    /// The last [`ProcessError`] of [`NodeProcess::spawn`].
    pub async fn try_add(&mut self, args: NodeArgs) -> Result<&NodeProcess, ProcessError> {
        self.children.retain(|c| c.name() != args.name);
        let args = args.seed(self.seed);
        let mut attempt = 0;
        let child = loop {
            attempt += 1;
            match NodeProcess::spawn(&self.program, &args).await {
                Ok(child) => break child,
                Err(ProcessError::ExitedEarly { .. }) if attempt < RESPAWN_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.children.push(child);
        Ok(self.child(&args.name))
    }

    /// Takes the child named `name` out of the cluster's books (to stop or kill it; the
    /// other nodes are not told), if there is one.
    pub fn remove(&mut self, name: &str) -> Option<NodeProcess> {
        let at = self.children.iter().position(|c| c.name() == name)?;
        Some(self.children.remove(at))
    }

    /// The test node's ref to `node`'s inspector, waiting (bounded) for its name.
    ///
    /// # Panics
    /// If the name does not appear within 10 s.
    pub async fn inspector(&self, node: &str) -> ActorRef<Inspector> {
        let name = inspector_name(node);
        self.tester
            .lookup_wait::<Inspector>(&name, INSPECTOR_LOOKUP_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("no inspector {name}: {e}"))
    }

    /// Asks `node`'s inspector `msg` (its ask time-out: 5 s).
    ///
    /// # Errors
    /// The ask's error; a name not (yet) known fails as [`AskError::Unreachable`].
    pub async fn try_inspect<M>(&self, node: &str, msg: M) -> Result<M::Reply, AskError>
    where
        Inspector: Handler<M>,
        M: Message,
    {
        let inspector = self
            .tester
            .lookup::<Inspector>(&inspector_name(node))
            .map_err(|_| AskError::Unreachable {
                node: node.to_string(),
            })?;
        inspector.ask_timeout(msg, INSPECT_TIMEOUT).await
    }

    /// Asks `node`'s inspector `msg`, waiting for the inspector's name first.
    ///
    /// # Panics
    /// If the name does not appear or the ask fails.
    pub async fn inspect<M>(&self, node: &str, msg: M) -> M::Reply
    where
        Inspector: Handler<M>,
        M: Message,
    {
        self.inspector(node)
            .await
            .ask_timeout(msg, INSPECT_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("asking the inspector of {node}: {e}"))
    }

    /// The members as `observer` sees them: the test node's own view for [`TESTER`], a
    /// child's through its inspector.
    ///
    /// # Errors
    /// The ask to the child's inspector failed.
    pub async fn members_seen_by(&self, observer: &str) -> Result<Vec<Member>, AskError> {
        if observer == TESTER {
            Ok(self.tester.members())
        } else {
            self.try_inspect(observer, super::GetMembers).await
        }
    }

    /// The state of `member` as `observer` sees it, `None` if unknown there or unanswered.
    pub async fn state_seen_by(&self, observer: &str, member: &str) -> Option<MemberState> {
        self.members_seen_by(observer)
            .await
            .ok()?
            .into_iter()
            .find(|m| m.name == member)
            .map(|m| m.state)
    }

    /// Waits until every one of `observers` sees `member` in `state`.
    ///
    /// # Panics
    /// If that does not happen within `timeout`.
    pub async fn until_state(
        &self,
        observers: &[&str],
        member: &str,
        state: MemberState,
        timeout: Duration,
    ) {
        for observer in observers {
            let what = format!("{observer} to see {member} {state:?}");
            eventually(&what, timeout, async || {
                (self.state_seen_by(observer, member).await == Some(state)).then_some(())
            })
            .await;
        }
    }

    /// Waits until every node (children and test node) sees exactly every node as alive.
    ///
    /// # Panics
    /// If that does not happen within `timeout`.
    pub async fn until_converged(&self, timeout: Duration) {
        let all: BTreeSet<String> = self.all_names().into_iter().collect();
        for observer in self.all_names() {
            let what = format!("{observer} to see {all:?} alive");
            eventually(&what, timeout, async || {
                let members = self.members_seen_by(&observer).await.ok()?;
                let alive: BTreeSet<String> = members
                    .into_iter()
                    .filter(|m| m.state == MemberState::Alive)
                    .map(|m| m.name)
                    .collect();
                (alive == all).then_some(())
            })
            .await;
        }
    }

    /// Leaves with the test node and stops it, then kills the children.
    pub async fn shutdown(self) {
        self.tester.shutdown().await;
        drop(self.children);
    }
}

async fn spawn(program: &NodeProgram, args: &NodeArgs) -> NodeProcess {
    NodeProcess::spawn(program, args)
        .await
        .unwrap_or_else(|e| panic!("node {} does not start: {e}", args.name))
}
