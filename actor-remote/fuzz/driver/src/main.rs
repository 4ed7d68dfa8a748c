//! A bounded fuzz driver for the frame decoder that runs on the stable toolchain.
//!
//! It does what libFuzzer would do without its coverage instrumentation: it starts from the
//! corpus (and past regressions), mutates inputs (bit flips, interesting lengths, inserts,
//! deletes, splices, a re-fitted length prefix), and runs [`actor_remote_fuzz_driver::frame_decoder`]
//! on each. As a cheap stand-in for coverage, an input whose *outcome* (the shapes of the frames
//! decoded and the kind of error) has not been seen before joins the pool of inputs to mutate.
//! An input that panics is written to the regressions directory, and the run ends with exit code
//! 1 once the time is up.
//!
//! ```text
//! fuzz-driver [--seconds N] [--corpus DIR]... [--regressions DIR] [--seed N]
//! fuzz-driver --write-seeds DIR      # (re)writes the seed corpus
//! ```

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actor_remote_fuzz_driver::{frame_decoder, seeds};

/// Inputs kept for mutation, at most.
const MAX_POOL: usize = 8192;
/// Largest input generated.
const MAX_INPUT: usize = 64 * 1024;
/// Seconds between progress lines.
const REPORT_EVERY: Duration = Duration::from_secs(10);

struct Args {
    seconds: u64,
    corpus: Vec<PathBuf>,
    regressions: PathBuf,
    seed: u64,
    write_seeds: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut args = Args {
        seconds: 60,
        corpus: Vec::new(),
        regressions: here.join("regressions/frame_decoder"),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        write_seeds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--corpus" => args.corpus.push(value()?.into()),
            "--regressions" => args.regressions = value()?.into(),
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--write-seeds" => args.write_seeds = Some(value()?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.corpus.is_empty() {
        args.corpus.push(here.join("corpus/frame_decoder"));
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("fuzz-driver: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.write_seeds {
        return match write_seeds(dir) {
            Ok(n) => {
                println!("wrote {n} seeds to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fuzz-driver: {e}");
                ExitCode::FAILURE
            }
        };
    }
    fuzz(&args)
}

fn write_seeds(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let seeds = seeds();
    for seed in &seeds {
        std::fs::write(dir.join(format!("{}.bin", seed.name)), &seed.bytes)?;
    }
    Ok(seeds.len())
}

/// Every file in `dirs` but hidden ones (missing directories are skipped).
fn load(dirs: &[&Path]) -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        let hidden = |p: &Path| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        };
        for path in paths.into_iter().filter(|p| p.is_file() && !hidden(p)) {
            if let Ok(bytes) = std::fs::read(&path) {
                inputs.push(bytes);
            }
        }
    }
    inputs
}

fn fuzz(args: &Args) -> ExitCode {
    let mut dirs: Vec<&Path> = args.corpus.iter().map(PathBuf::as_path).collect();
    dirs.push(&args.regressions);
    let mut pool = load(&dirs);
    let loaded = pool.len();
    if pool.is_empty() {
        pool = seeds().into_iter().map(|s| s.bytes).collect();
    }
    println!(
        "fuzz-driver: frame_decoder for {} s, seed {}, {loaded} inputs loaded from {}",
        args.seconds,
        args.seed,
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Panics are expected to be rare; keep the message of the last one, print nothing.
    let last_panic: Arc<Mutex<String>> = Arc::default();
    let sink = Arc::clone(&last_panic);
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut last) = sink.lock() {
            *last = info.to_string();
        }
    }));

    let mut rng = Rng(args.seed);
    let mut outcomes = HashSet::new();
    let mut crashes = HashSet::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut next_report = started + REPORT_EVERY;
    let mut executions = 0u64;
    let mut slowest = Duration::ZERO;
    let mut replay = pool.clone().into_iter();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_report {
            println!(
                "  {:>4} s  {executions} execs  {} outcomes  pool {}  crashes {}",
                started.elapsed().as_secs(),
                outcomes.len(),
                pool.len(),
                crashes.len()
            );
            next_report += REPORT_EVERY;
        }
        // The loaded inputs first, as they are; then mutants and the odd random input.
        let input = match replay.next() {
            Some(input) => input,
            None if rng.below(32) == 0 => random_input(&mut rng),
            None => mutate(&mut rng, &pool),
        };
        let one = Instant::now();
        let outcome = std::panic::catch_unwind(|| frame_decoder(&input));
        slowest = slowest.max(one.elapsed());
        executions += 1;
        match outcome {
            Ok(outcome) => {
                if outcomes.insert(outcome) && pool.len() < MAX_POOL {
                    pool.push(input);
                }
            }
            Err(_) => {
                let message = last_panic.lock().map(|m| m.clone()).unwrap_or_default();
                // One file per distinct panic site and message.
                if crashes.insert(message.clone()) {
                    let path = save_crash(&args.regressions, &input);
                    println!("CRASH: {message}\n  input saved to {path}");
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz-driver: {executions} executions in {secs:.1} s ({:.0} execs/s), {} distinct \
         outcomes, pool {} inputs, slowest input {slowest:?}, {} crashes",
        executions as f64 / secs,
        outcomes.len(),
        pool.len(),
        crashes.len()
    );
    if crashes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn save_crash(dir: &Path, input: &[u8]) -> String {
    let mut h = DefaultHasher::new();
    input.hash(&mut h);
    let path = dir.join(format!("crash-{:016x}", h.finish()));
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("<not saved: {e}>"),
    }
}

/// SplitMix64: small, fast, and reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn random_input(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(512);
    (0..len).map(|_| rng.byte()).collect()
}

/// Length values at the edges of the decoder's checks.
fn interesting_u32(rng: &mut Rng, rest: usize) -> u32 {
    const EDGES: [u32; 12] = [
        0,
        1,
        12,
        13,
        14,
        255,
        256,
        257,
        4 * 1024 * 1024,
        4 * 1024 * 1024 + 1,
        u32::MAX,
        0x8000_0000,
    ];
    match rng.below(EDGES.len() + 2) {
        i if i < EDGES.len() => EDGES[i],
        i if i == EDGES.len() => rest as u32,
        _ => (rest as u32)
            .wrapping_add(rng.below(5) as u32)
            .wrapping_sub(2),
    }
}

fn interesting_u16(rng: &mut Rng, rest: usize) -> u16 {
    const EDGES: [u16; 7] = [0, 1, 2, 0x7f, 0x80, 0xff, u16::MAX];
    match rng.below(EDGES.len() + 1) {
        i if i < EDGES.len() => EDGES[i],
        _ => rest.min(usize::from(u16::MAX)) as u16,
    }
}

/// A mutant of a random pool entry: one to four stacked mutations.
fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut data = pool[rng.below(pool.len())].clone();
    if data.len() < 2 {
        data.resize(2, 0xff);
    }
    for _ in 0..=rng.below(4) {
        mutate_once(rng, pool, &mut data);
    }
    data.truncate(MAX_INPUT);
    data
}

fn mutate_once(rng: &mut Rng, pool: &[Vec<u8>], data: &mut Vec<u8>) {
    let len = data.len();
    // Mutations past the two header bytes change the stream; the header bytes change only the
    // chunking and the frame limit.
    let at = |rng: &mut Rng| 2 + rng.below((len - 2).max(1)).min(len.saturating_sub(2));
    match rng.below(11) {
        0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(len);
            data[i] = rng.byte();
        }
        2 if len >= 6 => {
            let i = 2 + rng.below(len - 5);
            let v = interesting_u32(rng, len - i - 4);
            data[i..i + 4].copy_from_slice(&v.to_be_bytes());
        }
        3 if len >= 4 => {
            let i = 2 + rng.below(len - 3);
            let v = interesting_u16(rng, len - i - 2);
            data[i..i + 2].copy_from_slice(&v.to_be_bytes());
        }
        4 => {
            let i = at(rng);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(i..i, bytes);
        }
        5 if len > 2 => {
            let i = at(rng).min(len - 1);
            let n = 1 + rng.below((len - i).min(32));
            data.drain(i..i + n);
        }
        6 if len > 2 => {
            // Repeat a range: several frames in a row.
            let i = at(rng).min(len - 1);
            let n = 1 + rng.below(len - i);
            let copy = data[i..i + n].to_vec();
            let to = at(rng).min(data.len());
            data.splice(to..to, copy);
        }
        7 => {
            // Splice the stream of another input in.
            let other = &pool[rng.below(pool.len())];
            if other.len() > 2 {
                let from = 2 + rng.below(other.len() - 2);
                let to = at(rng).min(data.len());
                data.truncate(to);
                data.extend_from_slice(&other[from..]);
            }
        }
        8 if len > 2 => {
            data.truncate(2 + rng.below(len - 2));
        }
        9 if len >= 6 => {
            // Re-fit the first length prefix to what follows, so header mutations reach the
            // header parser instead of waiting for bytes that never come.
            let rest = (len - 6) as u32;
            data[2..6].copy_from_slice(&rest.to_be_bytes());
        }
        _ => {
            data[0] = rng.byte();
            data[1] = rng.byte();
        }
    }
}
