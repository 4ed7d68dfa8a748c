//! The serving side of the cross-process remote figures: node B with its sink and the raw
//! quinn echo server, in a process of their own, as nodes are deployed.
//!
//! In one process, both sides of a loopback round trip can run on one worker thread, which
//! then finds each packet already waiting when it polls the socket; across processes each
//! side's runtime sleeps in `epoll_wait` and is woken by every packet, as on a real network.
//!
//! With [`Isolation::ChildProcess`] the report binary re-runs itself as
//! `report --child serve_remote`: the child starts both servers, prints their addresses as one
//! JSON line, serves until its stdin closes, then stops them. With [`Isolation::InProcess`]
//! (smoke tests) they run on a runtime of their own on a thread of this process.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Isolation;
use super::child::CHILD_FLAG;
use crate::BenchResult;
use crate::remote::ours::serve_sink;
use crate::remote::raw::RawServer;
use crate::runtime::{build, on_worker};

/// The child task that serves: `serve_remote`.
pub const SERVE_REMOTE: &str = "serve_remote";

/// How long the serving side may take to start, and to stop once asked.
const BOUND: Duration = Duration::from_secs(20);

/// Where the serving side listens.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// Node B, serving the sink.
    pub node: SocketAddr,
    /// The raw quinn echo server.
    pub raw: SocketAddr,
}

impl Addresses {
    fn to_json(self) -> Value {
        json!({ "node": self.node.to_string(), "raw": self.raw.to_string() })
    }

    fn from_json(line: &str) -> BenchResult<Self> {
        let v: Value = serde_json::from_str(line)?;
        let addr = |key: &str| -> BenchResult<SocketAddr> {
            let s = v[key]
                .as_str()
                .ok_or_else(|| format!("serving side printed no `{key}` address: {line}"))?;
            Ok(s.parse()?)
        };
        Ok(Self {
            node: addr("node")?,
            raw: addr("raw")?,
        })
    }
}

/// Runs both servers on a runtime of this thread: reports their addresses through
/// `started`, serves until `stop` says so (or hangs up), then stops them.
fn serve(started: impl FnOnce(Addresses), stop: impl FnOnce()) -> BenchResult<()> {
    let rt = build()?;
    let (node, raw) = on_worker(&rt, async {
        let node = serve_sink().await?;
        let raw = RawServer::start()?;
        BenchResult::Ok((node, raw))
    })?;
    started(Addresses {
        node: node.local_addr(),
        raw: raw.local_addr()?,
    });
    stop();
    on_worker(&rt, async move {
        raw.close().await;
        node.shutdown().await;
    });
    Ok(())
}

/// The child task: prints the addresses, serves until stdin closes.
///
/// # Errors
/// When a server cannot start.
pub fn serve_child() -> BenchResult<Value> {
    serve(
        |addrs| println!("{}", addrs.to_json()),
        || {
            // The parent closes our stdin to stop us (or dies, which closes it too).
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        },
    )?;
    Ok(json!({ "served": true }))
}

/// The serving side, running until [`stop`](Self::stop).
#[derive(Debug)]
pub struct ServingSide {
    addresses: Addresses,
    running: Running,
}

#[derive(Debug)]
enum Running {
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
    },
    Thread {
        stop: mpsc::Sender<()>,
        thread: JoinHandle<BenchResult<()>>,
    },
    Stopped,
}

impl ServingSide {
    /// Starts the serving side as `isolation` says and waits for its addresses.
    ///
    /// # Errors
    /// When it cannot be started, fails, or does not report its addresses in time.
    pub fn start(isolation: &Isolation) -> BenchResult<Self> {
        match isolation {
            Isolation::ChildProcess(exe) => Self::start_child(exe),
            Isolation::InProcess => Self::start_thread(),
        }
    }

    fn start_child(exe: &std::path::Path) -> BenchResult<Self> {
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .arg(SERVE_REMOTE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        // Read on a thread, so a child that never prints cannot hold the report forever.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
            // Drain the rest (the child's closing line), so it never writes to a closed pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let mut running = Running::Child { child, stdin };
        let line = match rx.recv_timeout(BOUND) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            outcome => {
                running.kill();
                return Err(
                    format!("serving child did not report its addresses: {outcome:?}").into(),
                );
            }
        };
        let addresses = match Addresses::from_json(line.trim()) {
            Ok(a) => a,
            Err(e) => {
                running.kill();
                return Err(e);
            }
        };
        Ok(Self { addresses, running })
    }

    fn start_thread() -> BenchResult<Self> {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            serve(
                |addrs| {
                    let _ = addr_tx.send(addrs);
                },
                move || {
                    let _ = stop_rx.recv();
                },
            )
        });
        let addresses = addr_rx
            .recv_timeout(BOUND)
            .map_err(|e| format!("serving thread did not report its addresses: {e}"))?;
        Ok(Self {
            addresses,
            running: Running::Thread { stop, thread },
        })
    }

    /// Where it listens.
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// What it runs in, for the report.
    pub fn describe(&self) -> &'static str {
        match self.running {
            Running::Child { .. } => "server node and raw server in a child process",
            Running::Thread { .. } | Running::Stopped => {
                "server side on a runtime of its own (smoke test)"
            }
        }
    }

    /// Stops it and waits (bounded) until it has.
    ///
    /// # Errors
    /// When it failed, or did not stop in time (a child is then killed).
    pub fn stop(mut self) -> BenchResult<()> {
        match &mut self.running {
            Running::Child { child, stdin } => {
                drop(stdin.take());
                let deadline = Instant::now() + BOUND;
                loop {
                    if let Some(status) = child.try_wait()? {
                        return if status.success() {
                            Ok(())
                        } else {
                            Err(format!("serving child failed: {status}").into())
                        };
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err("serving child did not stop in time; killed".into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Running::Thread { stop, .. } => {
                let _ = stop.send(());
                let Running::Thread { thread, .. } =
                    std::mem::replace(&mut self.running, Running::Stopped)
                else {
                    return Ok(());
                };
                thread.join().map_err(|_| "serving thread panicked")?
            }
            Running::Stopped => Ok(()),
        }
    }
}

impl Running {
    fn kill(&mut self) {
        if let Running::Child { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServingSide {
    /// A report that failed half-way leaves no serving child behind.
    fn drop(&mut self) {
        self.running.kill();
    }
}
