//! The envelope: a typed message on its way to an actor, erased to the actor type.
//!
//! Local delivery never serializes: the mailbox carries [`Envelope`]s, and handling is a
//! virtual call that runs the typed handler. A tell is a boxed message; an ask is its
//! [`AskCell`], which holds the message and the reply channel in one allocation; a run is
//! a burst of tells of one type queued as one envelope (one allocation for the burst, made
//! by the sender and freed by the actor, rather than one per message) and handled one
//! message at a time in one future, the rest staying at the front of the actor's batch.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tracing::Instrument;

use crate::actor::{Actor, Handler, Message};
use crate::cell::{ActorLabel, message_span};
use crate::context::Context;
use crate::deadline::Expire;
use crate::error::AskError;
use crate::mailbox::Mailbox;
use crate::reply::{Answer, AskCell, ReplyReceiver};
use crate::trace::{InContext, TraceContext};

/// A message queued for an actor of type `A`.
pub(crate) enum Envelope<A: Actor> {
    /// A tell: nobody waits for an answer.
    Tell(Box<dyn Handle<A>>),
    /// An ask: answered exactly once, with an error if the envelope is dropped unhandled.
    Ask(QueuedAsk<A>),
    /// Told messages of one type, in order, queued together and handled one by one.
    Run(Box<dyn HandleRun<A>>),
}

impl<A: Actor> Envelope<A> {
    /// Runs the handler, then answers the ask, if it is one. A run is handled from the
    /// front of the actor's batch instead (see [`HandleRun::handle_some`]): here it handles
    /// nothing.
    pub(crate) fn handle<'a>(self, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()> {
        match self {
            Self::Tell(told) => told.handle(actor, ctx),
            Self::Ask(mut ask) => match ask.cell.take() {
                Some(cell) => cell.handle(actor, ctx),
                None => Box::pin(async {}),
            },
            Self::Run(_) => Box::pin(async {}),
        }
    }

    /// Answers the ask, if it is one, with `err` without handling the message.
    pub(crate) fn reject(self, err: AskError) {
        if let Self::Ask(mut ask) = self {
            if let Some(cell) = ask.cell.take() {
                cell.reject(err);
            }
        }
    }

    /// The message's Rust type name, for spans and logs.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Tell(told) => told.type_name(),
            Self::Ask(ask) => ask.cell.as_ref().map_or("", |c| c.type_name()),
            Self::Run(run) => run.type_name(),
        }
    }

    /// The trace context the message was sent from.
    pub(crate) fn trace(&self) -> Option<TraceContext> {
        match self {
            Self::Tell(told) => told.trace(),
            Self::Ask(ask) => ask.cell.as_ref().and_then(|c| c.trace()),
            Self::Run(run) => run.trace(),
        }
    }
}

/// Type-erased handling of a told message.
pub(crate) trait Handle<A: Actor>: Send {
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()>;
    fn type_name(&self) -> &'static str;
    fn trace(&self) -> Option<TraceContext>;
}

/// A told message of type `M`.
pub(crate) struct Told<M: Message> {
    msg: M,
    trace: Option<TraceContext>,
}

impl<M: Message> Told<M> {
    pub(crate) fn new(msg: M) -> Box<Self> {
        Box::new(Self {
            msg,
            trace: TraceContext::current(),
        })
    }

    /// Takes the message back out of a tell that was refused delivery.
    pub(crate) fn into_message(self) -> M {
        self.msg
    }
}

impl<A: Handler<M>, M: Message> Handle<A> for Told<M> {
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()> {
        let msg = self.msg;
        Box::pin(async move {
            actor.handle(msg, ctx).await;
        })
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn trace(&self) -> Option<TraceContext> {
        self.trace
    }
}

/// Type-erased told messages of one type, handled from the front.
pub(crate) trait HandleRun<A: Actor>: Send {
    /// Handles the run's messages in order, one future for all of them, each message in a
    /// span and a trace context of its own, until the run is empty, or after a message once
    /// the actor is asked to stop or a signal is raised in its mailbox. What is not handled
    /// stays in the run, also when a handler panics (that message is gone).
    fn handle_some<'a>(
        &'a mut self,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        scope: RunScope<'a, A>,
    ) -> BoxFuture<'a, ()>;
    fn len(&self) -> usize;
    fn type_name(&self) -> &'static str;
    fn trace(&self) -> Option<TraceContext>;
}

/// Told messages of type `M`, sent together from one trace context.
pub(crate) struct Run<M: Message> {
    msgs: VecDeque<M>,
    trace: Option<TraceContext>,
}

impl<M: Message> Run<M> {
    pub(crate) fn new(msgs: VecDeque<M>) -> Box<Self> {
        Box::new(Self {
            msgs,
            trace: TraceContext::current(),
        })
    }

    /// How many messages it holds.
    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Gives back the messages from the `n`th on.
    pub(crate) fn split_off(&mut self, n: usize) -> VecDeque<M> {
        self.msgs.split_off(n)
    }
}

/// What the handling of a run needs from its actor's cell.
pub(crate) struct RunScope<'a, A: Actor> {
    /// The actor, for the messages' spans.
    pub(crate) label: ActorLabel<'a>,
    /// The mailbox, for the signals that end a run early.
    pub(crate) mailbox: &'a Mailbox<A>,
    /// The context the run was sent from: each message is handled in a child of it.
    pub(crate) trace: Option<TraceContext>,
}

impl<A: Handler<M>, M: Message> HandleRun<A> for Run<M> {
    fn handle_some<'a>(
        &'a mut self,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        scope: RunScope<'a, A>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // Once a message's span is disabled, the rest of the run goes without: making and
            // entering a disabled span costs as much as a small handler.
            let mut spans = true;
            while let Some(msg) = self.msgs.pop_front() {
                // Each message is a child of the sender's context, as a single tell is.
                let trace = scope.trace.map(|t| t.child());
                let handling = InContext::maybe(trace, actor.handle(msg, ctx));
                if spans {
                    let span =
                        message_span(scope.label, std::any::type_name::<M>(), trace.as_ref());
                    spans = !span.is_disabled();
                    handling.instrument(span).await;
                } else {
                    handling.await;
                }
                if ctx.stop_requested() || scope.mailbox.has_signal() {
                    break;
                }
            }
        })
    }

    fn len(&self) -> usize {
        Run::len(self)
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn trace(&self) -> Option<TraceContext> {
        self.trace
    }
}

/// Type-erased handling of an asked message.
trait HandleAsk<A: Actor>: Send + Sync {
    fn handle<'a>(self: Arc<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()>;
    fn reject(&self, err: AskError);
    fn abandon(&self);
    fn type_name(&self) -> &'static str;
    fn trace(&self) -> Option<TraceContext>;
}

impl<A: Handler<M>, M: Message> HandleAsk<A> for AskCell<M> {
    fn handle<'a>(self: Arc<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()> {
        let msg = self.take_message();
        let answer = Answer::new(self);
        Box::pin(async move {
            if let Some(msg) = msg {
                let reply = actor.handle(msg, ctx).await;
                answer.send(reply);
            }
        })
    }

    fn reject(&self, err: AskError) {
        self.answer(Err(err));
    }

    fn abandon(&self) {
        AskCell::abandon(self);
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn trace(&self) -> Option<TraceContext> {
        AskCell::trace(self)
    }
}

/// A queued ask. Dropped unhandled and unrejected (say, with the mailbox), it answers the
/// asker with the error rather than leaving it to its deadline.
pub(crate) struct QueuedAsk<A: Actor> {
    cell: Option<Arc<dyn HandleAsk<A>>>,
}

impl<A: Actor> Drop for QueuedAsk<A> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            cell.abandon();
        }
    }
}

/// An ask before it is queued: typed, so that a refused one gives its message back.
pub(crate) struct AskEnvelope<M: Message> {
    cell: Arc<AskCell<M>>,
}

impl<M: Message> AskEnvelope<M> {
    /// A new ask of `msg` with `timeout`: the envelope to queue, the asker's end of its reply
    /// and the handle the deadline keeper holds.
    pub(crate) fn open(
        msg: M,
        timeout: Duration,
    ) -> (Self, ReplyReceiver<M::Reply>, Weak<dyn Expire>) {
        let cell = AskCell::new(msg, timeout);
        let (rx, expiry) = ReplyReceiver::new(&cell);
        (Self { cell }, rx, expiry)
    }

    /// Takes the message back out of an ask that was refused delivery.
    pub(crate) fn into_message(self) -> M {
        match self.cell.take_message() {
            Some(msg) => msg,
            // Only the actor takes the message, and only once the ask was queued.
            None => unreachable!("an ask refused delivery still holds its message"),
        }
    }
}

/// What the mailbox can queue for an actor of type `A`, handed back intact when refused.
pub(crate) trait Enqueue<A: Actor> {
    fn into_envelope(self) -> Envelope<A>;
}

impl<A: Handler<M>, M: Message> Enqueue<A> for Box<Told<M>> {
    fn into_envelope(self) -> Envelope<A> {
        Envelope::Tell(self)
    }
}

impl<A: Handler<M>, M: Message> Enqueue<A> for AskEnvelope<M> {
    fn into_envelope(self) -> Envelope<A> {
        Envelope::Ask(QueuedAsk {
            cell: Some(self.cell),
        })
    }
}
