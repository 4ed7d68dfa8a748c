//! The demo shop binary: run the shop, a local cluster, the load generator or the scenario.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use demo_shop::load::LoadOptions;
use demo_shop::{Deployment, Shop, load, local_cluster, scenario};

/// The demo shop: users, products, orders, payments, analytics and notifications, as one
/// process or as a cluster, with the same code.
#[derive(Debug, Parser)]
#[command(name = "demo-shop", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Run the part of the shop this deployment file describes (default: the built-in
    /// monolith, deploy/monolith.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run a built-in deployment: monolith, node-a, node-b or node-c.
    #[arg(long, value_name = "NAME", hide = true, conflicts_with = "config")]
    embedded: Option<String>,
    /// Also stop (as on Ctrl-C) when standard input reaches its end: for a parent process,
    /// such as a test, that holds the other end of a pipe and may die without cleaning up.
    #[arg(long)]
    stop_on_stdin_close: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the three-node cluster of deploy/cluster/ here, as child processes; Ctrl-C
    /// stops it.
    Cluster,
    /// Place orders against a running shop and report orders/s and latency.
    Load(LoadArgs),
    /// Run the end-to-end scenario against a running shop and report each check.
    Scenario {
        /// The shop's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// The shop's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How many orders to place.
    #[arg(long, default_value_t = 1_000)]
    orders: u64,
    /// How many orders are in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Stop placing orders after this many seconds, however many are left.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// The product each order buys one of.
    #[arg(long, default_value = "sticker")]
    product: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Cluster) => local_cluster::run().await.map_err(Into::into),
            Some(Command::Load(args)) => run_load(args).await,
            Some(Command::Scenario { url }) => run_scenario(&url).await,
            None => {
                let deployment = match (cli.config, cli.embedded) {
                    (Some(path), _) => Deployment::from_file(path),
                    (None, Some(name)) => Deployment::embedded(&name),
                    (None, None) => Deployment::monolith(),
                };
                match deployment {
                    Ok(deployment) => run_shop(deployment, cli.stop_on_stdin_close).await,
                    Err(e) => Err(e.into()),
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.as_ref()),
    }
}

/// Runs the shop until Ctrl-C or SIGTERM (or, with `stop_on_stdin_close`, until stdin ends).
///
/// Once everything listens it prints the gateway's URL and, in a cluster, the node's
/// transport address, both with the ports actually bound, so a deployment may ask for port 0
/// and its parent still learns where to connect.
async fn run_shop(deployment: Deployment, stop_on_stdin_close: bool) -> Result<(), Box<dyn Error>> {
    let shop = Shop::start(deployment).await?;
    let name = shop.system().node_name().to_owned();
    if let Some(node) = shop.node() {
        println!(
            "demo shop ({name}) cluster transport on {} (QUIC)",
            node.local_addr()
        );
    }
    match shop.base_url() {
        Some(url) => {
            println!("demo shop ({name}) listening on {url}");
            println!("try:  curl -s {url}/products");
            println!("      curl -s -X POST {url}/users -H 'content-type: application/json' \\");
            println!("           -d '{{\"email\": \"ada@example.com\", \"name\": \"Ada\"}}'");
        }
        None => println!("demo shop ({name}) running without a gateway"),
    }
    println!("stop: Ctrl-C");
    let stdin_closed = async {
        if stop_on_stdin_close {
            stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = local_cluster::stop_signal() => {}
        () = stdin_closed => {}
    }
    println!("stopping");
    shop.shutdown().await;
    Ok(())
}

async fn run_load(args: LoadArgs) -> Result<(), Box<dyn Error>> {
    let report = load::run(LoadOptions {
        url: args.url,
        orders: args.orders,
        concurrency: args.concurrency,
        timeout: Duration::from_secs(args.timeout_secs),
        product: args.product,
        progress: true,
    })
    .await?;
    println!("{report}");
    Ok(())
}

async fn run_scenario(url: &str) -> Result<(), Box<dyn Error>> {
    let report = scenario::run(url).await?;
    for check in &report.checks {
        println!("ok  {check}");
    }
    println!("{} passed, 0 failed", report.checks.len());
    Ok(())
}

/// Resolves when standard input reaches its end (the parent closed it, or died), or cannot
/// be read.
async fn stdin_closed() {
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    // A plain thread: a blocking read must not hold up the runtime's shutdown.
    let watcher = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = closed_tx.send(());
        });
    match watcher {
        Ok(_) => {
            let _ = closed.await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch stdin; only a signal stops the shop");
            std::future::pending::<()>().await;
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,quinn=warn,rustls=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Prints `e` (whose text includes its causes) and fails.
fn fail(e: &dyn Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
