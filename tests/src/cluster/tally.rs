//! [`Tally`]: counts the numbered tells and topic messages that reach one node, so that a
//! driver that outlives the node can account for every message it sent there.
//!
//! A sender numbers its tells [`Record`]`(0)`, `Record(1)`, … and its publishes
//! [`OrderCreated`]`(0)`, … on [`TALLY_TOPIC`]. Each start of a node has a fresh tally
//! (it reports the node's incarnation), so the numbers one start received form one
//! [`Sequence`]: where it began, where it ended, and whether any number was skipped or
//! came back out of order. Per sender and receiver the framework promises order and
//! at-most-once, so within one start a skipped number is a lost message.

use actor_core::{Actor, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

use super::OrderCreated;
use crate::echo::Record;

/// The topic a [`Tally`] hears [`OrderCreated`] on.
pub const TALLY_TOPIC: &str = "soak.orders";

/// The name node `node` serves its tally under: `tally@<node>`.
pub fn tally_name(node: &str) -> String {
    format!("tally@{node}")
}

/// What one receiver saw of one sender's numbered messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// Messages received.
    pub count: u64,
    /// The first number received.
    pub first: Option<u64>,
    /// The largest number received.
    pub last: Option<u64>,
    /// Numbers jumped over: each time a number came more than one after the largest so far,
    /// the numbers in between.
    pub skipped: u64,
    /// Messages whose number was not larger than the largest so far (reordered or repeated).
    pub backwards: u64,
}

impl Sequence {
    /// Counts the message numbered `n`.
    pub fn record(&mut self, n: u64) {
        self.count += 1;
        match self.last {
            None => {
                self.first = Some(n);
                self.last = Some(n);
            }
            Some(last) if n > last => {
                self.skipped += n - last - 1;
                self.last = Some(n);
            }
            Some(_) => self.backwards += 1,
        }
    }

    /// Whether every number from `first` to `last` arrived exactly once, in order.
    pub fn is_contiguous(&self) -> bool {
        self.skipped == 0 && self.backwards == 0
    }
}

/// What one start of a node has received, as [`GetTally`] returns it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallySnapshot {
    /// The incarnation of the node (larger is a newer start).
    pub incarnation: u64,
    /// The [`Record`] tells.
    pub tells: Sequence,
    /// The [`OrderCreated`] heard on [`TALLY_TOPIC`].
    pub heard: Sequence,
}

/// Counts [`Record`] tells and [`OrderCreated`] publishes; answers [`GetTally`].
#[derive(Debug)]
pub struct Tally {
    snapshot: TallySnapshot,
}

impl Tally {
    /// A tally for the start `incarnation` of its node, with nothing counted.
    pub fn new(incarnation: u64) -> Self {
        Tally {
            snapshot: TallySnapshot {
                incarnation,
                ..TallySnapshot::default()
            },
        }
    }
}

impl Actor for Tally {}

impl RemoteActor for Tally {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<Record>()
            .message::<OrderCreated>()
            .message::<GetTally>();
    }
}

impl Handler<Record> for Tally {
    async fn handle(&mut self, msg: Record, _ctx: &mut Context<Self>) {
        self.snapshot.tells.record(msg.0);
    }
}

impl Handler<OrderCreated> for Tally {
    async fn handle(&mut self, msg: OrderCreated, _ctx: &mut Context<Self>) {
        self.snapshot.heard.record(msg.0);
    }
}

/// Asks for the tally's [`TallySnapshot`]. Sent after tells through the same ref, its reply
/// counts every one of them that arrived (one sender's messages stay in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTally;

impl Message for GetTally {
    type Reply = TallySnapshot;
}

impl RemoteMessage for GetTally {
    const TAG: &'static str = "tests.cluster.tally.get.v1";
}

impl Handler<GetTally> for Tally {
    async fn handle(&mut self, _msg: GetTally, _ctx: &mut Context<Self>) -> TallySnapshot {
        self.snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(numbers: &[u64]) -> Sequence {
        let mut sequence = Sequence::default();
        for &n in numbers {
            sequence.record(n);
        }
        sequence
    }

    #[test]
    fn numbers_in_order_from_anywhere_are_contiguous() {
        let seen = sequence(&[7, 8, 9]);
        assert_eq!((seen.count, seen.first, seen.last), (3, Some(7), Some(9)));
        assert!(seen.is_contiguous());
    }

    #[test]
    fn a_jump_counts_the_numbers_skipped() {
        let seen = sequence(&[0, 1, 4, 5, 7]);
        assert_eq!(seen.skipped, 3);
        assert_eq!(seen.last, Some(7));
        assert!(!seen.is_contiguous());
    }

    #[test]
    fn a_repeated_or_late_number_counts_as_backwards() {
        let seen = sequence(&[0, 2, 1, 2]);
        assert_eq!((seen.skipped, seen.backwards), (1, 2));
        assert_eq!(seen.last, Some(2));
    }
}
