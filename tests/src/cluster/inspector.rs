//! [`Inspector`]: a node's own view of the cluster, served to the test under a name of the
//! node's own, and the hands the test acts through on that node.
//!
//! | message | reply | what the node does |
//! | --- | --- | --- |
//! | [`GetMembers`] | `Vec<Member>` | `node.members()` |
//! | [`GetMemberChanges`] | `Vec<MemberChange>` | the member events it has seen, stamped |
//! | [`GetPlacements`] | `Vec<(String, String)>` | `node.placements()` |
//! | [`GetTopicNodes`] | `Vec<String>` | `node.topic_nodes(topic)` |
//! | [`GetCounters`] | [`CounterSnapshot`] | the membership and handshake counters of `node.stats()` |
//! | [`GetHeard`] | `Vec<Heard>` | what its ears heard |
//! | [`GetServingSince`] | `u64` | when it finished serving its `--serve` names (Unix µs) |
//! | [`AskWhere`] | `Result<Vec<String>, String>` | looks the name up (waiting for it), asks [`WhereAreYou`] that many times, returns the answers in order |
//! | [`AwaitName`] | `Option<u64>` | when (Unix µs) the name became resolvable here; `None` if it did not in time |
//!
//! The inspector handles one message at a time: [`AskWhere`] and [`AwaitName`] hold it up
//! for as long as they wait. Member events are stamped by the separate [`MemberLog`], so
//! their times are not.
//!
//! [`MemberLog`]: super::MemberLog

use std::time::Duration;

use actor_core::{Actor, Context, Handler, LookupError, Message};
use actor_remote::{Accepts, Member, Node, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

use super::{Heard, HeardLog, MemberChange, MemberChanges, Where, WhereAreYou, unix_micros};

/// How long [`AskWhere`] waits for each answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// How often [`AwaitName`] looks.
const AWAIT_POLL: Duration = Duration::from_millis(1);

/// The name node `node` serves its inspector under: `inspect@<node>`.
pub fn inspector_name(node: &str) -> String {
    format!("inspect@{node}")
}

/// Answers for one node; see the module docs.
#[derive(Debug)]
pub struct Inspector {
    node: Node,
    changes: MemberChanges,
    heard: HeardLog,
    serving_since: u64,
}

impl Inspector {
    /// The inspector of `node`, reading its member log and its ears' log; `serving_since`
    /// is when the node finished serving its names (Unix µs).
    pub fn new(node: Node, changes: MemberChanges, heard: HeardLog, serving_since: u64) -> Self {
        Inspector {
            node,
            changes,
            heard,
            serving_since,
        }
    }
}

impl Actor for Inspector {}

impl RemoteActor for Inspector {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<GetMembers>()
            .message::<GetMemberChanges>()
            .message::<GetPlacements>()
            .message::<GetTopicNodes>()
            .message::<GetCounters>()
            .message::<GetHeard>()
            .message::<GetServingSince>()
            .message::<AskWhere>()
            .message::<AwaitName>();
    }
}

/// Asks for the node's members, as `Node::members` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetMembers;

impl Message for GetMembers {
    type Reply = Vec<Member>;
}

impl RemoteMessage for GetMembers {
    const TAG: &'static str = "tests.cluster.inspect.members.v1";
}

impl Handler<GetMembers> for Inspector {
    async fn handle(&mut self, _msg: GetMembers, _ctx: &mut Context<Self>) -> Vec<Member> {
        self.node.members()
    }
}

/// Asks for the member events the node has seen, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetMemberChanges;

impl Message for GetMemberChanges {
    type Reply = Vec<MemberChange>;
}

impl RemoteMessage for GetMemberChanges {
    const TAG: &'static str = "tests.cluster.inspect.member_changes.v1";
}

impl Handler<GetMemberChanges> for Inspector {
    async fn handle(
        &mut self,
        _msg: GetMemberChanges,
        _ctx: &mut Context<Self>,
    ) -> Vec<MemberChange> {
        self.changes.snapshot()
    }
}

/// Asks where each name lives, as `Node::placements` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetPlacements;

impl Message for GetPlacements {
    type Reply = Vec<(String, String)>;
}

impl RemoteMessage for GetPlacements {
    const TAG: &'static str = "tests.cluster.inspect.placements.v1";
}

impl Handler<GetPlacements> for Inspector {
    async fn handle(
        &mut self,
        _msg: GetPlacements,
        _ctx: &mut Context<Self>,
    ) -> Vec<(String, String)> {
        self.node.placements()
    }
}

/// Asks which nodes have subscribers to a topic, as `Node::topic_nodes` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTopicNodes(pub String);

impl Message for GetTopicNodes {
    type Reply = Vec<String>;
}

impl RemoteMessage for GetTopicNodes {
    const TAG: &'static str = "tests.cluster.inspect.topic_nodes.v1";
}

impl Handler<GetTopicNodes> for Inspector {
    async fn handle(&mut self, msg: GetTopicNodes, _ctx: &mut Context<Self>) -> Vec<String> {
        self.node.topic_nodes(&msg.0)
    }
}

/// The counters of `Node::stats` a cluster test reads, since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// Membership (SWIM) packets sent.
    pub membership_packets_sent: u64,
    /// Bytes of those packets.
    pub membership_bytes_sent: u64,
    /// Incoming connections refused at the handshake.
    pub handshakes_refused: u64,
    /// Frames written to peers (of every kind).
    pub frames_sent: u64,
}

impl CounterSnapshot {
    /// The counters of `node` now.
    pub fn of(node: &Node) -> Self {
        let stats = node.stats();
        CounterSnapshot {
            membership_packets_sent: stats.membership_packets_sent,
            membership_bytes_sent: stats.membership_bytes_sent,
            handshakes_refused: stats.handshakes_refused,
            frames_sent: stats.frames_sent,
        }
    }
}

/// Asks for the node's [`CounterSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCounters;

impl Message for GetCounters {
    type Reply = CounterSnapshot;
}

impl RemoteMessage for GetCounters {
    const TAG: &'static str = "tests.cluster.inspect.counters.v1";
}

impl Handler<GetCounters> for Inspector {
    async fn handle(&mut self, _msg: GetCounters, _ctx: &mut Context<Self>) -> CounterSnapshot {
        CounterSnapshot::of(&self.node)
    }
}

/// Asks for what the node's ears have heard, in the order they heard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetHeard;

impl Message for GetHeard {
    type Reply = Vec<Heard>;
}

impl RemoteMessage for GetHeard {
    const TAG: &'static str = "tests.cluster.inspect.heard.v1";
}

impl Handler<GetHeard> for Inspector {
    async fn handle(&mut self, _msg: GetHeard, _ctx: &mut Context<Self>) -> Vec<Heard> {
        self.heard.snapshot()
    }
}

/// Asks when the node finished serving its `--serve` names (Unix µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetServingSince;

impl Message for GetServingSince {
    type Reply = u64;
}

impl RemoteMessage for GetServingSince {
    const TAG: &'static str = "tests.cluster.inspect.serving_since.v1";
}

impl Handler<GetServingSince> for Inspector {
    async fn handle(&mut self, _msg: GetServingSince, _ctx: &mut Context<Self>) -> u64 {
        self.serving_since
    }
}

/// Makes the node look up the [`Where`] actor `name` (waiting up to `wait_ms` for it to
/// appear) and ask it [`WhereAreYou`] `asks` times through that one ref. The reply is the
/// answers in order, or why the look-up or an ask failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskWhere {
    /// The name to look up.
    pub name: String,
    /// How many asks to make.
    pub asks: u32,
    /// How long to wait for the name to appear.
    pub wait_ms: u64,
}

impl Message for AskWhere {
    type Reply = Result<Vec<String>, String>;
}

impl RemoteMessage for AskWhere {
    const TAG: &'static str = "tests.cluster.inspect.ask_where.v1";
}

impl Handler<AskWhere> for Inspector {
    async fn handle(
        &mut self,
        msg: AskWhere,
        _ctx: &mut Context<Self>,
    ) -> Result<Vec<String>, String> {
        let wait = Duration::from_millis(msg.wait_ms);
        let target = self
            .node
            .lookup_wait::<Where>(&msg.name, wait)
            .await
            .map_err(|e| format!("lookup of {:?} failed: {e}", msg.name))?;
        let mut answers = Vec::with_capacity(msg.asks as usize);
        for _ in 0..msg.asks {
            let answer = target
                .ask_timeout(WhereAreYou, ANSWER_TIMEOUT)
                .await
                .map_err(|e| format!("ask to {:?} failed: {e}", msg.name))?;
            answers.push(answer);
        }
        Ok(answers)
    }
}

/// Makes the node wait, up to `timeout_ms`, until the [`Where`] actor `name` can be looked
/// up; replies when that happened (Unix µs, looked for every millisecond), or `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitName {
    /// The name to wait for.
    pub name: String,
    /// How long to wait.
    pub timeout_ms: u64,
}

impl Message for AwaitName {
    type Reply = Option<u64>;
}

impl RemoteMessage for AwaitName {
    const TAG: &'static str = "tests.cluster.inspect.await_name.v1";
}

impl Handler<AwaitName> for Inspector {
    async fn handle(&mut self, msg: AwaitName, _ctx: &mut Context<Self>) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(msg.timeout_ms);
        loop {
            match self.node.lookup::<Where>(&msg.name) {
                Ok(_) => return Some(unix_micros()),
                Err(LookupError::NotFound(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(AWAIT_POLL).await;
                }
                Err(_) => return None,
            }
        }
    }
}
