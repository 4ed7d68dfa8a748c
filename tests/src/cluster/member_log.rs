//! [`MemberLog`]: records a node's member events, each with the time it happened.

use std::sync::{Arc, Mutex, PoisonError};

use actor_core::{Actor, Context, Handler};
use actor_remote::{MemberEvent, MemberState};
use serde::{Deserialize, Serialize};

use super::unix_micros;

/// One member event as a node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    /// The member it is about.
    pub node: String,
    /// Its new state: `Alive` for a join, then `Suspect`, `Down` or `Left`.
    pub state: MemberState,
    /// When the event was handled, wall-clock microseconds since the Unix epoch.
    pub at_unix_micros: u64,
}

impl MemberChange {
    /// The change `event` describes, stamped now.
    pub fn of(event: &MemberEvent) -> Self {
        let (node, state) = match event {
            MemberEvent::Joined { node } => (node, MemberState::Alive),
            MemberEvent::Suspect { node } => (node, MemberState::Suspect),
            MemberEvent::Down { node } => (node, MemberState::Down),
            MemberEvent::Left { node } => (node, MemberState::Left),
        };
        MemberChange {
            node: node.clone(),
            state,
            at_unix_micros: unix_micros(),
        }
    }
}

/// The member changes one node has seen, oldest first; shared by its [`MemberLog`] and its
/// readers.
#[derive(Debug, Clone, Default)]
pub struct MemberChanges(Arc<Mutex<Vec<MemberChange>>>);

impl MemberChanges {
    /// Every change so far.
    pub fn snapshot(&self) -> Vec<MemberChange> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The changes about `node` so far.
    pub fn about(&self, node: &str) -> Vec<MemberChange> {
        self.snapshot()
            .into_iter()
            .filter(|c| c.node == node)
            .collect()
    }
}

/// Subscribed to its node's member events (`Node::subscribe_members`); stamps each one and
/// appends it to a [`MemberChanges`]. It does nothing else, so its stamps are not delayed
/// behind other work.
#[derive(Debug, Default)]
pub struct MemberLog {
    changes: MemberChanges,
}

impl MemberLog {
    /// A log that writes into `changes`.
    pub fn new(changes: MemberChanges) -> Self {
        MemberLog { changes }
    }
}

impl Actor for MemberLog {}

impl Handler<MemberEvent> for MemberLog {
    async fn handle(&mut self, event: MemberEvent, _ctx: &mut Context<Self>) {
        let change = MemberChange::of(&event);
        self.changes
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(change);
    }
}
