//! [`Report`]: what a soak run measured, printed as Markdown tables (memory over time,
//! tells, asks, publishes, restarts) followed by the checks it passed or failed
//! ([`Report::problems`]).

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use super::args::SoakArgs;
use super::ledger::Ledger;
use super::restart::RestartRecord;
use super::traffic::{AskCount, TellCount};

/// One node process's memory at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeMemory {
    /// Its process id, `None` while it is down.
    pub pid: Option<u32>,
    /// Its resident set size in KiB, `None` if it could not be read.
    pub rss_kib: Option<u64>,
}

/// One row of the memory table, with the cumulative traffic counts at that moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RssRow {
    /// Counted from the start of the traffic.
    pub at: Duration,
    /// Per node process.
    pub nodes: BTreeMap<String, NodeMemory>,
    /// The soak process's own resident set size (driver and publisher nodes) in KiB.
    pub soak_rss_kib: Option<u64>,
    /// Restarts done so far.
    pub restarts: usize,
    /// Tells accepted so far (all nodes).
    pub tells_accepted: u64,
    /// Asks so far (all targets).
    pub asks: AskCount,
    /// Publishes so far.
    pub published: u64,
}

/// The tells to one node: the sender's counts and the receiver's account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TellReport {
    /// As the sender counted them.
    pub sent: TellCount,
    /// As the node's tallies account for the accepted ones.
    pub ledger: Ledger,
}

/// Everything one soak run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The settings of the run.
    pub settings: SoakArgs,
    /// How long the traffic ran.
    pub ran: Duration,
    /// Whether the run was cut short by Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// The memory table, one row per `--sample-every` plus the last.
    pub rows: Vec<RssRow>,
    /// Tells, per node.
    pub tells: BTreeMap<String, TellReport>,
    /// The driver node's `tells_dropped` counter at the end.
    pub driver_tells_dropped: u64,
    /// Asks to each node's `where@<node>`.
    pub asks: BTreeMap<String, AskCount>,
    /// Asks to the `echo` group.
    pub group_asks: AskCount,
    /// Publishes made.
    pub published: u64,
    /// The account of the publishes each node heard.
    pub heard: BTreeMap<String, Ledger>,
    /// The publisher node's `tells_dropped` counter at the end (publishes it could not
    /// hand to a connection).
    pub publisher_tells_dropped: u64,
    /// The kills and restarts, in order.
    pub restarts: Vec<RestartRecord>,
    /// Traffic tasks that did not stop within their bound.
    pub aborted_tasks: usize,
}

impl Report {
    /// Tells summed over the nodes.
    pub fn tells_total(&self) -> (TellCount, Ledger) {
        let mut count = TellCount::default();
        let mut ledger = Ledger::default();
        for t in self.tells.values() {
            count.attempted += t.sent.attempted;
            count.accepted += t.sent.accepted;
            count.refused += t.sent.refused;
            count.failed += t.sent.failed;
            ledger.sent += t.ledger.sent;
            ledger.delivered += t.ledger.delivered;
            ledger.before_first += t.ledger.before_first;
            ledger.between.extend(t.ledger.between.iter().copied());
            ledger.after_last += t.ledger.after_last;
            ledger.skipped += t.ledger.skipped;
            ledger.backwards += t.ledger.backwards;
            ledger.overlaps += t.ledger.overlaps;
        }
        (count, ledger)
    }

    /// Tells the driver's framework counted as dropped after it had accepted them (the
    /// rest of `tells_dropped` are the refused ones). Negative if it counted fewer drops
    /// than refusals.
    pub fn dropped_after_acceptance(&self) -> i64 {
        let (count, _) = self.tells_total();
        self.driver_tells_dropped as i64 - count.refused as i64
    }

    /// Accepted tells lost at kills and counted by nobody: those missing at the kills less
    /// those the framework counted as dropped after acceptance.
    pub fn lost_in_kills(&self) -> i64 {
        let (_, ledger) = self.tells_total();
        ledger.at_kills() as i64 - self.dropped_after_acceptance()
    }

    /// Asks summed over every target.
    pub fn asks_total(&self) -> AskCount {
        self.asks
            .values()
            .copied()
            .fold(self.group_asks, |a, b| a + b)
    }

    /// What the run shows to be wrong, one line each; empty when every check passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (node, tells) in &self.tells {
            let l = &tells.ledger;
            if !l.balances() {
                problems.push(format!(
                    "tells to {node}: the account does not balance: {l:?}"
                ));
            }
            if l.skipped + l.backwards > 0 {
                problems.push(format!(
                    "tells to {node}: {} lost and {} out of order while both ends were up",
                    l.skipped, l.backwards
                ));
            }
            if l.before_first + l.after_last > 0 {
                problems.push(format!(
                    "tells to {node}: {} missing before the first start, {} after the last \
                     tally (outside any kill)",
                    l.before_first, l.after_last
                ));
            }
            if tells.sent.failed > 0 {
                problems.push(format!(
                    "tells to {node}: {} failed with an error other than Unreachable",
                    tells.sent.failed
                ));
            }
        }
        for (node, l) in &self.heard {
            if !l.balances() || l.skipped + l.backwards > 0 {
                problems.push(format!(
                    "publishes heard by {node}: {} lost and {} out of order within a start \
                     ({l:?})",
                    l.skipped, l.backwards
                ));
            }
            if l.before_first + l.after_last > 0 {
                problems.push(format!(
                    "publishes heard by {node}: {} missing before the first start, {} after \
                     the last tally",
                    l.before_first, l.after_last
                ));
            }
        }
        if self.dropped_after_acceptance() < 0 {
            problems.push(format!(
                "the driver's tells_dropped ({}) is below the tells refused as Unreachable ({})",
                self.driver_tells_dropped,
                self.tells_total().0.refused
            ));
        }
        if self.lost_in_kills() < 0 {
            problems.push(format!(
                "the framework counted {} tells dropped after acceptance, more than the {} \
                 missing at kills",
                self.dropped_after_acceptance(),
                self.tells_total().1.at_kills()
            ));
        }
        let asks = self.asks_total();
        if asks.wrong_reply + asks.other > 0 {
            problems.push(format!(
                "{} asks got a wrong reply and {} failed with an unexpected error",
                asks.wrong_reply, asks.other
            ));
        }
        for (i, restart) in self.restarts.iter().enumerate() {
            if !restart.is_complete() {
                problems.push(format!("restart {} did not complete: {restart:?}", i + 1));
            }
        }
        if self.aborted_tasks > 0 {
            problems.push(format!(
                "{} traffic tasks did not stop in time",
                self.aborted_tasks
            ));
        }
        problems
    }

    fn write_memory(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let nodes: Vec<&String> = self
            .rows
            .first()
            .map(|r| r.nodes.keys().collect())
            .unwrap_or_default();
        writeln!(f, "### Resident memory (MiB) over time\n")?;
        write!(f, "| t |")?;
        for node in &nodes {
            write!(f, " {node} |")?;
        }
        writeln!(
            f,
            " soak process | restarts | tells/s | asks/s | failed asks | publishes/s |"
        )?;
        write!(f, "| ---: |")?;
        for _ in &nodes {
            write!(f, " ---: |")?;
        }
        writeln!(f, " ---: | ---: | ---: | ---: | ---: | ---: |")?;
        let mut previous: Option<&RssRow> = None;
        for row in &self.rows {
            write!(f, "| {} |", clock(row.at))?;
            for node in &nodes {
                let now = row.nodes.get(*node).copied().unwrap_or_default();
                let before = previous
                    .and_then(|p| p.nodes.get(*node))
                    .and_then(|m| m.pid);
                let restarted = previous.is_some() && now.pid != before;
                match now.rss_kib {
                    Some(kib) => write!(f, " {}{} |", mib(kib), if restarted { "*" } else { "" })?,
                    None => write!(f, " down |")?,
                }
            }
            let soak = row.soak_rss_kib.map(mib).unwrap_or_else(|| "-".to_string());
            write!(f, " {soak} | {} |", row.restarts)?;
            match previous {
                Some(p) => {
                    let secs = (row.at.saturating_sub(p.at)).as_secs_f64().max(0.001);
                    let asks = row.asks - p.asks;
                    writeln!(
                        f,
                        " {:.0} | {:.0} | {} | {:.0} |",
                        (row.tells_accepted - p.tells_accepted) as f64 / secs,
                        asks.total() as f64 / secs,
                        asks.failed(),
                        (row.published - p.published) as f64 / secs,
                    )?;
                }
                None => writeln!(f, " - | - | - | - |")?,
            }
            previous = Some(row);
        }
        writeln!(
            f,
            "\n`*`: restarted since the previous row. Rates and failed asks are over the \
             interval since the previous row.\n"
        )
    }

    fn write_tells(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "### Tells (driver -> tally@node)\n")?;
        writeln!(
            f,
            "| node | attempted | refused (Unreachable) | accepted | delivered | missing at kills | missing elsewhere | other errors |"
        )?;
        writeln!(
            f,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        let row = |f: &mut Formatter<'_>, name: &str, sent: &TellCount, l: &Ledger| {
            writeln!(
                f,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                sent.attempted,
                sent.refused,
                sent.accepted,
                l.delivered,
                l.at_kills(),
                l.before_first + l.after_last + l.skipped,
                sent.failed
            )
        };
        for (node, t) in &self.tells {
            row(f, node, &t.sent, &t.ledger)?;
        }
        let (count, ledger) = self.tells_total();
        row(f, "**all**", &count, &ledger)?;
        let dropped_after = self.dropped_after_acceptance();
        writeln!(
            f,
            "\nThe driver's `tells_dropped`: {} = {} refused at the send + {} dropped after \
             acceptance (queued on a connection that closed).",
            self.driver_tells_dropped, count.refused, dropped_after
        )?;
        let elsewhere = ledger.before_first + ledger.after_last + ledger.skipped;
        let balances = count.attempted + ledger.backwards
            == ledger.delivered
                + self.driver_tells_dropped
                + self.lost_in_kills().max(0) as u64
                + elsewhere
                + count.failed;
        writeln!(
            f,
            "Reconciliation: sent {} = delivered {} + dropped {} + lost in kills {} + \
             missing elsewhere {} + other errors {}{}.\n",
            count.attempted,
            ledger.delivered,
            self.driver_tells_dropped,
            self.lost_in_kills(),
            elsewhere,
            count.failed,
            if balances {
                " (balances)"
            } else {
                " (DOES NOT BALANCE)"
            }
        )?;
        writeln!(
            f,
            "\"Lost in kills\": accepted by the driver's connection to a node that was then \
             killed (or was already dead and not yet known to be) and neither confirmed by its \
             tally before the kill nor counted as dropped: tells in flight at the kill, and \
             tells written to the dead node's connection until its loss was detected.\n"
        )
    }

    fn write_asks(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "### Asks by outcome (time-out {:?})\n",
            self.settings.ask_timeout
        )?;
        writeln!(
            f,
            "| target | total | Ok | Timeout | NodeDown | Unreachable | wrong reply | other |"
        )?;
        writeln!(
            f,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        let row = |f: &mut Formatter<'_>, name: &str, a: &AskCount| {
            writeln!(
                f,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                a.total(),
                a.ok,
                a.timeout,
                a.node_down,
                a.unreachable,
                a.wrong_reply,
                a.other
            )
        };
        for (node, asks) in &self.asks {
            row(f, &format!("where@{node}"), asks)?;
        }
        row(f, "echo (group)", &self.group_asks)?;
        row(f, "**all**", &self.asks_total())?;
        writeln!(f)
    }

    fn write_publishes(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "### Publishes (publisher -> every node's tally)\n")?;
        writeln!(
            f,
            "{} published; the publisher's `tells_dropped`: {}.\n",
            self.published, self.publisher_tells_dropped
        )?;
        writeln!(
            f,
            "| node | heard | missed at kills | missed elsewhere | out of order |"
        )?;
        writeln!(f, "| --- | ---: | ---: | ---: | ---: |")?;
        for (node, l) in &self.heard {
            writeln!(
                f,
                "| {node} | {} | {} | {} | {} |",
                l.delivered,
                l.at_kills(),
                l.before_first + l.after_last + l.skipped,
                l.backwards
            )?;
        }
        writeln!(f)
    }

    fn write_restarts(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "### Kills and restarts\n")?;
        writeln!(
            f,
            "| # | at | victim | down everywhere (after kill) | rejoined (after restart) | refs answer (after restart) | tells missing | publishes missed |"
        )?;
        writeln!(
            f,
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for (i, r) in self.restarts.iter().enumerate() {
            let window = |ledgers: Option<&Ledger>| {
                r.killed_incarnation
                    .and_then(|inc| ledgers?.after_start(inc))
                    .map_or_else(|| "-".to_string(), |n| n.to_string())
            };
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                clock(r.at),
                r.victim,
                millis(r.down_everywhere),
                millis(r.rejoined),
                millis(r.refs_answer),
                window(self.tells.get(&r.victim).map(|t| &t.ledger)),
                window(self.heard.get(&r.victim)),
            )?;
            if let Some(failure) = &r.failure {
                writeln!(f, "|  |  | failure: {failure} |  |  |  |  |  |")?;
            }
        }
        let times = |pick: fn(&RestartRecord) -> Option<Duration>| -> Vec<Duration> {
            let mut times: Vec<Duration> = self.restarts.iter().filter_map(pick).collect();
            times.sort();
            times
        };
        for (what, sorted) in [
            ("down everywhere", times(|r| r.down_everywhere)),
            ("rejoined", times(|r| r.rejoined)),
            ("refs answer", times(|r| r.refs_answer)),
        ] {
            if let (Some(min), Some(max)) = (sorted.first(), sorted.last()) {
                writeln!(
                    f,
                    "\n{what}: min {} ms, median {} ms, max {} ms",
                    min.as_millis(),
                    sorted[sorted.len() / 2].as_millis(),
                    max.as_millis()
                )?;
            }
        }
        writeln!(f)
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "## Soak: {} of traffic{}, a kill every {}\n",
            clock(self.ran),
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            if s.kill_every.is_zero() {
                "never".to_string()
            } else {
                format!("{:?}", s.kill_every)
            }
        )?;
        writeln!(
            f,
            "Per node {} tells/s and {} asks/s; {} group asks/s; {} publishes/s. Three node \
             processes (a, b, c) and the soak process (driver and publisher nodes); {} build.\n",
            s.rate,
            s.ask_rate,
            s.group_ask_rate,
            s.publish_rate,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        )?;
        self.write_memory(f)?;
        self.write_tells(f)?;
        self.write_asks(f)?;
        self.write_publishes(f)?;
        self.write_restarts(f)?;
        writeln!(f, "### Checks\n")?;
        let problems = self.problems();
        if problems.is_empty() {
            writeln!(
                f,
                "All passed: every accepted tell and every publish is accounted for, nothing was lost or reordered while both ends were up, every ask ended with the right reply or an allowed error, every restart rejoined."
            )?;
        }
        for problem in problems {
            writeln!(f, "- FAILED: {problem}")?;
        }
        let asks = self.asks_total();
        if asks.timeout > 0 {
            writeln!(
                f,
                "- note: {} asks timed out (allowed, but a node that is up should answer)",
                asks.timeout
            )?;
        }
        Ok(())
    }
}

/// `m:ss` (or `h:mm:ss`).
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3_600 {
        format!("{}:{:02}:{:02}", secs / 3_600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(
        || "not in time".to_string(),
        |d| format!("{} ms", d.as_millis()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_shows_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_secs(0)), "0:00");
        assert_eq!(clock(Duration::from_secs(605)), "10:05");
        assert_eq!(clock(Duration::from_secs(3_725)), "1:02:05");
    }
}
