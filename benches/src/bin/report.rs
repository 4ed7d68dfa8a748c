//! The side-by-side report: each figure of the framework beside its raw baseline, measured in
//! one run, as JSON lines and then a markdown table.
//!
//! ```text
//! cargo run --release -p benches --bin report                 # everything, local and remote (< 2 min)
//! cargo run --release -p benches --bin report -- --quick      # smaller sizes, a smoke run
//! cargo run --release -p benches --bin report -- --only local_ask_rtt_ns
//! cargo run --release -p benches --bin report -- --only remote_tell_msgs_per_s,remote_ask_rtt_us
//! cargo run --release -p benches --bin report -- --list
//! cargo run --release -p benches --bin report --features peers   # and ours beside ractor, kameo, actix
//! cargo run --release -p benches --bin report --features peers -- --only peer_ask_rtt_ns
//! ```
//!
//! JSON lines go to stdout, progress to stderr. Exits with 1 when a figure could not be
//! measured (a missed target is reported, not an error), 2 on bad arguments.

use std::process::ExitCode;
use std::time::Instant;

use benches::report::{
    FigureSpec, Isolation, Measured, RunConfig, all_figures, child, error_line, figure,
    markdown_table, peer_table,
};

const USAGE: &str = "usage: report [--quick] [--only <figure>[,<figure>..]]... [--list]";

struct Args {
    quick: bool,
    only: Vec<String>,
    list: bool,
    help: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        quick: false,
        only: Vec::new(),
        list: false,
        help: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--list" => parsed.list = true,
            "--only" => {
                let names = it.next().ok_or("--only needs a figure name")?;
                parsed.only.extend(names.split(',').map(str::to_string));
            }
            "-h" | "--help" => parsed.help = true,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(child::CHILD_FLAG) {
        return run_child(&args[1..]);
    }
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{USAGE}\nfigures: {}", names());
        return ExitCode::SUCCESS;
    }
    if args.list {
        all_figures().for_each(|f| println!("{}", f.name));
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&FigureSpec> = if args.only.is_empty() {
        all_figures().collect()
    } else {
        let mut selected = Vec::new();
        for name in &args.only {
            match figure(name) {
                Some(f) => selected.push(f),
                None => {
                    eprintln!("unknown figure `{name}`; known: {}", names());
                    return ExitCode::from(2);
                }
            }
        }
        selected
    };
    let exe =
        std::env::current_exe().expect("the report needs its own path to run child processes");
    let isolation = Isolation::ChildProcess(exe);
    let config = if args.quick {
        RunConfig::quick(isolation)
    } else {
        RunConfig::full(isolation)
    };

    let started = Instant::now();
    let mut figures = Vec::new();
    let mut peer_figures = Vec::new();
    let mut failed = false;
    for spec in selected {
        eprintln!("measuring {} ...", spec.name);
        let t = Instant::now();
        match spec.run(&config) {
            Ok(measured) => {
                measured.json_lines().iter().for_each(|l| println!("{l}"));
                match measured {
                    Measured::Baseline(fig) => figures.push(fig),
                    Measured::Peers(fig) => peer_figures.push(fig),
                }
            }
            Err(e) => {
                println!("{}", error_line(spec.name, &e.to_string()));
                failed = true;
            }
        }
        eprintln!("  {} took {:.1} s", spec.name, t.elapsed().as_secs_f64());
    }
    if !figures.is_empty() {
        println!();
        print!("{}", markdown_table(&figures));
    }
    if !peer_figures.is_empty() {
        println!();
        print!("{}", peer_table(&peer_figures));
    }
    eprintln!("report took {:.1} s", started.elapsed().as_secs_f64());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run_child(args: &[String]) -> ExitCode {
    let Some((task, rest)) = args.split_first() else {
        eprintln!("{} needs a task name", child::CHILD_FLAG);
        return ExitCode::from(2);
    };
    match child::run_here(task, rest) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("child task `{task}` failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn names() -> String {
    all_figures().map(|f| f.name).collect::<Vec<_>>().join(", ")
}
