//! Where the time of one local ask goes: the raw baseline with our extra costs added one at
//! a time, beside our ask and our mailbox driven without the ask machinery.
//!
//! `cargo run --release -p benches --example ask_breakdown`
//!
//! Every variant is a sequential request-reply loop on the report's runtime (2 workers);
//! rounds are interleaved and the median per variant is printed in ns per round trip.
//! With a variant number as argument, runs only that variant for a while, for
//! `perf stat` / `strace -c`. With `--workers N`, runs on N workers instead of the report's
//! 2: `--workers 1` measures the work on each path alone, with no core crossed.

use std::future::Future;
use std::time::{Duration, Instant};

use actor_core::{Actor, ActorRef, ActorSystem, Context, Handler, Message};
use benches::BenchResult;
use benches::local::ask::{RoundTrip, spawn_counter, time_round_trips};
use benches::local::{CAPACITY, Counter, RawCounter};
use benches::runtime::{build, build_with_workers, on_worker};
use benches::stats::median;
use tokio::sync::{mpsc, oneshot};

const N: u64 = 50_000;
const ROUNDS: usize = 7;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The baseline plus `tokio::time::timeout` around each round trip, as `ask` does.
struct RawWithTimeout(RawCounter);

impl RoundTrip for RawWithTimeout {
    async fn round_trip(&self) -> BenchResult<u64> {
        tokio::time::timeout(TIMEOUT, self.0.total()).await?
    }
}

type BoxedHandler =
    Box<dyn FnOnce(&mut u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The baseline with a boxed, type-erased request whose handling is a boxed future: the two
/// allocations our envelope costs per message.
struct RawBoxed(mpsc::Sender<BoxedHandler>);

impl RawBoxed {
    fn spawn() -> Self {
        let (tx, mut rx) = mpsc::channel::<BoxedHandler>(CAPACITY);
        tokio::spawn(async move {
            let mut total = 0u64;
            while let Some(h) = rx.recv().await {
                h(&mut total).await;
            }
        });
        Self(tx)
    }
}

impl RoundTrip for RawBoxed {
    async fn round_trip(&self) -> BenchResult<u64> {
        let (tx, rx) = oneshot::channel();
        let h: BoxedHandler = Box::new(move |total: &mut u64| {
            let t = *total;
            Box::pin(async move {
                let _ = tx.send(t);
            })
        });
        self.0.send(h).await.map_err(|_| "ended")?;
        Ok(rx.await?)
    }
}

/// A told message that carries its own reply channel: our mailbox and dispatch without the
/// ask machinery (no time-out, no reply slot).
struct TotalVia(oneshot::Sender<u64>);

impl Message for TotalVia {
    type Reply = ();
}

struct Replier(u64);

impl Actor for Replier {}

impl Handler<TotalVia> for Replier {
    async fn handle(&mut self, msg: TotalVia, _ctx: &mut Context<Self>) {
        let _ = msg.0.send(self.0);
    }
}

struct TellReply(ActorRef<Replier>);

impl RoundTrip for TellReply {
    async fn round_trip(&self) -> BenchResult<u64> {
        let (tx, rx) = oneshot::channel();
        self.0.tell(TotalVia(tx)).await?;
        Ok(rx.await?)
    }
}

struct TryTellReply(ActorRef<Replier>);

impl RoundTrip for TryTellReply {
    async fn round_trip(&self) -> BenchResult<u64> {
        let (tx, rx) = oneshot::channel();
        self.0.try_tell(TotalVia(tx)).map_err(|_| "full")?;
        Ok(rx.await?)
    }
}

struct TellReplyTimeout(ActorRef<Replier>);

impl RoundTrip for TellReplyTimeout {
    async fn round_trip(&self) -> BenchResult<u64> {
        let (tx, rx) = oneshot::channel();
        self.0.tell(TotalVia(tx)).await?;
        Ok(tokio::time::timeout(TIMEOUT, rx).await??)
    }
}

struct Variants {
    raw: RawCounter,
    raw_timeout: RawWithTimeout,
    raw_boxed: RawBoxed,
    ask: ActorRef<Counter>,
    tell_reply: TellReply,
    tell_reply_timeout: TellReplyTimeout,
    try_tell_reply: TryTellReply,
}

const VARIANTS: usize = 7;

impl Variants {
    async fn time(&self, i: usize) -> f64 {
        match i {
            0 => time(&self.raw).await,
            1 => time(&self.raw_timeout).await,
            2 => time(&self.raw_boxed).await,
            3 => time(&self.ask).await,
            4 => time(&self.tell_reply).await,
            5 => time(&self.tell_reply_timeout).await,
            _ => time(&self.try_tell_reply).await,
        }
    }
}

async fn time(target: &impl RoundTrip) -> f64 {
    let d = time_round_trips(target, N).await.expect("round trips");
    d.as_nanos() as f64 / N as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--workers N`: the report's runtime has 2; with 1, nothing crosses cores and nothing is
    // unparked, so what is left is the work on each path, steady between runs.
    let workers = args
        .iter()
        .position(|a| a == "--workers")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse::<usize>().expect("--workers takes a number"));
    let rt = match workers {
        Some(n) => build_with_workers(n),
        None => build(),
    }
    .expect("runtime");
    let system = ActorSystem::new();
    let sys = system.clone();
    let start = Instant::now();
    let only: Option<usize> = args
        .iter()
        .take_while(|a| *a != "--workers")
        .find_map(|a| a.parse().ok());
    let results = on_worker(&rt, async move {
        let replier = sys.spawn(Replier(7)).await.expect("spawn");
        let v = Variants {
            raw: RawCounter::spawn(CAPACITY),
            raw_timeout: RawWithTimeout(RawCounter::spawn(CAPACITY)),
            raw_boxed: RawBoxed::spawn(),
            ask: spawn_counter(&sys, CAPACITY).await.expect("spawn"),
            tell_reply: TellReply(replier.clone()),
            tell_reply_timeout: TellReplyTimeout(replier.clone()),
            try_tell_reply: TryTellReply(replier),
        };
        if let Some(i) = only {
            let mut samples = vec![Vec::new(); VARIANTS + 1];
            for _ in 0..ROUNDS * 10 {
                samples[i].push(v.time(i).await);
            }
            sys.shutdown().await;
            return samples;
        }
        let mut samples = vec![Vec::new(); VARIANTS + 1];
        for round in 0..=ROUNDS {
            // Rotate which variant goes first; round 0 is a warm-up.
            for k in 0..VARIANTS {
                let i = (round + k) % VARIANTS;
                let x = v.time(i).await;
                if round > 0 {
                    samples[i].push(x);
                }
            }
        }
        // A timer that is always due within 100 ms keeps the time driver's next wake-up
        // earlier than any 5 s ask deadline, so registering one never unparks the driver.
        let ticker = tokio::spawn(async {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
            }
        });
        for _ in 0..=ROUNDS {
            let x = time(&v.raw_timeout).await;
            samples[VARIANTS].push(x);
        }
        ticker.abort();
        sys.shutdown().await;
        samples
    });
    let names = [
        "raw mpsc + oneshot (baseline)",
        "raw + tokio::time::timeout(5s)",
        "raw + boxed envelope + boxed handler future",
        "actor ask (ours)",
        "actor tell carrying a oneshot (no timeout, no reply slot)",
        "actor tell carrying a oneshot + timeout(5s)",
        "actor try_tell carrying a oneshot",
        "raw + timeout(5s), a 100 ms interval timer alive",
    ];
    let base = median(&results[0]);
    for (name, s) in names.iter().zip(&results) {
        if s.is_empty() {
            continue;
        }
        let m = median(s);
        let ratio = if base.is_nan() {
            String::new()
        } else {
            format!("x{:.2}", m / base)
        };
        println!("{name:<58} {m:>7.0} ns  {ratio}");
    }
    eprintln!("took {:.1} s", start.elapsed().as_secs_f64());
}
