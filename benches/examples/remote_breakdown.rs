//! Where the time of the remote figures goes: each remote scenario, ours and the raw quinn
//! baseline, run on its own with CPU time, heap allocations and writes counted per message.
//!
//! `cargo run --release -p benches --example remote_breakdown`            all scenarios
//! `cargo run --release -p benches --example remote_breakdown -- ours-tell 5`   one, ~5 s
//!
//! With a scenario name (and optionally seconds to keep going), runs only that scenario, for
//! `perf record -e cpu-clock --call-graph dwarf` or `perf stat -e context-switches`, without
//! counting allocations. Scenarios: `ours-tell`, `ours-try-tell` (the same through
//! `try_tell`, yielding while full), `raw-tell`, `raw-tell-each-frame`, `ours-tell-8`,
//! `raw-tell-8`, `ours-ask`, `raw-ask`, and `raw-ask-hops`: the raw ask with a writer task
//! and a reader task between the asking task and its stream, which shows what task hops
//! cost a round trip on this runtime.
//!
//! CPU time is the sum over all threads of this process (`/proc/self/task/*/schedstat`), so a
//! message's figure is the work of the sender, both transports and the receiver together, on
//! a runtime that is otherwise idle. Allocation counts are process-wide too. UDP sends and
//! drops (receive buffer overflows) are the kernel's counters (`/proc/net/snmp`), so they
//! also count other UDP traffic on the machine.

// A global allocator is an `unsafe impl`; this one only counts and forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use actor_core::SendError;
use benches::BenchResult;
use benches::remote::SENDERS;
use benches::remote::ours::{Blob64, NodePair, TakeCount};
use benches::remote::raw::{
    CountingStream, EchoStream, RawQuinn, WriteBatching, raw_tell_concurrent,
};
use benches::runtime::{build, on_worker};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
/// Off while profiling one scenario: two shared counters bumped by both workers on every
/// allocation would show up in the profile.
static COUNTING: AtomicBool = AtomicBool::new(true);

fn count(bytes: usize) {
    if COUNTING.load(Relaxed) {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(bytes as u64, Relaxed);
    }
}

// SAFETY: forwards every call to `System` unchanged; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Messages per tell round and round trips per ask round.
const TELLS: u64 = 100_000;
const ASKS: u64 = 5_000;

const SCENARIOS: &[&str] = &[
    "ours-tell",
    "ours-try-tell",
    "raw-tell",
    "raw-tell-each-frame",
    "ours-tell-8",
    "raw-tell-8",
    "ours-ask",
    "raw-ask",
    "raw-ask-hops",
];

/// Counters read before and after a scenario.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_ns: u64,
    allocs: u64,
    alloc_bytes: u64,
    udp: UdpCounters,
}

impl Sample {
    fn now() -> Self {
        Sample {
            at: Instant::now(),
            cpu_ns: process_cpu_ns(),
            allocs: ALLOCS.load(Relaxed),
            alloc_bytes: ALLOC_BYTES.load(Relaxed),
            udp: UdpCounters::read(),
        }
    }
}

/// The kernel's UDP counters of this network namespace (`/proc/net/snmp`): both nodes' and
/// anything else's on the machine, so run the scenarios on a quiet machine.
#[derive(Debug, Clone, Copy, Default)]
struct UdpCounters {
    out_datagrams: u64,
    receive_buffer_errors: u64,
}

impl UdpCounters {
    fn read() -> Self {
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
            return UdpCounters::default();
        };
        let field = |name: &str| {
            let i = names.split_whitespace().position(|n| n == name)?;
            values.split_whitespace().nth(i)?.parse().ok()
        };
        UdpCounters {
            out_datagrams: field("OutDatagrams").unwrap_or(0),
            receive_buffer_errors: field("RcvbufErrors").unwrap_or(0),
        }
    }
}

/// CPU time of every thread of this process, in ns.
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// One scenario's set-up, ready to run rounds.
enum Scenario {
    OursTell(Arc<NodePair>, usize),
    /// `try_tell` in a loop that yields while the lane is full: the send path without the
    /// boxed future and the awaited queue send of `tell`.
    OursTryTell(Arc<NodePair>),
    OursAsk(Arc<NodePair>),
    /// The connection is held open while the scenario runs.
    RawTell {
        _quinn: RawQuinn,
        batching: WriteBatching,
        streams: Arc<Mutex<Vec<CountingStream>>>,
    },
    RawAsk {
        _quinn: RawQuinn,
        echo: Arc<Mutex<EchoStream>>,
    },
    RawAskHops {
        _quinn: RawQuinn,
        echo: Arc<Mutex<benches::remote::raw::HoppedEcho>>,
    },
}

impl Scenario {
    fn start(rt: &Runtime, name: &str) -> BenchResult<Self> {
        let ours = || BenchResult::Ok(Arc::new(on_worker(rt, NodePair::start())?));
        let raw_tell = |batching, senders| {
            on_worker(rt, async move {
                let raw = RawQuinn::start().await?;
                let mut streams = Vec::new();
                for _ in 0..senders {
                    streams.push(raw.counting_stream().await?);
                }
                BenchResult::Ok(Scenario::RawTell {
                    _quinn: raw,
                    batching,
                    streams: Arc::new(Mutex::new(streams)),
                })
            })
        };
        match name {
            "ours-tell" => Ok(Scenario::OursTell(ours()?, 1)),
            "ours-tell-8" => Ok(Scenario::OursTell(ours()?, SENDERS)),
            "ours-try-tell" => Ok(Scenario::OursTryTell(ours()?)),
            "ours-ask" => Ok(Scenario::OursAsk(ours()?)),
            "raw-tell" => raw_tell(WriteBatching::DEFAULT, 1),
            "raw-tell-each-frame" => raw_tell(WriteBatching::EachFrame, 1),
            "raw-tell-8" => raw_tell(WriteBatching::DEFAULT, SENDERS),
            "raw-ask" => on_worker(rt, async {
                let raw = RawQuinn::start().await?;
                let echo = raw.echo_stream().await?;
                BenchResult::Ok(Scenario::RawAsk {
                    _quinn: raw,
                    echo: Arc::new(Mutex::new(echo)),
                })
            }),
            "raw-ask-hops" => on_worker(rt, async {
                let raw = RawQuinn::start().await?;
                let echo = raw.echo_stream().await?.hopped();
                BenchResult::Ok(Scenario::RawAskHops {
                    _quinn: raw,
                    echo: Arc::new(Mutex::new(echo)),
                })
            }),
            other => Err(format!("unknown scenario `{other}`; known: {SCENARIOS:?}").into()),
        }
    }

    /// Runs rounds until `at_least` has passed (at least one); returns messages moved.
    fn run(&self, rt: &Runtime, at_least: Duration) -> BenchResult<u64> {
        let start = Instant::now();
        let mut ops = 0;
        loop {
            ops += match self {
                Scenario::OursTell(pair, 1) => {
                    let pair = Arc::clone(pair);
                    on_worker(rt, async move { pair.tell(TELLS).await })?.delivered
                }
                Scenario::OursTell(pair, senders) => {
                    let (pair, senders) = (Arc::clone(pair), *senders);
                    let per = TELLS / senders as u64;
                    on_worker(rt, async move { pair.tell_concurrent(senders, per).await })?
                        .delivered
                }
                Scenario::OursTryTell(pair) => {
                    let pair = Arc::clone(pair);
                    on_worker(rt, try_tells(pair))?
                }
                Scenario::OursAsk(pair) => {
                    let pair = Arc::clone(pair);
                    on_worker(rt, async move { pair.latencies(ASKS).await })?.len() as u64
                }
                Scenario::RawTell {
                    batching, streams, ..
                } => {
                    let (batching, streams) = (*batching, Arc::clone(streams));
                    on_worker(rt, async move {
                        let mut held = streams.lock().await;
                        let taken = std::mem::take(&mut *held);
                        let per = TELLS / taken.len() as u64;
                        let (run, back) = raw_tell_concurrent(taken, per, batching).await?;
                        *held = back;
                        BenchResult::Ok(run.delivered)
                    })?
                }
                Scenario::RawAskHops { echo, .. } => {
                    let echo = Arc::clone(echo);
                    on_worker(rt, async move { echo.lock().await.latencies(ASKS).await })?.len()
                        as u64
                }
                Scenario::RawAsk { echo, .. } => {
                    let echo = Arc::clone(echo);
                    on_worker(rt, async move { echo.lock().await.latencies(ASKS).await })?.len()
                        as u64
                }
            };
            if start.elapsed() >= at_least {
                return Ok(ops);
            }
        }
    }

    fn pair(&self) -> Option<&NodePair> {
        match self {
            Scenario::OursTell(pair, _) | Scenario::OursTryTell(pair) | Scenario::OursAsk(pair) => {
                Some(pair)
            }
            _ => None,
        }
    }
}

/// [`TELLS`] `try_tell`s, yielding while the lane is full, then one ask for the count.
async fn try_tells(pair: Arc<NodePair>) -> BenchResult<u64> {
    let sink = pair.sink();
    for i in 0..TELLS {
        let mut msg = Blob64::new(i);
        loop {
            match sink.try_tell(msg) {
                Ok(()) => break,
                Err(SendError::Full(back)) => {
                    msg = back;
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(sink.ask(TakeCount).await?)
}

fn measure(rt: &Runtime, name: &str, at_least: Duration) -> BenchResult<()> {
    let scenario = Scenario::start(rt, name)?;
    // Warm-up: opens the lane or streams, grows buffers.
    scenario.run(rt, Duration::ZERO)?;
    let sent_before = scenario.pair().map(|p| p.sender_stats());
    let before = Sample::now();
    let ops = scenario.run(rt, at_least)?;
    let after = Sample::now();
    let secs = (after.at - before.at).as_secs_f64();
    let per = |x: u64, y: u64| x as f64 / y as f64;
    print!(
        "{name:<20} {:>10.0} msgs/s  {:>6.2} us CPU/msg  {:>6.3} UDP sends/msg  {} UDP drops",
        ops as f64 / secs,
        per(after.cpu_ns - before.cpu_ns, ops) / 1e3,
        per(after.udp.out_datagrams - before.udp.out_datagrams, ops),
        after.udp.receive_buffer_errors - before.udp.receive_buffer_errors,
    );
    if COUNTING.load(Relaxed) {
        print!(
            "  {:>6.2} allocs/msg  {:>7.1} B alloc/msg",
            per(after.allocs - before.allocs, ops),
            per(after.alloc_bytes - before.alloc_bytes, ops),
        );
    }
    if let (Some(pair), Some(b)) = (scenario.pair(), sent_before) {
        let a = pair.sender_stats();
        let frames = a.frames_sent - b.frames_sent;
        print!(
            "  | A: {:.1} frames/write, {:.1} B/frame",
            per(frames, a.writes - b.writes),
            per(a.bytes_sent - b.bytes_sent, frames)
        );
    }
    println!();
    Ok(())
}

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = build()?;
    match args.first() {
        Some(name) => {
            COUNTING.store(false, Relaxed);
            let secs: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(5);
            measure(&rt, name, Duration::from_secs(secs))
        }
        None => {
            for name in SCENARIOS {
                measure(&rt, name, Duration::from_secs(1))?;
            }
            Ok(())
        }
    }
}
