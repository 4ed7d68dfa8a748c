//! The envelope: a typed message plus an optional reply slot, erased to the actor type.
//!
//! Local delivery never serializes: the mailbox carries `Box<dyn EnvelopeProxy<A>>`, and
//! handling is a virtual call that runs the typed handler.

use futures::future::BoxFuture;

use crate::actor::{Actor, Handler, Message};
use crate::context::Context;
use crate::error::AskError;
use crate::reply::ReplySlot;
use crate::trace::TraceContext;

/// A message on its way to an actor of type `A`.
pub(crate) type Envelope<A> = Box<dyn EnvelopeProxy<A>>;

/// Type-erased handling of one queued message.
pub(crate) trait EnvelopeProxy<A: Actor>: Send {
    /// Runs the handler and answers the reply slot, if any.
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()>;
    /// Answers the reply slot, if any, with `err` without handling the message.
    fn reject(self: Box<Self>, err: AskError);
    /// The message's Rust type name, for spans and logs.
    fn type_name(&self) -> &'static str;
    /// The trace context the message was sent from.
    fn trace(&self) -> Option<TraceContext>;
}

/// The concrete envelope for message type `M`.
pub(crate) struct MessageEnvelope<M: Message> {
    msg: M,
    reply: Option<ReplySlot<M::Reply>>,
    trace: Option<TraceContext>,
}

impl<M: Message> MessageEnvelope<M> {
    pub(crate) fn tell(msg: M) -> Self {
        Self {
            msg,
            reply: None,
            trace: TraceContext::current(),
        }
    }

    pub(crate) fn ask(msg: M, reply: ReplySlot<M::Reply>) -> Self {
        Self {
            msg,
            reply: Some(reply),
            trace: TraceContext::current(),
        }
    }

    /// Takes the message back out of an envelope that was refused delivery.
    pub(crate) fn into_message(self) -> M {
        self.msg
    }
}

impl<A, M> EnvelopeProxy<A> for MessageEnvelope<M>
where
    A: Handler<M>,
    M: Message,
{
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> BoxFuture<'a, ()> {
        let MessageEnvelope { msg, reply, .. } = *self;
        Box::pin(async move {
            let out = actor.handle(msg, ctx).await;
            if let Some(slot) = reply {
                slot.send(Ok(out));
            }
        })
    }

    fn reject(self: Box<Self>, err: AskError) {
        if let Some(slot) = self.reply {
            slot.send(Err(err));
        }
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn trace(&self) -> Option<TraceContext> {
        self.trace
    }
}
