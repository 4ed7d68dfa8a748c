//! Messages that cross nodes: [`RemoteMessage`], and [`RemoteActor`], which declares the
//! remote messages an actor type accepts.
//!
//! One declaration, on the actor type, serves both ends: the hosting node decodes and
//! dispatches by tag, the calling node encodes by Rust type and decodes the reply. Nothing is
//! registered globally; a node learns a type when it serves, looks up or registers it.
//!
//! ```
//! use actor_core::{Actor, Context, Handler, Message};
//! use actor_remote::{Accepts, RemoteActor, RemoteMessage};
//! use serde::{Deserialize, Serialize};
//!
//! struct Products;
//! impl Actor for Products {}
//!
//! #[derive(Serialize, Deserialize)]
//! struct GetPrice { sku: String }
//! impl Message for GetPrice { type Reply = Option<u64>; }
//! impl RemoteMessage for GetPrice { const TAG: &'static str = "shop.products.get_price.v1"; }
//!
//! impl Handler<GetPrice> for Products {
//!     async fn handle(&mut self, msg: GetPrice, _ctx: &mut Context<Self>) -> Option<u64> {
//!         (msg.sku == "tea").then_some(450)
//!     }
//! }
//!
//! impl RemoteActor for Products {
//!     fn accepts(accepts: &mut Accepts<Self>) {
//!         accepts.message::<GetPrice>();
//!     }
//! }
//! ```

use std::any::{Any, TypeId};
use std::sync::Arc;

use actor_core::remote::{ErasedReply, MessageRef};
use actor_core::{Actor, ActorRef, AskError, Handler, Message, SendError};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{CodecError, decode_body, encode_body, encode_body_into};
use crate::dispatch::{MessageRun, ServedActor, TellRun};
use crate::wire_error::RemoteError;

/// A message that may cross nodes: serde for itself and its reply, and a stable tag.
///
/// The tag names the message on the wire and must never change meaning; version it
/// (`"shop.orders.place.v1"`) and add a new tag for an incompatible change.
pub trait RemoteMessage:
    Message<Reply: Serialize + DeserializeOwned> + Serialize + DeserializeOwned
{
    /// The stable wire tag.
    const TAG: &'static str;
}

/// An actor type that other nodes may talk to, and the remote messages it accepts.
pub trait RemoteActor: Actor {
    /// Declares each accepted message: `accepts.message::<GetPrices>().message::<Restock>()`.
    fn accepts(accepts: &mut Accepts<Self>);
}

/// The remote messages of one actor type, by wire tag (for dispatch) and by Rust type (for
/// encoding). Built once per type and node from [`RemoteActor::accepts`].
pub struct Accepts<A: Actor> {
    // Looked up once per message sent or received. The keys are fixed when the table is
    // built (a peer only looks up), so a fast non-keyed hash is safe here.
    inbound: FxHashMap<&'static str, Arc<dyn Inbound<A>>>,
    outbound: FxHashMap<TypeId, Outbound>,
}

impl<A: Actor> Accepts<A> {
    /// Accepts `M` from other nodes.
    pub fn message<M>(&mut self) -> &mut Self
    where
        M: RemoteMessage,
        A: Handler<M>,
    {
        self.inbound
            .insert(M::TAG, Arc::new(InboundMessage::<M>::default()));
        self.outbound.insert(
            TypeId::of::<M>(),
            Outbound {
                tag: M::TAG,
                encode: encode_erased::<M>,
                decode_reply: decode_reply::<M>,
            },
        );
        self
    }

    /// The tags this actor type accepts, sorted.
    pub fn tags(&self) -> Vec<&'static str> {
        let mut tags: Vec<_> = self.inbound.keys().copied().collect();
        tags.sort_unstable();
        tags
    }
}

impl<A: RemoteActor> Accepts<A> {
    /// The table declared by `A`.
    pub(crate) fn of() -> Self {
        let mut accepts = Accepts {
            inbound: FxHashMap::default(),
            outbound: FxHashMap::default(),
        };
        A::accepts(&mut accepts);
        accepts
    }

    pub(crate) fn inbound(&self, tag: &str) -> Option<&Arc<dyn Inbound<A>>> {
        self.inbound.get(tag)
    }
}

/// How the calling side puts one message type on the wire.
#[derive(Clone, Copy)]
pub(crate) struct Outbound {
    pub(crate) tag: &'static str,
    /// Appends the message's body to the buffer (leaving it as it was on error).
    pub(crate) encode: fn(MessageRef<'_>, &mut BytesMut) -> Result<(), CodecError>,
    pub(crate) decode_reply: fn(&[u8]) -> Result<ErasedReply, CodecError>,
}

/// The calling side's view of an actor type's table, erased to the actor type.
pub(crate) trait OutboundTable: Send + Sync + 'static {
    fn outbound(&self, message: TypeId) -> Option<Outbound>;
    /// Whether an actor accepting `tags` can take any message of this table: a name served
    /// by an actor of an unrelated type is a wrong-type look-up, not a ref that fails later.
    fn compatible(&self, tags: &[String]) -> bool;
}

impl<A: Actor> OutboundTable for Accepts<A> {
    fn outbound(&self, message: TypeId) -> Option<Outbound> {
        self.outbound.get(&message).copied()
    }
    fn compatible(&self, tags: &[String]) -> bool {
        tags.iter().any(|t| self.inbound.contains_key(t.as_str()))
    }
}

fn encode_erased<M: RemoteMessage>(
    msg: MessageRef<'_>,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    match msg.value.downcast_ref::<M>() {
        Some(m) => encode_body_into(m, dst),
        None => Err(CodecError::BodyEncode(
            bincode::error::EncodeError::OtherString(format!(
                "expected a {}, got a {}",
                std::any::type_name::<M>(),
                msg.type_name
            )),
        )),
    }
}

fn decode_reply<M: RemoteMessage>(bytes: &[u8]) -> Result<ErasedReply, CodecError> {
    decode_body::<M::Reply>(bytes).map(|r| Box::new(r) as Box<dyn Any + Send>)
}

/// A reply still being computed by the hosting actor, already encoded when ready.
pub(crate) type PendingBytes = BoxFuture<'static, Result<Bytes, RemoteError>>;

/// The hosting side of one message type: decode, deliver, encode the reply.
pub(crate) trait Inbound<A: Actor>: Send + Sync {
    fn tell<'a>(
        &self,
        actor: &'a ActorRef<A>,
        body: &[u8],
    ) -> BoxFuture<'a, Result<(), RemoteError>>;
    fn send_ask(
        &self,
        actor: ActorRef<A>,
        body: &[u8],
    ) -> BoxFuture<'static, Result<PendingBytes, RemoteError>>;
    /// A run of tells of this message type to the served actor (see [`TellRun`]).
    fn run(&self, served: Arc<ServedActor<A>>) -> Box<dyn TellRun>
    where
        A: RemoteActor;
}

struct InboundMessage<M>(std::marker::PhantomData<fn(M)>);

impl<M> Default for InboundMessage<M> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<A, M> Inbound<A> for InboundMessage<M>
where
    A: Handler<M>,
    M: RemoteMessage,
{
    fn tell<'a>(
        &self,
        actor: &'a ActorRef<A>,
        body: &[u8],
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        let decoded = decode_body::<M>(body);
        Box::pin(async move {
            let msg = decoded.map_err(|e| RemoteError::Decode(e.to_string()))?;
            actor.tell(msg).await.map_err(RemoteError::from_send)
        })
    }

    fn send_ask(
        &self,
        actor: ActorRef<A>,
        body: &[u8],
    ) -> BoxFuture<'static, Result<PendingBytes, RemoteError>> {
        let decoded = decode_body::<M>(body);
        Box::pin(async move {
            let msg = decoded.map_err(|e| RemoteError::Decode(e.to_string()))?;
            let pending = actor.send_ask(msg).await.map_err(RemoteError::from_send)?;
            let reply: PendingBytes = Box::pin(async move {
                let reply = pending.await.map_err(RemoteError::from_ask)?;
                encode_body(&reply).map_err(|e| RemoteError::Encode(e.to_string()))
            });
            Ok(reply)
        })
    }

    fn run(&self, served: Arc<ServedActor<A>>) -> Box<dyn TellRun>
    where
        A: RemoteActor,
    {
        Box::new(MessageRun::<A, M>::new(served))
    }
}

impl RemoteError {
    pub(crate) fn from_send<M>(e: SendError<M>) -> Self {
        match e {
            SendError::Full(_) => RemoteError::Overloaded,
            _ => RemoteError::Stopped,
        }
    }

    fn from_ask(e: AskError) -> Self {
        match e {
            AskError::HandlerPanicked { .. } => RemoteError::HandlerPanicked,
            AskError::Timeout(_) => RemoteError::Timeout,
            AskError::Stopped => RemoteError::Stopped,
            other => RemoteError::Internal(other.to_string()),
        }
    }
}
