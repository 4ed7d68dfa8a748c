//! [`TallyBook`] and [`Ledger`]: what the nodes' tallies reported, start by start, and the
//! account of one numbered flow (tells to a node, or publishes heard by it) drawn from it.
//!
//! A flow numbers what it sent `0..sent`. Each start (incarnation) of the receiving node
//! received one run of those numbers, a [`Sequence`]. Laid side by side, the runs and the
//! spaces around them account for every number:
//!
//! ```text
//! sent = delivered + skipped within a start + before the first start
//!        + Σ between two starts + after the last start - backwards within a start
//! ```
//!
//! A space between two starts is the kill window of the earlier one: sent to it but not
//! confirmed before its kill, or sent while it was down and not yet known to be (a tell
//! the framework refused outright is not numbered, see `traffic`). Everything else should
//! be zero: a skipped number within a start is a message lost while both ends were up.

use std::collections::BTreeMap;

use crate::cluster::{Sequence, TallySnapshot};

/// The latest tally of every start of every node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyBook {
    by_node: BTreeMap<String, BTreeMap<u64, TallySnapshot>>,
}

impl TallyBook {
    /// Keeps `snapshot` of `node` if it is the latest of its start (counts only grow).
    pub fn record(&mut self, node: &str, snapshot: TallySnapshot) {
        let starts = self.by_node.entry(node.to_string()).or_default();
        let kept = starts.entry(snapshot.incarnation).or_insert(snapshot);
        let size = |s: &TallySnapshot| s.tells.count + s.heard.count;
        if size(&snapshot) > size(kept) {
            *kept = snapshot;
        }
    }

    /// The starts of `node` seen so far, oldest first.
    pub fn starts(&self, node: &str) -> Vec<TallySnapshot> {
        self.by_node
            .get(node)
            .map(|starts| starts.values().copied().collect())
            .unwrap_or_default()
    }

    /// The tells `node` has confirmed, over all its starts.
    pub fn tells_delivered(&self, node: &str) -> u64 {
        self.starts(node).iter().map(|s| s.tells.count).sum()
    }

    /// The account of the tells to `node`, of which `sent` were numbered.
    pub fn tells(&self, node: &str, sent: u64) -> Ledger {
        let runs: Vec<(u64, Sequence)> = self
            .starts(node)
            .iter()
            .map(|s| (s.incarnation, s.tells))
            .collect();
        Ledger::of(&runs, sent)
    }

    /// The account of the publishes heard by `node`, of which `sent` were published.
    pub fn heard(&self, node: &str, sent: u64) -> Ledger {
        let runs: Vec<(u64, Sequence)> = self
            .starts(node)
            .iter()
            .map(|s| (s.incarnation, s.heard))
            .collect();
        Ledger::of(&runs, sent)
    }
}

/// The account of one numbered flow to one node: see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Numbered messages sent.
    pub sent: u64,
    /// Received, over all starts.
    pub delivered: u64,
    /// Numbers sent before the first number the first start received.
    pub before_first: u64,
    /// Per start that was followed by another: (its incarnation, the numbers between its
    /// last and the next start's first).
    pub between: Vec<(u64, u64)>,
    /// Numbers sent after the last number the last start received.
    pub after_last: u64,
    /// Numbers skipped within a start.
    pub skipped: u64,
    /// Numbers received out of order or twice within a start.
    pub backwards: u64,
    /// Starts whose runs overlap the next one's (a number received by two starts).
    pub overlaps: u64,
}

impl Ledger {
    /// The account of `sent` numbered messages received as `runs`, one per start
    /// (incarnation, what it received), oldest first. Starts that received nothing have
    /// no place in the numbering and are left out.
    pub fn of(runs: &[(u64, Sequence)], sent: u64) -> Ledger {
        let mut ledger = Ledger {
            sent,
            ..Ledger::default()
        };
        let mut next = 0;
        let mut previous: Option<u64> = None;
        for (incarnation, run) in runs {
            let (Some(first), Some(last)) = (run.first, run.last) else {
                continue;
            };
            ledger.delivered += run.count;
            ledger.skipped += run.skipped;
            ledger.backwards += run.backwards;
            let space = first.saturating_sub(next);
            if first < next {
                ledger.overlaps += 1;
            }
            match previous {
                None => ledger.before_first = space,
                Some(earlier) => ledger.between.push((earlier, space)),
            }
            next = next.max(last + 1);
            previous = Some(*incarnation);
        }
        ledger.after_last = sent.saturating_sub(next);
        ledger
    }

    /// Sent but not received.
    pub fn missing(&self) -> u64 {
        self.sent.saturating_sub(self.delivered)
    }

    /// The numbers between starts, summed: what the kills took.
    pub fn at_kills(&self) -> u64 {
        self.between.iter().map(|(_, n)| n).sum()
    }

    /// The numbers between the start `incarnation` and the next, if it was followed.
    pub fn after_start(&self, incarnation: u64) -> Option<u64> {
        self.between
            .iter()
            .find(|(i, _)| *i == incarnation)
            .map(|(_, n)| *n)
    }

    /// Whether every number is accounted for: received, or in a space the ledger names.
    pub fn balances(&self) -> bool {
        self.delivered + self.skipped + self.before_first + self.at_kills() + self.after_last
            == self.sent + self.backwards
            && self.overlaps == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(numbers: std::ops::Range<u64>) -> Sequence {
        let mut sequence = Sequence::default();
        for n in numbers {
            sequence.record(n);
        }
        sequence
    }

    #[test]
    fn one_start_that_received_everything_balances_with_nothing_missing() {
        let ledger = Ledger::of(&[(1, run(0..100))], 100);
        assert_eq!((ledger.delivered, ledger.missing()), (100, 0));
        assert!(ledger.balances());
    }

    #[test]
    fn the_numbers_between_two_starts_are_the_kill_window_of_the_first() {
        let ledger = Ledger::of(&[(1, run(0..40)), (2, run(55..100))], 100);
        assert_eq!(ledger.between, vec![(1, 15)]);
        assert_eq!(ledger.after_start(1), Some(15));
        assert_eq!((ledger.at_kills(), ledger.missing()), (15, 15));
        assert_eq!((ledger.before_first, ledger.after_last), (0, 0));
        assert!(ledger.balances());
    }

    #[test]
    fn numbers_sent_after_the_last_confirmed_are_after_last() {
        let ledger = Ledger::of(&[(1, run(0..90))], 100);
        assert_eq!(ledger.after_last, 10);
        assert!(ledger.balances());
    }

    #[test]
    fn a_start_that_received_nothing_has_no_place_in_the_numbering() {
        let ledger = Ledger::of(
            &[(1, run(0..40)), (2, Sequence::default()), (3, run(60..70))],
            70,
        );
        assert_eq!(ledger.between, vec![(1, 20)]);
        assert!(ledger.balances());
    }

    #[test]
    fn a_skip_within_a_start_is_counted_apart_from_the_kills() {
        let mut lossy = run(0..10);
        lossy.record(12);
        let ledger = Ledger::of(&[(1, lossy)], 13);
        assert_eq!((ledger.skipped, ledger.at_kills()), (2, 0));
        assert!(ledger.balances());
    }

    #[test]
    fn overlapping_starts_do_not_balance() {
        let ledger = Ledger::of(&[(1, run(0..50)), (2, run(40..60))], 60);
        assert_eq!(ledger.overlaps, 1);
        assert!(!ledger.balances());
    }

    #[test]
    fn the_book_keeps_the_latest_tally_of_each_start() {
        let mut book = TallyBook::default();
        let tally = |incarnation, tells| TallySnapshot {
            incarnation,
            tells,
            heard: Sequence::default(),
        };
        book.record("a", tally(1, run(0..10)));
        book.record("a", tally(1, run(0..5)));
        book.record("a", tally(2, run(12..20)));
        assert_eq!(book.starts("a").len(), 2);
        assert_eq!(book.tells_delivered("a"), 18);
        assert_eq!(book.tells("a", 20).between, vec![(1, 2)]);
        assert!(book.starts("b").is_empty());
    }
}
