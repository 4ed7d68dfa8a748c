//! The counting actor the tell and ask scenarios drive, and its raw-channel twin.

use actor_core::{Actor, Context, Handler, Message};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::BenchResult;

/// An actor that adds every [`Add`] into a total and answers [`Total`] with it.
#[derive(Debug, Default)]
pub struct Counter {
    total: u64,
}

impl Actor for Counter {}

/// Adds its payload to the counter's total (told).
#[derive(Debug, Clone, Copy)]
pub struct Add(pub u64);

impl Message for Add {
    type Reply = ();
}

/// Asks for the counter's total.
#[derive(Debug, Clone, Copy)]
pub struct Total;

impl Message for Total {
    type Reply = u64;
}

impl Handler<Add> for Counter {
    async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) {
        self.total = self.total.wrapping_add(msg.0);
    }
}

impl Handler<Total> for Counter {
    async fn handle(&mut self, _msg: Total, _ctx: &mut Context<Self>) -> u64 {
        self.total
    }
}

/// What the [`RawCounter`] task receives: the same two requests as [`Counter`], as a plain enum.
#[derive(Debug)]
pub enum RawCommand {
    /// Add the payload to the total.
    Add(u64),
    /// Reply with the total.
    Total(oneshot::Sender<u64>),
}

/// The baseline counter: a task that owns the receiver of a bounded `tokio::sync::mpsc` and
/// does what [`Counter`] does, with nothing in between.
#[derive(Debug)]
pub struct RawCounter {
    tx: mpsc::Sender<RawCommand>,
    task: JoinHandle<u64>,
}

impl RawCounter {
    /// Creates the channel with `capacity` and spawns the consumer task (on the current runtime).
    pub fn spawn(capacity: usize) -> Self {
        let (tx, mut rx) = mpsc::channel(capacity);
        let task = tokio::spawn(async move {
            let mut total = 0u64;
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    RawCommand::Add(v) => total = total.wrapping_add(v),
                    RawCommand::Total(reply) => {
                        let _ = reply.send(total);
                    }
                }
            }
            total
        });
        Self { tx, task }
    }

    /// Sends an `Add`, waiting for room.
    ///
    /// # Errors
    /// When the consumer task has ended.
    pub async fn add(&self, value: u64) -> BenchResult<()> {
        self.tx
            .send(RawCommand::Add(value))
            .await
            .map_err(|_| "raw counter task ended".into())
    }

    /// A `oneshot` round trip through the channel: the total, after everything sent before.
    ///
    /// # Errors
    /// When the consumer task has ended.
    pub async fn total(&self) -> BenchResult<u64> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(RawCommand::Total(tx))
            .await
            .map_err(|_| "raw counter task ended")?;
        Ok(rx.await?)
    }

    /// Closes the channel and waits for the task to end.
    ///
    /// # Errors
    /// When the task panicked.
    pub async fn stop(self) -> BenchResult<()> {
        drop(self.tx);
        self.task.await?;
        Ok(())
    }
}
