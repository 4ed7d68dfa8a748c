//! The cluster test kit: what a `test-node` offers a cluster, and a harness that runs
//! several of them, joined only by a seed list, as one cluster.
//!
//! | piece | in a `test-node` | what it is for |
//! | --- | --- | --- |
//! | [`Where`] | one per `--serve NAME` | answers [`WhereAreYou`] with its node's name ([`Stall`] sleeps first): routing, groups, asks in flight |
//! | [`Ear`] | one per `--subscribe TOPIC` | records each [`OrderCreated`] it hears: pub/sub |
//! | [`MemberLog`] | always | records the node's member events with the wall-clock time they happened |
//! | [`Tally`] | with `--tally`, served as [`tally_name`]`(node)`, subscribed to [`TALLY_TOPIC`] | counts numbered tells and publishes per start of the node: the soak's delivery accounting |
//! | [`Inspector`] | always, served as [`inspector_name`]`(node)` | tells the test what this node sees (members, member events, placements, counters, what its ears heard) and acts on this node for it (look a name up and ask it, wait for a name) |
//! | [`ProcessCluster`] | | runs `test-node` processes plus the test process's own node as one cluster |
//!
//! Each node's inspector has a name of its own (`inspect@a`), not a shared one, so that a
//! test asks exactly the node it means instead of a round-robin group.
//!
//! Times that are compared across processes (a kill, a member event, a name becoming
//! resolvable) are wall-clock microseconds since the Unix epoch, [`unix_micros`]: every
//! process of a test runs on the same machine, so they share that clock.

mod ear;
mod harness;
mod inspector;
mod member_log;
mod tally;
mod whereabouts;

pub use ear::{Ear, Heard, HeardLog, OrderCreated};
pub use harness::{ProcessCluster, TESTER, eventually};
pub use inspector::{
    AskWhere, AwaitName, CounterSnapshot, GetCounters, GetHeard, GetMemberChanges, GetMembers,
    GetPlacements, GetServingSince, GetTopicNodes, Inspector, inspector_name,
};
pub use member_log::{MemberChange, MemberChanges, MemberLog};
pub use tally::{GetTally, Sequence, TALLY_TOPIC, Tally, TallySnapshot, tally_name};
pub use whereabouts::{Stall, Where, WhereAreYou};

/// Wall-clock microseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
