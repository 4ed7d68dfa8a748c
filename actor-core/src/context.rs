//! [`Context`]: what an actor instance can do besides handling its message.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle};

use crate::actor::{Actor, Handler, Message};
use crate::actor_ref::ActorRef;
use crate::cell::{self, ChildControl, Owner, Source};
use crate::error::SpawnError;
use crate::system::{ActorSystem, SpawnOptions};

/// The actor's own view of itself, passed to every hook and handler.
///
/// Gives its own ref, the system, a way to stop, children whose lifetime is bound to this
/// instance, and timers that are cancelled when this instance stops (a restart included).
pub struct Context<A: Actor> {
    myself: ActorRef<A>,
    system: ActorSystem,
    stop: bool,
    /// Children and timers, allocated on first use: most actors have neither, and every
    /// byte here is in every actor's task.
    owned: Option<Box<Owned>>,
}

#[derive(Default)]
struct Owned {
    children: Vec<(Arc<dyn ChildControl>, JoinHandle<()>)>,
    timers: Vec<JoinHandle<()>>,
}

/// A timer started from a [`Context`]; dropping the handle does not cancel it.
#[derive(Debug, Clone)]
pub struct TimerHandle(AbortHandle);

impl TimerHandle {
    /// Cancels the timer; a message already sent stays sent.
    pub fn cancel(&self) {
        self.0.abort();
    }
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(myself: ActorRef<A>, system: ActorSystem) -> Self {
        Self {
            myself,
            system,
            stop: false,
            owned: None,
        }
    }

    /// This actor's own ref.
    pub fn myself(&self) -> &ActorRef<A> {
        &self.myself
    }

    /// The system this actor runs in.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// Stops this instance after the current message; `stopped` runs. A supervisor then
    /// applies the child's restart policy (a permanent child is started again).
    pub fn stop(&mut self) {
        self.stop = true;
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop
    }

    /// Spawns a child actor bound to this instance: it is stopped (in reverse spawn order)
    /// when this instance stops, and is not restarted if it fails.
    ///
    /// # Errors
    /// As [`ActorSystem::spawn_with`].
    pub async fn spawn<C: Actor>(&mut self, child: C) -> Result<ActorRef<C>, SpawnError> {
        self.spawn_with(child, SpawnOptions::new()).await
    }

    /// Like [`spawn`](Self::spawn), with a name and mailbox capacity.
    ///
    /// # Errors
    /// As [`ActorSystem::spawn_with`].
    pub async fn spawn_with<C: Actor>(
        &mut self,
        child: C,
        options: SpawnOptions,
    ) -> Result<ActorRef<C>, SpawnError> {
        if self.system.is_shutting_down() {
            return Err(SpawnError::ShuttingDown);
        }
        let spawned = cell::spawn_cell(
            &self.system,
            Source::Once(Some(child)),
            options,
            Owner::Context,
            true,
        )?;
        let control: Arc<dyn ChildControl> = match spawned.actor.mailbox() {
            Some(mb) => mb.clone(),
            None => unreachable!("a freshly spawned actor is local"),
        };
        let children = &mut self.owned.get_or_insert_with(Box::default).children;
        children.retain(|(_, task)| !task.is_finished());
        children.push((control, spawned.task));
        cell::await_first_start(&spawned.actor, spawned.started).await?;
        Ok(spawned.actor)
    }

    /// Sends `msg` to this actor after `delay`, unless this instance stops first.
    pub fn send_after<M>(&mut self, msg: M, delay: Duration) -> TimerHandle
    where
        A: Handler<M>,
        M: Message,
    {
        let me = self.myself.clone();
        self.start_timer(async move {
            tokio::time::sleep(delay).await;
            let _ = me.tell(msg).await;
        })
    }

    /// Sends `make()` to this actor every `period` (first after one period), until this
    /// instance stops or the timer is cancelled. A tick waits for mailbox room; missed ticks
    /// are delayed, not bunched.
    pub fn send_interval<M, F>(&mut self, period: Duration, mut make: F) -> TimerHandle
    where
        A: Handler<M>,
        M: Message,
        F: FnMut() -> M + Send + 'static,
    {
        let me = self.myself.clone();
        self.start_timer(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if me.tell(make()).await.is_err() {
                    break;
                }
            }
        })
    }

    fn start_timer(&mut self, timer: impl Future<Output = ()> + Send + 'static) -> TimerHandle {
        let timers = &mut self.owned.get_or_insert_with(Box::default).timers;
        timers.retain(|t| !t.is_finished());
        let task = tokio::spawn(timer);
        let handle = TimerHandle(task.abort_handle());
        timers.push(task);
        handle
    }

    /// Cancels timers and stops children in reverse spawn order, waiting for each.
    pub(crate) async fn cleanup(&mut self) {
        let Some(mut owned) = self.owned.take() else {
            return;
        };
        for timer in owned.timers.drain(..) {
            timer.abort();
            let _ = timer.await;
        }
        while let Some((control, task)) = owned.children.pop() {
            control.terminate();
            let _ = task.await;
        }
    }
}

impl<A: Actor> std::fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("myself", &self.myself)
            .field(
                "children",
                &self.owned.as_ref().map_or(0, |o| o.children.len()),
            )
            .field("timers", &self.owned.as_ref().map_or(0, |o| o.timers.len()))
            .finish()
    }
}
