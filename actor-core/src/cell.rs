//! The actor's task: creates instances, runs them over the mailbox, catches their failures.
//!
//! One task per actor name, living as long as its mailbox. Each *instance* runs `started`,
//! then handles messages one by one until it stops or fails; the task then either waits for
//! its supervisor's word (restart or terminate) or, when nobody supervises it, terminates:
//! closes the mailbox, rejects what is still queued with `Stopped` and frees the name.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Span;

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::context::Context;
use crate::envelope::{Envelope, HandleRun, RunScope};
use crate::error::{AskError, SpawnError};
use crate::id::ActorId;
use crate::mailbox::{Mailbox, Received, Signal};
use crate::supervisor::ExitReason;
use crate::system::{ActorSystem, SpawnOptions};
use crate::trace::{Current, TraceContext};

/// How a parent steers a child task (a worker's mailbox, or a nested supervisor).
pub(crate) trait ChildControl: Send + Sync {
    /// Raises a signal on the child.
    fn signal(&self, signal: Signal);
    /// Asks the child to stop for good.
    fn terminate(&self) {
        self.signal(Signal::Terminate);
    }
    /// Resolves once the child has stopped for good.
    fn terminated(&self) -> BoxFuture<'_, ()>;
}

impl<A: Actor> ChildControl for Mailbox<A> {
    fn signal(&self, signal: Signal) {
        Mailbox::signal(self, signal);
    }
    fn terminated(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.closed())
    }
}

/// What a child tells its supervisor.
#[derive(Debug)]
pub(crate) struct ChildEvent {
    pub(crate) id: ActorId,
    /// Which instance of the child (1 for the first start, +1 per start).
    pub(crate) instance: u32,
    pub(crate) kind: ChildEventKind,
}

#[derive(Debug)]
pub(crate) enum ChildEventKind {
    Started(Result<(), String>),
    Exited(ExitReason),
    Terminated,
}

/// A supervisor, as seen by its children.
pub(crate) trait Parent: Send + Sync {
    fn child_event(&self, event: ChildEvent);
}

/// Who decides what happens when an instance ends.
pub(crate) enum Owner {
    /// A top-level actor of the system: not restarted; terminates when its instance ends.
    Root(ActorSystem),
    /// A child spawned from a `Context`: likewise not restarted.
    Context,
    /// A supervised child: reports to its supervisor and waits for its word.
    Supervisor(Arc<dyn Parent>),
}

/// Where instances come from.
pub(crate) enum Source<A> {
    /// A single instance handed to `spawn`; there is nothing to restart from.
    Once(Option<A>),
    /// A factory, called for the first start and every restart.
    Factory(Box<dyn FnMut() -> A + Send>),
}

impl<A> Source<A> {
    fn next(&mut self) -> Option<A> {
        match self {
            Source::Once(a) => a.take(),
            Source::Factory(f) => Some(f()),
        }
    }
}

/// The result of spawning a task for an actor.
pub(crate) struct SpawnedCell<A: Actor> {
    pub(crate) actor: ActorRef<A>,
    pub(crate) task: JoinHandle<()>,
    /// Answered once the first `started` has run (only when asked for).
    pub(crate) started: Option<oneshot::Receiver<Result<(), String>>>,
}

/// Creates the mailbox, takes the name and starts the task, which starts the first instance
/// at once.
pub(crate) fn spawn_cell<A: Actor>(
    system: &ActorSystem,
    source: Source<A>,
    options: SpawnOptions,
    owner: Owner,
    want_started: bool,
) -> Result<SpawnedCell<A>, SpawnError> {
    let id = system.next_id();
    let name: Option<Arc<str>> = options.name.map(Arc::from);
    let capacity = options
        .mailbox_capacity
        .unwrap_or(system.info().mailbox_capacity);
    let mailbox = Arc::new(Mailbox::new(
        id,
        name.clone(),
        capacity,
        Arc::clone(system.info()),
    ));
    let actor = ActorRef::local(Arc::clone(&mailbox));
    if let Some(name) = &name {
        system.registry().register(name, &actor)?;
    }
    let is_root = matches!(owner, Owner::Root(_));
    if is_root {
        system.root_insert(id, mailbox.clone() as Arc<dyn ChildControl>);
    }
    let (started_tx, started) = if want_started {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let cell = Cell {
        mailbox,
        source,
        owner,
        system: system.clone(),
        first_start: started_tx,
    };
    crate::stats::bump(&system.info().counters.spawned);
    let task = tokio::spawn(cell.run());
    Ok(SpawnedCell {
        actor,
        task,
        started,
    })
}

/// Waits for the first `started` of a spawned actor and turns a failure into a `SpawnError`.
pub(crate) async fn await_first_start<A: Actor>(
    actor: &ActorRef<A>,
    started: Option<oneshot::Receiver<Result<(), String>>>,
) -> Result<(), SpawnError> {
    let Some(started) = started else {
        return Ok(());
    };
    let reason = match started.await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(reason)) => reason,
        Err(_) => "actor task ended before starting".to_string(),
    };
    Err(SpawnError::StartFailed {
        name: actor
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| actor.id().to_string()),
        reason,
    })
}

/// How an instance ended.
enum Ending {
    StartFailed(String),
    Exited(ExitReason),
    Terminate,
}

struct Cell<A: Actor> {
    mailbox: Arc<Mailbox<A>>,
    source: Source<A>,
    owner: Owner,
    system: ActorSystem,
    first_start: Option<oneshot::Sender<Result<(), String>>>,
}

impl<A: Actor> Cell<A> {
    // Not an `async fn`: its argument would be stored twice in the future (rust-lang/rust
    // #62958), and this future is most of every actor's memory.
    #[allow(clippy::manual_async_fn)]
    fn run(mut self) -> impl Future<Output = ()> + Send + 'static {
        async move { self.run_cell().await }
    }

    async fn run_cell(&mut self) {
        // Messages taken from the mailbox and not yet handled; kept across restarts.
        let mut batch: VecDeque<Envelope<A>> = VecDeque::new();
        let mut instance: u32 = 0;
        let mut next = Some(Signal::Start);
        loop {
            let signal = match next.take() {
                Some(s) => s,
                None => self.mailbox.wait_signal().await,
            };
            match signal {
                Signal::Terminate => break,
                // Idle: there is no instance to stop.
                Signal::Stop | Signal::StopSelf => continue,
                Signal::Start => {}
            }
            let Some(actor) = self.source.next() else {
                break;
            };
            instance += 1;
            if instance > 1 {
                crate::stats::bump(&self.mailbox.counters.restarts);
                crate::stats::bump(&self.system.info().counters.restarts);
            }
            let ending = self.run_instance(actor, instance, &mut batch).await;
            let reason = match ending {
                Ending::Terminate => break,
                Ending::StartFailed(reason) => ExitReason::Failed(reason),
                Ending::Exited(reason) => {
                    if let Owner::Supervisor(parent) = &self.owner {
                        parent.child_event(ChildEvent {
                            id: self.mailbox.id,
                            instance,
                            kind: ChildEventKind::Exited(reason.clone()),
                        });
                    }
                    reason
                }
            };
            match &self.owner {
                Owner::Supervisor(_) => {}
                Owner::Root(_) | Owner::Context => {
                    if let ExitReason::Failed(why) = &reason {
                        tracing::warn!(actor = %self.label(), reason = %why, "actor failed and is not supervised; stopping it");
                    }
                    break;
                }
            }
        }
        self.terminate(batch, instance);
    }

    /// Runs one instance from `started` to its end.
    ///
    /// Not an `async fn`, so its arguments are held once in the future (rust-lang/rust
    /// #62958); the message loop's state is in every actor's memory.
    #[allow(clippy::manual_async_fn)]
    fn run_instance<'a>(
        &'a mut self,
        mut actor: A,
        instance: u32,
        batch: &'a mut VecDeque<Envelope<A>>,
    ) -> impl Future<Output = Ending> + Send + 'a {
        async move {
            let mut ctx = Context::new(
                ActorRef::local(Arc::clone(&self.mailbox)),
                self.system.clone(),
            );
            if let Err(reason) = self.start_instance(&mut actor, &mut ctx, instance).await {
                ctx.cleanup().await;
                return Ending::StartFailed(reason);
            }
            let ending = loop {
                // Bound before handling: a match scrutinee would stay in the task's future
                // across the handler's await.
                let env = match self.mailbox.recv(batch).await {
                    Received::Signal(Signal::Terminate) => break Ending::Terminate,
                    Received::Signal(Signal::Stop) => break Ending::Exited(ExitReason::Stopped),
                    Received::Signal(Signal::StopSelf) => {
                        break Ending::Exited(ExitReason::Normal);
                    }
                    Received::Signal(Signal::Start) => continue,
                    Received::Message(env) => env,
                };
                let outcome = if let Envelope::Run(_) = env {
                    // Handled where it is, at the front of the batch, so that what a
                    // panic leaves of it stays queued.
                    batch.push_front(env);
                    let Some(Envelope::Run(run)) = batch.front_mut() else {
                        continue;
                    };
                    let before = run.len();
                    let (label, mailbox) = (self.label(), &*self.mailbox);
                    let outcome =
                        handling_run(&mut **run, &mut actor, &mut ctx, label, mailbox).await;
                    let left = match batch.front() {
                        Some(Envelope::Run(run)) => run.len(),
                        _ => 0,
                    };
                    if left == 0 {
                        batch.pop_front();
                    }
                    let handled = before.saturating_sub(left) as u64;
                    crate::stats::add(&self.mailbox.counters.handled, handled);
                    outcome
                } else {
                    let span = message_span(self.label(), env.type_name(), None);
                    let outcome = handling(env, &mut actor, &mut ctx, &span).await;
                    crate::stats::bump(&self.mailbox.counters.handled);
                    outcome
                };
                if let Err(panic) = outcome {
                    self.note_failure();
                    tracing::error!(actor = %self.label(), panic = %panic, "handler panicked");
                    break Ending::Exited(ExitReason::Failed(format!("handler panicked: {panic}")));
                }
                if ctx.stop_requested() {
                    break Ending::Exited(ExitReason::Normal);
                }
            };
            if !matches!(ending, Ending::Exited(ExitReason::Failed(_))) {
                self.stop_instance(&mut actor, &mut ctx).await;
            }
            ctx.cleanup().await;
            ending
        }
    }

    /// Runs `started` and reports the outcome to whoever waits for it.
    async fn start_instance(
        &mut self,
        actor: &mut A,
        ctx: &mut Context<A>,
        instance: u32,
    ) -> Result<(), String> {
        let span = tracing::debug_span!("started", actor = %self.label());
        let started = match (CatchPanic {
            // Boxed so that the user's future does not grow every actor's task.
            fut: Box::pin(actor.started(ctx)),
            span: Some(&span),
            trace: None,
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => {
                crate::stats::bump(&self.system.info().counters.handler_panics);
                Err(format!("panicked in started: {panic}"))
            }
        };
        if started.is_err() {
            crate::stats::bump(&self.mailbox.counters.failures);
        }
        self.report_started(instance, &started);
        started
    }

    /// Runs `stopped`; a panic there is logged, not escalated.
    async fn stop_instance(&mut self, actor: &mut A, ctx: &mut Context<A>) {
        let span = tracing::debug_span!("stopped", actor = %self.label());
        if let Err(panic) = (CatchPanic {
            fut: Box::pin(actor.stopped(ctx)),
            span: Some(&span),
            trace: None,
        })
        .await
        {
            tracing::error!(actor = %self.label(), panic = %panic, "stopped hook panicked");
        }
    }

    fn note_failure(&self) {
        crate::stats::bump(&self.mailbox.counters.failures);
        crate::stats::bump(&self.system.info().counters.handler_panics);
    }

    fn report_started(&mut self, instance: u32, result: &Result<(), String>) {
        if let Some(tx) = self.first_start.take() {
            let _ = tx.send(result.clone());
        }
        if let Owner::Supervisor(parent) = &self.owner {
            parent.child_event(ChildEvent {
                id: self.mailbox.id,
                instance,
                kind: ChildEventKind::Started(result.clone()),
            });
        }
    }

    /// Stops for good: closes the mailbox, rejects what is queued, frees the name.
    fn terminate(&mut self, batch: VecDeque<Envelope<A>>, instance: u32) {
        if let Some(tx) = self.first_start.take() {
            let _ = tx.send(Err("terminated before starting".to_string()));
        }
        let mb = &self.mailbox;
        if let Some(name) = &mb.name {
            self.system.registry().unregister(name, mb.id);
        }
        crate::stats::bump(&self.system.info().counters.stopped);
        let queued = mb.close();
        for env in batch.into_iter().chain(queued) {
            env.reject(AskError::Stopped);
        }
        // After the answers above: they may leave through a stream a feeder serves.
        mb.close_feeders();
        match &self.owner {
            Owner::Root(system) => system.root_remove(mb.id),
            Owner::Context => {}
            Owner::Supervisor(parent) => parent.child_event(ChildEvent {
                id: mb.id,
                instance,
                kind: ChildEventKind::Terminated,
            }),
        }
        tracing::debug!(actor = %self.label(), "terminated");
    }

    fn label(&self) -> ActorLabel<'_> {
        ActorLabel {
            name: self.mailbox.name.as_deref(),
            id: self.mailbox.id,
        }
    }
}

/// The span one message is handled in: its actor, its type and, if it came with one, its
/// trace id.
pub(crate) fn message_span(
    label: ActorLabel<'_>,
    msg: &'static str,
    trace: Option<&TraceContext>,
) -> Span {
    let span = tracing::debug_span!(
        "handle",
        actor = %label,
        msg,
        trace_id = tracing::field::Empty,
    );
    if let Some(t) = trace {
        record_trace_id(&span, t);
    }
    span
}

/// Records `trace`'s id in a span made by [`message_span`].
fn record_trace_id(span: &Span, trace: &TraceContext) {
    span.record(
        "trace_id",
        tracing::field::display(format_args!("{:032x}", trace.trace_id())),
    );
}

/// The handling of one message: its handler's future, run inside `span` with the message's
/// trace context (a child of the sender's) current. Not an `async fn`, so that only the
/// returned future, not its parts, is held in the actor's task.
fn handling<'a, A: Actor>(
    env: Envelope<A>,
    actor: &'a mut A,
    ctx: &'a mut Context<A>,
    span: &'a Span,
) -> CatchPanic<'a, futures::future::BoxFuture<'a, ()>> {
    let trace = env.trace().map(|t| t.child());
    if let Some(t) = &trace {
        record_trace_id(span, t);
    }
    CatchPanic {
        fut: env.handle(actor, ctx),
        span: Some(span),
        trace,
    }
}

/// The handling of a run's messages, from its front, in one future: each message in a span
/// of its own, with a child of the sender's trace context current. It ends when
/// the run is empty, or after a message once the actor is asked to stop or a signal is
/// raised; what is left stays in the run.
fn handling_run<'a, A: Actor>(
    run: &'a mut dyn HandleRun<A>,
    actor: &'a mut A,
    ctx: &'a mut Context<A>,
    label: ActorLabel<'a>,
    mailbox: &'a Mailbox<A>,
) -> CatchPanic<'a, futures::future::BoxFuture<'a, ()>> {
    let scope = RunScope {
        label,
        mailbox,
        trace: run.trace(),
    };
    CatchPanic {
        fut: run.handle_some(actor, ctx, scope),
        span: None,
        // Each message enters a context of its own.
        trace: None,
    }
}

/// `name#id` or `#id`, formatted only when a log line is emitted.
#[derive(Clone, Copy)]
pub(crate) struct ActorLabel<'a> {
    pub(crate) name: Option<&'a str>,
    pub(crate) id: ActorId,
}

impl std::fmt::Display for ActorLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.name.unwrap_or(""), self.id)
    }
}

/// Polls `fut` to completion inside `span` with `trace` current, catching a panic in any poll
/// as its message. A plain struct rather than an `async fn`, to keep the actor task's future
/// small.
pub(crate) struct CatchPanic<'a, F> {
    pub(crate) fut: F,
    pub(crate) span: Option<&'a Span>,
    pub(crate) trace: Option<TraceContext>,
}

impl<F: Future + Unpin> Future for CatchPanic<'_, F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _entered = this.span.map(Span::enter);
        // Untraced messages (most) leave the thread's context alone: it is already none
        // between the polls of tasks, as every setter restores what it found.
        let _current = this.trace.map(|t| Current::enter(Some(t)));
        let fut = Pin::new(&mut this.fut);
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idle;
    impl Actor for Idle {}

    /// Every actor's task holds this future: keep it small (tokio rounds a task up to a
    /// multiple of 128 bytes, so 408 bytes of future make a 512-byte task).
    #[tokio::test]
    async fn an_idle_actors_task_future_stays_small() {
        let system = ActorSystem::new();
        let id = system.next_id();
        let mailbox = Arc::new(Mailbox::new(id, None, 4, Arc::clone(system.info())));
        let cell = Cell {
            mailbox,
            source: Source::Once(Some(Idle)),
            owner: Owner::Context,
            system: system.clone(),
            first_start: None,
        };
        let size = std::mem::size_of_val(&cell.run());
        println!("cell future: {size} bytes");
        assert!(size <= 408, "the actor task future grew to {size} bytes");
    }
}
