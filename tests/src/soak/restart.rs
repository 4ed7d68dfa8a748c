//! The soak's disturbance, one [`kill_and_restart`] at a time: confirm what the victim's
//! tally has received, `kill -9` the victim, wait until every other member has marked it
//! down, start it again on its address, and time until the cluster has re-formed and the
//! refs the traffic has held all along (`where@<victim>`, `tally@<victim>`) answer from
//! the new start. Every wait is bounded; a bound that runs out is recorded, not fatal.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::cluster::{SoakCluster, within};
use super::ledger::TallyBook;
use super::traffic::NodeTargets;
use crate::cluster::{GetTally, WhereAreYou};

/// How long the last tally before a kill may take.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long every other member has to mark the victim down (the design's target is 3 s).
const DOWN_BOUND: Duration = Duration::from_secs(10);
/// How long the cluster has to re-form after the restart.
const REJOIN_BOUND: Duration = Duration::from_secs(30);
/// How long the held refs have to answer from the new start once the cluster has re-formed.
const REFS_BOUND: Duration = Duration::from_secs(30);
/// The time-out of each probing ask.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One kill and restart, as it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartRecord {
    /// The node killed.
    pub victim: String,
    /// When it was killed, counted from the start of the traffic.
    pub at: Duration,
    /// The incarnation killed, as its last tally reported it.
    pub killed_incarnation: Option<u64>,
    /// From the kill until every other member saw it down; `None` if not within 10 s.
    pub down_everywhere: Option<Duration>,
    /// From the restart until every member saw every member alive; `None` if not within
    /// 30 s.
    pub rejoined: Option<Duration>,
    /// From the restart until the refs held since the start answered from the new start;
    /// `None` if not within 30 s of rejoining.
    pub refs_answer: Option<Duration>,
    /// What went wrong, if the cycle could not be completed.
    pub failure: Option<String>,
}

impl RestartRecord {
    /// Whether every step happened within its bound.
    pub fn is_complete(&self) -> bool {
        self.failure.is_none()
            && self.down_everywhere.is_some()
            && self.rejoined.is_some()
            && self.refs_answer.is_some()
    }
}

/// Kills `victim`, restarts it and records how that went; `at` is when, counted from the
/// start of the traffic. The victim's last tally before the kill goes into `book`.
pub async fn kill_and_restart(
    cluster: &mut SoakCluster,
    victim: &str,
    target: &NodeTargets,
    book: &Mutex<TallyBook>,
    at: Duration,
) -> RestartRecord {
    let mut record = RestartRecord {
        victim: victim.to_string(),
        at,
        killed_incarnation: None,
        down_everywhere: None,
        rejoined: None,
        refs_answer: None,
        failure: None,
    };
    match target.tally.ask_timeout(GetTally, CONFIRM_TIMEOUT).await {
        Ok(tally) => {
            record.killed_incarnation = Some(tally.incarnation);
            book.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(victim, tally);
        }
        Err(e) => tracing::warn!(%victim, error = %e, "no tally before the kill"),
    }

    let killed = Instant::now();
    if let Err(e) = cluster.kill(victim).await {
        record.failure = Some(format!("kill: {e}"));
        return record;
    }
    if within(DOWN_BOUND, async || {
        cluster.is_down_everywhere(victim).await
    })
    .await
    {
        record.down_everywhere = Some(killed.elapsed());
    }

    let restarted = Instant::now();
    if let Err(e) = cluster.restart(victim).await {
        record.failure = Some(format!("restart: {e}"));
        return record;
    }
    if within(REJOIN_BOUND, async || cluster.is_formed().await).await {
        record.rejoined = Some(restarted.elapsed());
    }
    let killed_incarnation = record.killed_incarnation;
    let answers_from_new_start = async || {
        let answer = target
            .whereabouts
            .ask_timeout(WhereAreYou, PROBE_TIMEOUT)
            .await;
        let tally = target.tally.ask_timeout(GetTally, PROBE_TIMEOUT).await;
        answer.as_deref() == Ok(victim)
            && tally.is_ok_and(|t| Some(t.incarnation) != killed_incarnation)
    };
    if within(REFS_BOUND, answers_from_new_start).await {
        record.refs_answer = Some(restarted.elapsed());
    }
    record
}
