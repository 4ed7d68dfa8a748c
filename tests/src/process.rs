//! [`NodeProcess`]: a `test-node` child process that never outlives its test.
//!
//! The child serves the `echo` actor and prints `LISTENING <addr>` on stdout once it is
//! ready; [`NodeProcess::spawn`] waits for that line (bounded by [`STARTUP_TIMEOUT`]) and
//! exposes the address. Every wait here is bounded in time.
//!
//! A child never outlives its test, whatever happens to the test:
//! - dropping a `NodeProcess` (also while a failed test unwinds) kills the child with
//!   SIGKILL and reaps it;
//! - the child exits by itself when its stdin closes, which the OS does when the test
//!   process dies, even by SIGKILL.
//!
//! The child's stderr (its log, at `info` unless [`LOG_ENV`] says otherwise) is kept in
//! memory: [`NodeProcess::stderr`] returns it, and a `NodeProcess` dropped during a panic
//! prints it, so a failing test shows what its child said.
//!
//! The program is the `test-node` binary, or any binary that runs
//! [`test_node::main`](crate::test_node::main) behind a subcommand ([`NodeProgram`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tests::node_args::NodeArgs;
//! use tests::process::NodeProcess;
//!
//! // In an integration test of this crate: env!("CARGO_BIN_EXE_test-node").
//! let program = std::path::Path::new("target/debug/test-node");
//! let mut child = NodeProcess::spawn(program, &NodeArgs::new("child", "s3cret")).await?;
//! println!("child listens on {}", child.addr());
//! child.kill().await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::node_args::{NodeArgs, SECRET_ENV};

/// How long [`NodeProcess::spawn`] waits for the `LISTENING` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed or stopped child may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// What the child prints, followed by its address, once it is ready.
pub const LISTENING_PREFIX: &str = "LISTENING ";
/// The environment variable whose value becomes the child's `RUST_LOG` (default `info`).
pub const LOG_ENV: &str = "TEST_NODE_LOG";

/// Lines of the child's stderr kept (the oldest are dropped first).
const MAX_STDERR_LINES: usize = 10_000;
/// How often exits are polled.
const POLL: Duration = Duration::from_millis(10);

/// Why a child node could not be started or did not exit in time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The child exited before printing its `LISTENING` line (e.g. its address was taken).
    #[error("node {name} exited before listening ({status}); its stderr:\n{stderr}")]
    ExitedEarly {
        /// The child's node name.
        name: String,
        /// How it exited, as far as known.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The child printed no `LISTENING` line in time (it was killed).
    #[error("node {name} printed no LISTENING line within {timeout:?}; its stderr:\n{stderr}")]
    NoListeningLine {
        /// The child's node name.
        name: String,
        /// How long was waited.
        timeout: Duration,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The `LISTENING` line did not hold a socket address (the child was killed).
    #[error("node {name} printed a bad LISTENING line: {line:?}")]
    BadListeningLine {
        /// The child's node name.
        name: String,
        /// What followed the prefix.
        line: String,
    },
    /// The child did not exit within the time-out.
    #[error("node {name} did not exit within {timeout:?}")]
    StillRunning {
        /// The child's node name.
        name: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// Waiting for the child failed.
    #[error("waiting for node {name}: {source}")]
    Wait {
        /// The child's node name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// How to start a node process: a program, and the arguments that come before the node's
/// own ([`NodeArgs::to_args`]). A `&Path` converts into the `test-node` binary at that path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProgram {
    path: PathBuf,
    leading_args: Vec<String>,
}

impl NodeProgram {
    /// The `test-node` binary at `path`.
    pub fn test_node(path: impl Into<PathBuf>) -> Self {
        NodeProgram {
            path: path.into(),
            leading_args: Vec::new(),
        }
    }

    /// The binary at `path` run as `path subcommand <node args>`, for a binary that runs
    /// [`test_node::main`](crate::test_node::main) behind that subcommand.
    pub fn subcommand(path: impl Into<PathBuf>, subcommand: impl Into<String>) -> Self {
        NodeProgram {
            path: path.into(),
            leading_args: vec![subcommand.into()],
        }
    }

    /// The program's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl From<&Path> for NodeProgram {
    fn from(path: &Path) -> Self {
        NodeProgram::test_node(path)
    }
}

impl From<&NodeProgram> for NodeProgram {
    fn from(program: &NodeProgram) -> Self {
        program.clone()
    }
}

/// A running `test-node` child process; killed and reaped when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    name: String,
    addr: SocketAddr,
    child: Child,
    /// Held open: the child exits when it closes.
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl NodeProcess {
    /// Starts `program` (the `test-node` binary, or see [`NodeProgram`]) with `args` and
    /// waits, at most [`STARTUP_TIMEOUT`], until it prints the address it listens on.
    ///
    /// The child runs in a process group of its own, so that a Ctrl-C meant for the parent
    /// (sent by a terminal to its whole foreground group) leaves the ending to the parent.
    ///
    /// # Errors
    /// [`ProcessError::Spawn`], [`ProcessError::ExitedEarly`] (for instance when its listen
    /// address is still taken), [`ProcessError::NoListeningLine`],
    /// [`ProcessError::BadListeningLine`]; the child is gone in each case.
    pub async fn spawn(
        program: impl Into<NodeProgram>,
        args: &NodeArgs,
    ) -> Result<NodeProcess, ProcessError> {
        let program = program.into();
        let spawn_error = |source| ProcessError::Spawn {
            program: program.path.clone(),
            source,
        };
        let log = std::env::var(LOG_ENV).unwrap_or_else(|_| "info".to_string());
        let mut child = Command::new(&program.path)
            .args(&program.leading_args)
            .args(args.to_args())
            .process_group(0)
            .env("RUST_LOG", log)
            .env(SECRET_ENV, &args.secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        // From here on, dropping `process` kills the child.
        let mut process = NodeProcess {
            name: args.name.clone(),
            addr: args.listen,
            child,
            stdin,
            stderr: Arc::default(),
            stderr_reader: None,
        };
        if let Some(pipe) = stderr_pipe {
            let lines = Arc::clone(&process.stderr);
            let reader = reader_thread(&process.name, "stderr", pipe, move |line| {
                let mut lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
                if lines.len() == MAX_STDERR_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            })
            .map_err(spawn_error)?;
            process.stderr_reader = Some(reader);
        }
        let (listening_tx, listening) = oneshot::channel();
        if let Some(pipe) = stdout {
            let mut listening_tx = Some(listening_tx);
            // Keeps draining stdout after the line, so the child never blocks on a full pipe.
            reader_thread(&process.name, "stdout", pipe, move |line| {
                if let Some(addr) = line.strip_prefix(LISTENING_PREFIX) {
                    if let Some(tx) = listening_tx.take() {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            })
            .map_err(spawn_error)?;
        }
        match tokio::time::timeout(STARTUP_TIMEOUT, listening).await {
            Ok(Ok(line)) => match line.parse() {
                Ok(addr) => {
                    process.addr = addr;
                    Ok(process)
                }
                Err(_) => Err(ProcessError::BadListeningLine {
                    name: process.name.clone(),
                    line,
                }),
            },
            // Stdout closed without the line: the child is exiting.
            Ok(Err(_)) => {
                let status = match process.wait(EXIT_TIMEOUT).await {
                    Ok(status) => status.to_string(),
                    Err(e) => e.to_string(),
                };
                Err(ProcessError::ExitedEarly {
                    name: process.name.clone(),
                    status,
                    stderr: process.complete_stderr().await,
                })
            }
            Err(_) => Err(ProcessError::NoListeningLine {
                name: process.name.clone(),
                timeout: STARTUP_TIMEOUT,
                stderr: process.stderr(),
            }),
        }
    }

    /// The child's node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The UDP address the child listens on, as it printed it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child at once with SIGKILL (no shutdown, no goodbye to its peers) and waits,
    /// at most [`EXIT_TIMEOUT`], until it is gone.
    ///
    /// # Errors
    /// [`ProcessError::Wait`], [`ProcessError::StillRunning`].
    pub async fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        if let Err(source) = self.child.kill() {
            // Killing a child that has exited already is not a failure.
            if !matches!(self.child.try_wait(), Ok(Some(_))) {
                return Err(self.wait_error(source));
            }
        }
        self.wait(EXIT_TIMEOUT).await
    }

    /// Stops the child the orderly way: closes its stdin, upon which it shuts its node down
    /// and exits; waits at most `timeout` for that.
    ///
    /// # Errors
    /// [`ProcessError::Wait`], [`ProcessError::StillRunning`] (the child keeps running
    /// until killed or dropped).
    pub async fn stop(&mut self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        drop(self.stdin.take());
        self.wait(timeout).await
    }

    /// Waits at most `timeout` for the child to exit, without making it.
    ///
    /// # Errors
    /// [`ProcessError::Wait`], [`ProcessError::StillRunning`].
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if tokio::time::Instant::now() >= deadline => {
                    return Err(ProcessError::StillRunning {
                        name: self.name.clone(),
                        timeout,
                    });
                }
                Ok(None) => tokio::time::sleep(POLL).await,
                Err(source) => return Err(self.wait_error(source)),
            }
        }
    }

    /// What the child has printed on stderr so far (its log), one line per line.
    pub fn stderr(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
    }

    /// Waits at most `timeout` for a stderr line containing `needle`; returns whether one
    /// came.
    pub async fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .stderr
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|line| line.contains(needle));
            if found {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The child's whole stderr once it has exited: waits (briefly) for the reader to reach
    /// the end of the pipe.
    async fn complete_stderr(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self
            .stderr_reader
            .as_ref()
            .is_some_and(|reader| !reader.is_finished())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(POLL).await;
        }
        self.stderr()
    }

    fn wait_error(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Wait {
            name: self.name.clone(),
            source,
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            // Reap it (SIGKILL makes this quick), bounded all the same.
            let deadline = std::time::Instant::now() + EXIT_TIMEOUT;
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(POLL);
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "---- stderr of node {} (pid {}) ----\n{}",
                self.name,
                self.child.id(),
                self.stderr()
            );
        }
    }
}

/// Reads `pipe` line by line on its own thread, handing each line to `on_line`, until the
/// pipe closes (the child exited).
fn reader_thread(
    node: &str,
    what: &str,
    pipe: impl Read + Send + 'static,
    mut on_line: impl FnMut(String) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("{node}-{what}"))
        .spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                on_line(line);
            }
        })
}
