//! Measurements that need a fresh process, and the protocol for running them in one.
//!
//! The report binary re-runs itself as `report --child <task> <args..>`; the child runs
//! the task, prints its result as one JSON line on stdout and exits. With
//! [`Isolation::InProcess`] the same task runs in this process instead.

use std::process::Command;

use serde_json::Value;

use super::Isolation;
use crate::BenchResult;
use crate::local::CAPACITY;
use crate::local::idle::{actor_idle_memory, task_idle_memory};
use crate::runtime::{build, on_worker};

/// The first argument that makes the report binary a child measurement process.
pub const CHILD_FLAG: &str = "--child";

/// Idle actors: `idle_actor_memory <count>`.
pub const IDLE_ACTOR_MEMORY: &str = "idle_actor_memory";

/// Idle bare tasks: `idle_task_memory <count>`.
pub const IDLE_TASK_MEMORY: &str = "idle_task_memory";

/// Idle ractor actors: `idle_ractor_memory <count>` (feature `peers`).
pub const IDLE_RACTOR_MEMORY: &str = "idle_ractor_memory";

/// Idle kameo actors: `idle_kameo_memory <count>` (feature `peers`).
pub const IDLE_KAMEO_MEMORY: &str = "idle_kameo_memory";

/// Idle actix actors: `idle_actix_memory <count>` (feature `peers`).
pub const IDLE_ACTIX_MEMORY: &str = "idle_actix_memory";

/// Runs child task `task` with `args` in this process and returns its result.
///
/// # Errors
/// An unknown task, bad arguments, or the task's own failure.
pub fn run_here(task: &str, args: &[String]) -> BenchResult<Value> {
    let count = |i: usize| -> BenchResult<usize> {
        let arg = args
            .get(i)
            .ok_or_else(|| format!("{task}: missing argument {i}"))?;
        Ok(arg.parse()?)
    };
    match task {
        IDLE_ACTOR_MEMORY => {
            let n = count(0)?;
            let rt = build()?;
            Ok(on_worker(&rt, actor_idle_memory(n))?.to_json())
        }
        IDLE_TASK_MEMORY => {
            let n = count(0)?;
            let rt = build()?;
            Ok(on_worker(&rt, task_idle_memory(n, CAPACITY))?.to_json())
        }
        #[cfg(feature = "peers")]
        IDLE_RACTOR_MEMORY => {
            let n = count(0)?;
            let rt = build()?;
            Ok(on_worker(&rt, crate::peers::ractor::idle_memory(n))?.to_json())
        }
        #[cfg(feature = "peers")]
        IDLE_KAMEO_MEMORY => {
            let n = count(0)?;
            let rt = build()?;
            Ok(on_worker(&rt, crate::peers::kameo::idle_memory(n, CAPACITY))?.to_json())
        }
        #[cfg(feature = "peers")]
        IDLE_ACTIX_MEMORY => {
            let n = count(0)?;
            let actix = crate::peers::actix::ActixSystem::start();
            let memory = actix.idle_memory(n, CAPACITY)?;
            actix.stop()?;
            Ok(memory.to_json())
        }
        super::serving::SERVE_REMOTE => super::serving::serve_child(),
        other => Err(format!("unknown child task `{other}`").into()),
    }
}

impl Isolation {
    /// Runs child task `task` with `args` as this isolation says and returns its result.
    ///
    /// # Errors
    /// When the child cannot be started, fails, or prints no JSON.
    pub fn run(&self, task: &str, args: &[String]) -> BenchResult<Value> {
        let exe = match self {
            Isolation::InProcess => return run_here(task, args),
            Isolation::ChildProcess(exe) => exe,
        };
        let out = Command::new(exe)
            .arg(CHILD_FLAG)
            .arg(task)
            .args(args)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "child `{task}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        let stdout = String::from_utf8(out.stdout)?;
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| format!("child `{task}` printed nothing"))?;
        Ok(serde_json::from_str(line)?)
    }
}
