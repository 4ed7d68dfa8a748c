//! The hosting side: frames from peers to the local actors this node serves.
//!
//! Each stream a peer opens is read in order; a tell is delivered (waiting for mailbox room,
//! which holds back the stream and so the sender), an ask is queued and its reply written
//! back on the same stream when ready. Unknown names and tags get an error reply, never a
//! panic; a tell that cannot be delivered is logged and dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actor_core::trace::TraceContext;
use actor_core::{ActorRef, ActorSystem};
use bytes::Bytes;
use futures::future::BoxFuture;
use quinn::{RecvStream, SendStream};
use tokio::sync::{Semaphore, mpsc};

use crate::codec::{Frame, FrameKind, Target, encode_body};
use crate::connection::{PeerLink, read_frames, write_frames};
use crate::message::{Accepts, PendingBytes, RemoteActor};
use crate::wire_error::RemoteError;

/// A local actor served to peers, erased to its type.
pub(crate) trait Served: Send + Sync + 'static {
    fn tags(&self) -> Vec<&'static str>;
    /// Marks it no longer served (streams that cached it look the name up again).
    fn retire(&self) {}
    fn is_retired(&self) -> bool {
        false
    }
    fn id(&self) -> u64;
    fn tell<'a>(&'a self, tag: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), RemoteError>>;
    fn send_ask<'a>(
        &'a self,
        tag: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, Result<PendingBytes, RemoteError>>;
}

/// A named local actor and its remote message table.
pub(crate) struct ServedActor<A: RemoteActor> {
    name: String,
    retired: AtomicBool,
    system: ActorSystem,
    actor: Mutex<ActorRef<A>>,
    accepts: Arc<Accepts<A>>,
}

impl<A: RemoteActor> ServedActor<A> {
    pub(crate) fn new(
        name: String,
        system: ActorSystem,
        actor: ActorRef<A>,
        accepts: Arc<Accepts<A>>,
    ) -> Self {
        Self {
            name,
            retired: AtomicBool::new(false),
            system,
            actor: Mutex::new(actor),
            accepts,
        }
    }

    /// The live actor under the name: the same mailbox across restarts; a new one if the
    /// actor stopped for good and was spawned again under the name.
    fn current(&self) -> Result<ActorRef<A>, RemoteError> {
        let mut actor = self.actor.lock().unwrap_or_else(PoisonError::into_inner);
        if !actor.is_alive() {
            if let Ok(fresh) = self.system.lookup::<A>(&self.name) {
                if fresh.is_local() {
                    *actor = fresh;
                }
            }
        }
        Ok(actor.clone())
    }
}

impl<A: RemoteActor> Served for ServedActor<A> {
    fn tags(&self) -> Vec<&'static str> {
        self.accepts.tags()
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    fn id(&self) -> u64 {
        self.actor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id()
            .as_u64()
    }

    fn tell<'a>(&'a self, tag: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let inbound = self
                .accepts
                .inbound(tag)
                .ok_or_else(|| RemoteError::UnknownMessage(tag.to_string()))?;
            let actor = self.current()?;
            inbound.tell(&actor, &body).await
        })
    }

    fn send_ask<'a>(
        &'a self,
        tag: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, Result<PendingBytes, RemoteError>> {
        Box::pin(async move {
            let inbound = self
                .accepts
                .inbound(tag)
                .ok_or_else(|| RemoteError::UnknownMessage(tag.to_string()))?;
            let actor = self.current()?;
            inbound.send_ask(&actor, &body).await
        })
    }
}

/// What the node offers its streams: the actors (and topic inboxes) it serves, by name.
pub(crate) trait ServedNames: Send + Sync + 'static {
    fn served(&self, name: &str) -> Option<Arc<dyn Served>>;
}

/// Serves one stream a peer opened: reads its frames in order, writes replies back on it.
pub(crate) async fn serve_stream(
    directory: Arc<dyn ServedNames>,
    link: Arc<PeerLink>,
    send: SendStream,
    recv: RecvStream,
) {
    let (reply_tx, reply_rx) = mpsc::channel::<Frame>(1024);
    tokio::spawn(write_frames(Arc::clone(&link), send, reply_rx));
    let permits = link.host_permits();
    // The served actor of the last target: a stream almost always carries one target.
    let mut cached: Option<(String, Arc<dyn Served>)> = None;
    let reader = Arc::clone(&link);
    read_frames(&reader, recv, |frame| {
        let target = match &frame.target {
            Some(Target::Name(name)) => Some(name.clone()),
            _ => None,
        };
        let served = match &target {
            Some(name) => match &cached {
                Some((cached_name, served)) if cached_name == name && !served.is_retired() => {
                    Some(Arc::clone(served))
                }
                _ => {
                    let found = directory.served(name);
                    if let Some(s) = &found {
                        cached = Some((name.clone(), Arc::clone(s)));
                    }
                    found
                }
            },
            None => None,
        };
        let (reply_tx, permits, link) = (reply_tx.clone(), Arc::clone(&permits), &link);
        async move {
            dispatch(frame, target, served, reply_tx, permits, link).await;
        }
    })
    .await;
}

async fn dispatch(
    frame: Frame,
    target: Option<String>,
    served: Option<Arc<dyn Served>>,
    reply_tx: mpsc::Sender<Frame>,
    permits: Arc<Semaphore>,
    link: &Arc<PeerLink>,
) {
    let name = target.unwrap_or_default();
    // The sender's trace context is current while the message is queued, so the handler
    // runs in the same trace.
    let trace = frame
        .trace
        .map(|t| TraceContext::from_parts(t.trace_id, t.span_id, t.flags & 1 == 1));
    match frame.kind {
        FrameKind::Tell => {
            let outcome = match &served {
                Some(s) => traced(trace, s.tell(&frame.tag, frame.body)).await,
                None => Err(RemoteError::UnknownActor(name.clone())),
            };
            if let Err(e) = outcome {
                tracing::debug!(peer = %link.node(), actor = %name, tag = %frame.tag, error = %e, "remote tell not delivered");
            }
        }
        FrameKind::Ask => {
            let id = frame.correlation_id;
            let Ok(permit) = permits.acquire_owned().await else {
                return;
            };
            let queued = match &served {
                Some(s) => traced(trace, s.send_ask(&frame.tag, frame.body)).await,
                None => Err(RemoteError::UnknownActor(name)),
            };
            match queued {
                Ok(pending) => {
                    tokio::spawn(async move {
                        let reply = pending.await;
                        let _ = reply_tx.send(answer(id, reply)).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    let _ = reply_tx.send(answer(id, Err(e))).await;
                }
            }
        }
        other => link.violation(&crate::codec::CodecError::InvalidHeader {
            kind: other,
            reason: "only tells and asks are sent to actors",
        }),
    }
}

async fn traced<F: std::future::Future>(trace: Option<TraceContext>, fut: F) -> F::Output {
    match trace {
        Some(t) => actor_core::trace::in_context(t, fut).await,
        None => fut.await,
    }
}

fn answer(id: u64, reply: Result<Bytes, RemoteError>) -> Frame {
    match reply {
        Ok(body) => Frame::reply(id, body),
        Err(e) => {
            let body = encode_body(&e).unwrap_or_default();
            Frame::error(id, body)
        }
    }
}

/// The inbox of a topic: publishes from other nodes, delivered to this node's subscribers.
pub(crate) struct TopicInbox {
    pub(crate) system: ActorSystem,
    pub(crate) topic: String,
    pub(crate) codec: Arc<crate::cluster::TopicCodec>,
}

impl Served for TopicInbox {
    fn tags(&self) -> Vec<&'static str> {
        vec![self.codec.tag]
    }

    fn id(&self) -> u64 {
        0
    }

    fn tell<'a>(&'a self, tag: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            if tag != self.codec.tag {
                return Err(RemoteError::UnknownMessage(tag.to_string()));
            }
            (self.codec.deliver)(&self.system, &self.topic, &body)
                .await
                .map(|_| ())
                .map_err(|e| RemoteError::Decode(e.to_string()))
        })
    }

    fn send_ask<'a>(
        &'a self,
        tag: &'a str,
        _body: Bytes,
    ) -> BoxFuture<'a, Result<PendingBytes, RemoteError>> {
        Box::pin(async move { Err(RemoteError::UnknownMessage(tag.to_string())) })
    }
}
