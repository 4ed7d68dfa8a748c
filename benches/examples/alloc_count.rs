//! Counts heap allocations per operation of the local scenarios, ours beside the baseline,
//! with a counting global allocator: allocations and bytes per tell, per ask, per spawn, the
//! live bytes an idle actor keeps, and the sizes of the blocks one spawn allocates.
//!
//! `cargo run --release -p benches --example alloc_count`
//!
//! Counts are process-wide (every thread), so a figure is the work of both the sender and
//! the receiving task; the runtime is otherwise idle while a figure is taken.

// A global allocator is an `unsafe impl`; this one only counts and forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use actor_core::{ActorRef, ActorSystem};
use benches::local::spawn::{BareSender, Idle, spawn_bare_task};
use benches::local::{Add, CAPACITY, Counter, RawCounter, Total};
use benches::runtime::{build, on_worker};
use tokio::task::JoinHandle;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static ALLOC_BYTES: AtomicUsize = AtomicUsize::new(0);
static FREES: AtomicUsize = AtomicUsize::new(0);
static FREE_BYTES: AtomicUsize = AtomicUsize::new(0);
static RECORDING: AtomicBool = AtomicBool::new(false);
static SIZES: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
static NEXT_SIZE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(layout.size(), Relaxed);
        if RECORDING.load(Relaxed) {
            let i = NEXT_SIZE.fetch_add(1, Relaxed);
            if let Some(slot) = SIZES.get(i) {
                slot.store(layout.size(), Relaxed);
            }
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Relaxed);
        FREE_BYTES.fetch_add(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(new_size, Relaxed);
        FREES.fetch_add(1, Relaxed);
        FREE_BYTES.fetch_add(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    allocs: usize,
    alloc_bytes: usize,
    frees: usize,
    free_bytes: usize,
}

fn snapshot() -> Snapshot {
    Snapshot {
        allocs: ALLOCS.load(Relaxed),
        alloc_bytes: ALLOC_BYTES.load(Relaxed),
        frees: FREES.load(Relaxed),
        free_bytes: FREE_BYTES.load(Relaxed),
    }
}

/// Prints allocations per operation between two snapshots.
fn per_op(label: &str, before: Snapshot, after: Snapshot, ops: usize) {
    let n = ops as f64;
    let allocs = (after.allocs - before.allocs) as f64 / n;
    let bytes = (after.alloc_bytes - before.alloc_bytes) as f64 / n;
    let live_blocks = (after.allocs - before.allocs) as f64 - (after.frees - before.frees) as f64;
    let live = (after.alloc_bytes - before.alloc_bytes) as f64
        - (after.free_bytes - before.free_bytes) as f64;
    println!(
        "{label:<46} {allocs:>5.2} allocs/op {bytes:>7.1} B/op | live: {:>5.2} blocks/op {:>7.1} B/op",
        live_blocks / n,
        live / n
    );
}

fn main() {
    let rt = build().expect("runtime");
    let system = ActorSystem::new();
    const N: u64 = 100_000;

    let sys = system.clone();
    on_worker(&rt, async move {
        let counter = sys.spawn(Counter::default()).await.expect("spawn");
        counter.ask(Total).await.expect("warm");
        let before = snapshot();
        for i in 0..N {
            counter.tell(Add(i)).await.expect("tell");
        }
        counter.ask(Total).await.expect("ask");
        per_op(
            "ours: tell (100k, then one ask)",
            before,
            snapshot(),
            N as usize,
        );
        let before = snapshot();
        for _ in 0..N {
            counter.ask(Total).await.expect("ask");
        }
        per_op("ours: ask", before, snapshot(), N as usize);
        counter.stop();

        let raw = RawCounter::spawn(CAPACITY);
        raw.total().await.expect("warm");
        let before = snapshot();
        for i in 0..N {
            raw.add(i).await.expect("add");
        }
        raw.total().await.expect("total");
        per_op(
            "baseline: mpsc send (100k, then one oneshot)",
            before,
            snapshot(),
            N as usize,
        );
        let before = snapshot();
        for _ in 0..N {
            raw.total().await.expect("total");
        }
        per_op(
            "baseline: mpsc + oneshot round trip",
            before,
            snapshot(),
            N as usize,
        );
        raw.stop().await.expect("stop");
    });

    // Live bytes per idle actor / bare task, and the blocks of one spawn.
    const IDLE: usize = 10_000;
    let sys = system.clone();
    on_worker(&rt, async move {
        let mut refs: Vec<ActorRef<Idle>> = Vec::with_capacity(IDLE);
        let before = snapshot();
        for _ in 0..IDLE {
            refs.push(sys.spawn(Idle).await.expect("spawn"));
        }
        per_op("ours: spawn Idle, kept alive", before, snapshot(), IDLE);

        let mut bare: Vec<(BareSender, JoinHandle<()>)> = Vec::with_capacity(IDLE);
        let before = snapshot();
        for _ in 0..IDLE {
            bare.push(spawn_bare_task(CAPACITY));
        }
        tokio::task::yield_now().await;
        per_op(
            "baseline: channel + tokio::spawn, kept alive",
            before,
            snapshot(),
            IDLE,
        );

        RECORDING.store(true, Relaxed);
        let one = sys.spawn(Idle).await.expect("spawn");
        RECORDING.store(false, Relaxed);
        let n = NEXT_SIZE.swap(0, Relaxed).min(SIZES.len());
        let sizes: Vec<usize> = SIZES[..n].iter().map(|s| s.load(Relaxed)).collect();
        println!(
            "ours: blocks allocated by one spawn (bytes): {sizes:?} (sum {})",
            sizes.iter().sum::<usize>()
        );

        RECORDING.store(true, Relaxed);
        let task = spawn_bare_task(CAPACITY);
        tokio::task::yield_now().await;
        RECORDING.store(false, Relaxed);
        let n = NEXT_SIZE.swap(0, Relaxed).min(SIZES.len());
        let sizes: Vec<usize> = SIZES[..n].iter().map(|s| s.load(Relaxed)).collect();
        println!(
            "baseline: blocks allocated by one channel + spawn (bytes): {sizes:?} (sum {})",
            sizes.iter().sum::<usize>()
        );
        drop((one, task, refs, bare));
        sys.shutdown().await;
    });
}
