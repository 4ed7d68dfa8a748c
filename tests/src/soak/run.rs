//! [`run`]: one soak from start to [`Report`]: start the cluster, start the traffic, kill
//! and restart a node every `--kill-every` while a monitor samples memory and prints
//! progress, then stop the traffic, let the last messages land, take the final tallies and
//! write the report. Every step is bounded in time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::args::{ArgsError, SoakArgs};
use super::cluster::{ClusterError, NODES, SoakCluster, within};
use super::ledger::TallyBook;
use super::report::{NodeMemory, Report, RssRow, TellReport};
use super::restart::{RestartRecord, kill_and_restart};
use super::traffic::{Counters, Rates, Targets, Traffic};
use crate::cluster::GetTally;
use crate::process::NodeProgram;
use crate::rss::rss_kib;

/// No kill starts when less than this is left of the run: its restart would outlast it.
const LAST_KILL_MARGIN: Duration = Duration::from_secs(20);
/// Steady traffic between the end of one restart and the next kill, at least.
const MIN_STEADY: Duration = Duration::from_secs(5);
/// How long the last messages may take to land once the traffic has stopped.
const DRAIN_BOUND: Duration = Duration::from_secs(10);
/// The time-out of the monitor's tally asks.
const TALLY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the driver and the publisher may take to leave at the end.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(15);

/// Why a soak could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoakError {
    /// The command line cannot be run.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// The cluster could not be started or driven.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Runs one soak with `args`, its node processes started from `program`; ends at
/// `--duration` (or at Ctrl-C or SIGTERM, taking the same way out) with the report. The
/// node processes are gone when it returns, and when it unwinds.
///
/// # Errors
/// [`SoakError::Args`] before anything starts; [`SoakError::Cluster`] if the cluster does
/// not form.
pub async fn run(args: &SoakArgs, program: NodeProgram) -> Result<Report, SoakError> {
    args.validate()?;
    tracing::info!(
        ?args,
        "starting three node processes, the driver and the publisher"
    );
    let mut cluster = SoakCluster::start(program).await?;
    let targets = cluster.targets().await?;
    let rates = Rates {
        tells: args.rate,
        asks: args.ask_rate,
        group_asks: args.group_ask_rate,
        publishes: args.publish_rate,
        ask_timeout: args.ask_timeout,
    };
    let traffic = Traffic::start(&targets, cluster.publisher().clone(), rates);
    let started = Instant::now();
    tracing::info!(duration = ?args.duration, "the cluster has formed; traffic started");

    let book = Arc::new(Mutex::new(TallyBook::default()));
    let restart_count = Arc::new(AtomicUsize::new(0));
    let rows = Arc::new(Mutex::new(Vec::new()));
    let (stop_monitor, stopped) = watch::channel(false);
    let monitor = Monitor {
        counters: Arc::clone(traffic.counters()),
        targets: targets.clone(),
        book: Arc::clone(&book),
        pids: cluster.pids(),
        restarts: Arc::clone(&restart_count),
        rows: Arc::clone(&rows),
        started,
    };
    let monitor_task = tokio::spawn(monitor.clone().run(
        args.sample_every,
        args.progress_every,
        stopped,
    ));

    let mut restarts = Vec::new();
    let interrupted = tokio::select! {
        () = disturb(&mut cluster, &targets, &book, args, started, &mut restarts, &restart_count) => false,
        () = stop_signal() => true,
    };
    let ran = started.elapsed();
    if interrupted {
        tracing::warn!("interrupted: stopping the traffic and writing the report");
    }

    let _ = stop_monitor.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), monitor_task).await;
    let counters = Arc::clone(traffic.counters());
    let aborted_tasks = traffic
        .stop(args.ask_timeout + Duration::from_secs(5))
        .await;
    drain(&targets, &counters, &book).await;
    // The last row: memory once the last messages have landed, counts as the traffic
    // stopped. It replaces a row the monitor took at the very end.
    let last_row = monitor.sample(ran);
    let mut rows = std::mem::take(&mut *rows.lock().unwrap_or_else(PoisonError::into_inner));
    if rows
        .last()
        .is_some_and(|r| r.at + Duration::from_secs(1) > ran)
    {
        rows.pop();
    }
    rows.push(last_row);

    let book = book.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let published = counters.published.load(Ordering::Relaxed);
    let report = Report {
        settings: args.clone(),
        ran,
        interrupted,
        rows,
        tells: counters
            .tells
            .iter()
            .map(|(node, counter)| {
                let sent = counter.snapshot();
                let ledger = book.tells(node, sent.accepted);
                (node.clone(), TellReport { sent, ledger })
            })
            .collect(),
        driver_tells_dropped: cluster.driver().stats().tells_dropped,
        asks: counters
            .asks
            .iter()
            .map(|(node, counter)| (node.clone(), counter.snapshot()))
            .collect(),
        group_asks: counters.group_asks.snapshot(),
        published,
        heard: NODES
            .iter()
            .map(|n| (n.to_string(), book.heard(n, published)))
            .collect(),
        publisher_tells_dropped: cluster.publisher().stats().tells_dropped,
        restarts,
        aborted_tasks,
    };
    if tokio::time::timeout(SHUTDOWN_BOUND, cluster.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the driver and publisher did not leave in time; the children are killed");
    }
    Ok(report)
}

/// Kills and restarts a node every `--kill-every` (victims in turn a, b, c) until
/// `--duration` has passed since `started`; starts no kill in the last 20 s.
async fn disturb(
    cluster: &mut SoakCluster,
    targets: &Targets,
    book: &Mutex<TallyBook>,
    args: &SoakArgs,
    started: Instant,
    restarts: &mut Vec<RestartRecord>,
    restart_count: &AtomicUsize,
) {
    let deadline = started + args.duration;
    if args.kill_every.is_zero() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    let mut next_kill = started + args.kill_every;
    for victim in NODES.iter().cycle() {
        if next_kill + LAST_KILL_MARGIN > deadline {
            break;
        }
        tokio::time::sleep_until(next_kill).await;
        let at = started.elapsed();
        tracing::info!(%victim, "kill -9");
        let restart = kill_and_restart(cluster, victim, &targets.nodes[*victim], book, at).await;
        tracing::info!(
            %victim,
            down_everywhere = ?restart.down_everywhere,
            rejoined = ?restart.rejoined,
            refs_answer = ?restart.refs_answer,
            failure = ?restart.failure,
            "restarted"
        );
        restarts.push(restart);
        restart_count.fetch_add(1, Ordering::Relaxed);
        // A restart that overran its slot pushes the next kill back rather than
        // starting it at once.
        next_kill = (next_kill + args.kill_every).max(Instant::now() + MIN_STEADY);
    }
    tokio::time::sleep_until(deadline).await;
}

/// Waits (at most 10 s) until every node's tally has every tell accepted for it and
/// every publish, recording the tallies.
async fn drain(targets: &Targets, counters: &Counters, book: &Mutex<TallyBook>) {
    let published = counters.published.load(Ordering::Relaxed);
    let drained = within(DRAIN_BOUND, async || {
        let mut all = true;
        for (node, target) in &targets.nodes {
            let accepted = counters.tells[node].snapshot().accepted;
            match target.tally.ask_timeout(GetTally, TALLY_TIMEOUT).await {
                Ok(tally) => {
                    book.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .record(node, tally);
                    let has = |last: Option<u64>, sent: u64| sent == 0 || last == Some(sent - 1);
                    all &= has(tally.tells.last, accepted) && has(tally.heard.last, published);
                }
                Err(_) => all = false,
            }
        }
        all
    })
    .await;
    if !drained {
        tracing::warn!("not every tally caught up within {DRAIN_BOUND:?}");
    }
}

/// Resolves at Ctrl-C or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Samples memory and prints progress while the soak runs.
#[derive(Debug, Clone)]
struct Monitor {
    counters: Arc<Counters>,
    targets: Targets,
    book: Arc<Mutex<TallyBook>>,
    pids: Arc<Mutex<BTreeMap<String, Option<u32>>>>,
    restarts: Arc<AtomicUsize>,
    rows: Arc<Mutex<Vec<RssRow>>>,
    started: Instant,
}

impl Monitor {
    /// A row now (at 0 s first), then every `sample_every`; a progress line every
    /// `progress_every`; until `stop` turns true.
    async fn run(
        self,
        sample_every: Duration,
        progress_every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut next_sample = self.started;
        let mut next_progress = self.started + progress_every;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_sample.min(next_progress)) => {}
                _ = stop.changed() => return,
            }
            let now = Instant::now();
            if now >= next_sample {
                let row = self.sample(now - self.started);
                self.rows
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(row);
                next_sample += sample_every;
            }
            if now >= next_progress {
                self.progress().await;
                next_progress += progress_every;
            }
        }
    }

    fn sample(&self, at: Duration) -> RssRow {
        let pids = self
            .pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        RssRow {
            at,
            nodes: pids
                .into_iter()
                .map(|(node, pid)| {
                    let rss_kib = pid.and_then(rss_kib);
                    (node, NodeMemory { pid, rss_kib })
                })
                .collect(),
            soak_rss_kib: rss_kib(std::process::id()),
            restarts: self.restarts.load(Ordering::Relaxed),
            tells_accepted: self.counters.tells_accepted(),
            asks: self.counters.all_asks(),
            published: self.counters.published.load(Ordering::Relaxed),
        }
    }

    async fn progress(&self) {
        for (node, target) in &self.targets.nodes {
            if let Ok(tally) = target.tally.ask_timeout(GetTally, TALLY_TIMEOUT).await {
                self.book
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(node, tally);
            }
        }
        let delivered: u64 = {
            let book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
            NODES.iter().map(|n| book.tells_delivered(n)).sum()
        };
        let refused: u64 = self
            .counters
            .tells
            .values()
            .map(|t| t.snapshot().refused)
            .sum();
        let asks = self.counters.all_asks();
        let row = self.sample(self.started.elapsed());
        let rss: Vec<String> = row
            .nodes
            .iter()
            .map(|(node, m)| match m.rss_kib {
                Some(kib) => format!("{node} {:.1}", kib as f64 / 1024.0),
                None => format!("{node} down"),
            })
            .chain(
                row.soak_rss_kib
                    .map(|kib| format!("soak {:.1}", kib as f64 / 1024.0)),
            )
            .collect();
        tracing::info!(
            "t={}s tells: {} accepted, {} refused, {} confirmed delivered | asks: {} ok, {} \
             timeout, {} node down, {} unreachable, {} other | published {} | restarts {} | \
             RSS MiB: {}",
            row.at.as_secs(),
            row.tells_accepted,
            refused,
            delivered,
            asks.ok,
            asks.timeout,
            asks.node_down,
            asks.unreachable,
            asks.wrong_reply + asks.other,
            row.published,
            row.restarts,
            rss.join(", ")
        );
    }
}
