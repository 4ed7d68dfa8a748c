//! The hosting side: frames from peers to the local actors this node serves.
//!
//! Each stream a peer opens is served in order: every frame already received is decoded in
//! place (nothing copied) and dispatched before it reads on. A stream whose first frame is
//! for a local actor is that actor's feeder (`ActorRef::attach_feeder`): it runs in the
//! actor's own task while the actor waits for messages, so an ask is read, handled and
//! answered in one task, and in a helper task while the actor is busy, so a flood is read
//! on one worker while the actor handles it on the other and a slow handler holds up no
//! other target on the stream. Any other stream has a task of its own. Consecutive
//! tells of one message type to one actor are decoded into a [`TellRun`] and go into the
//! mailbox together, with one lock, once the read's frames are walked (or a frame of another
//! kind comes); when the mailbox is full the task waits for room, which holds back the stream
//! and so, through QUIC flow control, the sender. An ask is queued with its actor, and its
//! answer is written back on the stream by whichever task completes it, usually the actor's
//! (see [`crate::answers`]). Unknown names and tags get an error reply, never a panic; a tell
//! that cannot be delivered is logged and dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actor_core::remote::Feeder;
use actor_core::trace::TraceContext;
use actor_core::{ActorRef, ActorSystem, Handler, SendError};
use bytes::{Buf, BytesMut};
use futures::future::BoxFuture;
use quinn::{RecvStream, SendStream};
use tokio::io::AsyncReadExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::answers::{CloseOnDrop, ReplySink};
use crate::codec::{CodecError, FrameDecoder, FrameKind, FrameRef, TargetRef, decode_body};
use crate::connection::PeerLink;
use crate::message::{Accepts, PendingBytes, RemoteActor, RemoteMessage};
use crate::stats::Counters;
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
    fn tell<'a>(&'a self, tag: &'a str, body: &'a [u8]) -> BoxFuture<'a, Result<(), RemoteError>>;
    /// A [`TellRun`] for tells tagged `tag`, if this target delivers tells in runs.
    fn tell_run(self: Arc<Self>, _tag: &str) -> Option<Box<dyn TellRun>> {
        None
    }
    /// Hands a [`ServedStream`] to this target's actor as its feeder, if it has one; hands
    /// it back otherwise.
    fn host(&self, serving: Feeder) -> Result<(), Feeder> {
        Err(serving)
    }
    fn send_ask(
        &self,
        tag: &str,
        body: &[u8],
    ) -> BoxFuture<'static, Result<PendingBytes, RemoteError>>;
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
    fn current(&self) -> ActorRef<A> {
        let mut actor = self.actor.lock().unwrap_or_else(PoisonError::into_inner);
        if !actor.is_alive() {
            if let Ok(fresh) = self.system.lookup::<A>(&self.name) {
                if fresh.is_local() {
                    *actor = fresh;
                }
            }
        }
        actor.clone()
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

    fn tell<'a>(&'a self, tag: &'a str, body: &'a [u8]) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let inbound = self
                .accepts
                .inbound(tag)
                .ok_or_else(|| RemoteError::UnknownMessage(tag.to_string()))?;
            let actor = self.current();
            inbound.tell(&actor, body).await
        })
    }

    fn tell_run(self: Arc<Self>, tag: &str) -> Option<Box<dyn TellRun>> {
        let inbound = Arc::clone(self.accepts.inbound(tag)?);
        Some(inbound.run(self))
    }

    fn host(&self, serving: Feeder) -> Result<(), Feeder> {
        self.current().attach_feeder(serving)
    }

    fn send_ask(
        &self,
        tag: &str,
        body: &[u8],
    ) -> BoxFuture<'static, Result<PendingBytes, RemoteError>> {
        match self.accepts.inbound(tag) {
            Some(inbound) => inbound.send_ask(self.current(), body),
            None => {
                let unknown = RemoteError::UnknownMessage(tag.to_string());
                Box::pin(async move { Err(unknown) })
            }
        }
    }
}

/// Consecutive tells of one message type to one served actor, decoded as their frames are
/// read and delivered together: one mailbox lock and one wake-up of the actor for all the
/// tells of a read, where delivering each frame on its own pays both per message.
pub(crate) trait TellRun: Send {
    /// The tag of the run's message type.
    fn tag(&self) -> &'static str;
    /// Decodes one more tell into the run; a body that does not decode is refused (and
    /// nothing else is lost).
    fn push(&mut self, body: &[u8]) -> Result<(), RemoteError>;
    /// Delivers the tells decoded so far, in order: at once if the mailbox has room for
    /// them (`None`), or through the returned future, which waits for room (holding back the
    /// stream, and through QUIC flow control the sender). An actor that stopped for good
    /// loses the run; the error says so.
    fn flush(&mut self) -> Option<BoxFuture<'_, Result<(), RemoteError>>>;
    /// Tells decoded and not yet delivered.
    fn len(&self) -> usize;
}

/// The most tells a run's buffer is sized for ahead of its first tell.
const MAX_RESERVED_RUN: usize = 1024;

/// The [`TellRun`] of message type `M` to a served actor of type `A`.
pub(crate) struct MessageRun<A: RemoteActor, M> {
    served: Arc<ServedActor<A>>,
    msgs: VecDeque<M>,
}

impl<A: RemoteActor, M> MessageRun<A, M> {
    pub(crate) fn new(served: Arc<ServedActor<A>>) -> Self {
        Self {
            served,
            msgs: VecDeque::new(),
        }
    }
}

impl<A, M> TellRun for MessageRun<A, M>
where
    A: RemoteActor + Handler<M>,
    M: RemoteMessage,
{
    fn tag(&self) -> &'static str {
        M::TAG
    }

    fn push(&mut self, body: &[u8]) -> Result<(), RemoteError> {
        let msg = decode_body::<M>(body).map_err(|e| RemoteError::Decode(e.to_string()))?;
        self.msgs.push_back(msg);
        Ok(())
    }

    fn flush(&mut self) -> Option<BoxFuture<'_, Result<(), RemoteError>>> {
        if self.msgs.is_empty() {
            return None;
        }
        // Optimistic: the actor under the name is almost always the one held, so try it
        // without the liveness check and the ref clone; look the name up again only if it
        // has stopped for good.
        let first = {
            let actor = self
                .served
                .actor
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            actor.try_tell_many(&mut self.msgs)
        };
        let sent = match first {
            Err(SendError::Stopped(())) => self.served.current().try_tell_many(&mut self.msgs),
            other => other,
        };
        match sent {
            Ok(sent) if self.msgs.is_empty() => {
                // The run went to the actor whole, its buffer with it: size the next one
                // like it, rather than growing it again from nothing.
                self.msgs.reserve(sent.min(MAX_RESERVED_RUN));
                None
            }
            Ok(_) => Some(Box::pin(async move {
                // The mailbox is full: wait for room for the next tell, then send as many
                // as fit, until all are in.
                let actor = self.served.current();
                while let Some(msg) = self.msgs.pop_front() {
                    let sent = match actor.tell(msg).await {
                        Ok(()) => actor.try_tell_many(&mut self.msgs).map(drop),
                        Err(e) => Err(e.map(drop)),
                    };
                    if let Err(e) = sent {
                        self.msgs.clear();
                        return Err(RemoteError::from_send(e));
                    }
                }
                Ok(())
            })),
            Err(e) => {
                self.msgs.clear();
                Some(Box::pin(async move { Err(RemoteError::from_send(e)) }))
            }
        }
    }

    fn len(&self) -> usize {
        self.msgs.len()
    }
}

/// The run of tells a stream is collecting, and the served actor it is for.
struct OpenRun {
    served: Arc<dyn Served>,
    run: Box<dyn TellRun>,
}

impl OpenRun {
    /// Whether a tell tagged `tag` to `served` continues this run.
    fn continues(&self, served: &Arc<dyn Served>, tag: &str) -> bool {
        Arc::ptr_eq(&self.served, served) && self.run.tag() == tag
    }
}

/// Delivers the tells of the stream's open run, if any; failures are logged and dropped, as
/// for any tell.
async fn flush_run(run: &mut Option<OpenRun>, link: &PeerLink) {
    let Some(open) = run else { return };
    let count = open.run.len();
    let Some(waiting) = open.run.flush() else {
        return;
    };
    if let Err(e) = waiting.await {
        tracing::debug!(peer = %link.node(), tag = %open.run.tag(), tells = count, error = %e, "remote tells not delivered");
    }
}

/// What the node offers its streams: the actors (and topic inboxes) it serves, by name.
pub(crate) trait ServedNames: Send + Sync + 'static {
    fn served(&self, name: &str) -> Option<Arc<dyn Served>>;
}

/// One stream a peer opened, served: reads its frames in order, writes replies back on it.
///
/// It is the feeder of the actor its first frame is for, when that is a local actor (see
/// [`Served::host`]): while the actor waits, the frames are decoded, delivered and handled in
/// its task, and the answers leave from it; while it is busy, a helper task reads on.
/// Otherwise (a topic, an unknown name) it runs in a task of its own.
pub(crate) struct ServedStream {
    directory: Arc<dyn ServedNames>,
    link: Arc<PeerLink>,
    recv: RecvStream,
    decoder: FrameDecoder,
    /// What was read and not yet consumed.
    buf: BytesMut,
    sink: Arc<ReplySink>,
    /// The served actor of the last target looked up, and its name: a stream almost always
    /// carries one target.
    cached: Option<(String, Arc<dyn Served>)>,
    /// Finishes the stream's sending half when serving ends, however it ends.
    _close: CloseOnDrop,
}

/// The frames decoded from one read, added to the link's count when dropped: once per read,
/// and also on the ways out of a read that ends the stream.
struct FramesRead<'a> {
    counters: &'a Counters,
    n: u64,
}

impl Drop for FramesRead<'_> {
    fn drop(&mut self) {
        Counters::add(&self.counters.frames_received, self.n);
    }
}

impl ServedStream {
    pub(crate) fn new(
        directory: Arc<dyn ServedNames>,
        link: Arc<PeerLink>,
        send: SendStream,
        recv: RecvStream,
    ) -> Self {
        let sink = ReplySink::new(send, Arc::clone(&link));
        let close = sink.closing();
        Self {
            directory,
            decoder: FrameDecoder::new(link.max_frame_len()),
            link,
            recv,
            buf: BytesMut::with_capacity(16 * 1024),
            sink,
            cached: None,
            _close: close,
        }
    }

    /// Reads until the first frame is in, and says which served target it is for (none for
    /// a stream that ends first or starts with garbage: [`serve`](Self::serve) deals with
    /// those).
    pub(crate) async fn first_target(&mut self) -> Option<Arc<dyn Served>> {
        loop {
            // A copy of the decoder peeks: the frame is decoded again, for real, when served.
            match self.decoder.clone().decode_ref(&mut self.buf) {
                Ok(Some((frame, _))) => {
                    let Some(TargetRef::Name(name)) = frame.target else {
                        return None;
                    };
                    let served = self.directory.served(name)?;
                    // Serving starts from it, rather than looking the name up again.
                    self.cached = Some((name.to_string(), Arc::clone(&served)));
                    return Some(served);
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            match self.recv.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Serves the stream to its end.
    pub(crate) async fn serve(self) {
        let ServedStream {
            directory,
            link,
            mut recv,
            mut decoder,
            mut buf,
            sink,
            mut cached,
            _close,
        } = self;
        let permits = link.host_permits();
        // The tells read so far that continue one run, delivered before anything else is.
        let mut run: Option<OpenRun> = None;
        let mut reading = true;
        loop {
            // Every complete frame received so far, in order, before reading on.
            if reading {
                let mut frames = FramesRead {
                    counters: link.counters(),
                    n: 0,
                };
                loop {
                    let (frame, len) = match decoder.decode_ref(&mut buf) {
                        Ok(Some(decoded)) => decoded,
                        Ok(None) => break,
                        Err(e) => {
                            // What came before the offending frame was sound.
                            flush_run(&mut run, &link).await;
                            link.violation(&e);
                            return;
                        }
                    };
                    frames.n += 1;
                    let served = match frame.target {
                        Some(TargetRef::Name(name)) => {
                            let held = cached.as_ref().is_some_and(|(cached_name, served)| {
                                cached_name == name && !served.is_retired()
                            });
                            if !held {
                                cached = directory.served(name).map(|s| (name.to_string(), s));
                            }
                            cached.as_ref().map(|(_, served)| served)
                        }
                        _ => None,
                    };
                    if let (FrameKind::Tell, None, Some(served)) =
                        (frame.kind, frame.trace, &served)
                    {
                        if !run.as_ref().is_some_and(|r| r.continues(served, frame.tag)) {
                            flush_run(&mut run, &link).await;
                            run = Arc::clone(served).tell_run(frame.tag).map(|r| OpenRun {
                                served: Arc::clone(served),
                                run: r,
                            });
                        }
                        match &mut run {
                            Some(open) => {
                                if let Err(e) = open.run.push(frame.body) {
                                    tell_lost(&frame, link.node(), &e);
                                }
                            }
                            None => deliver_tell(&frame, Some(&***served), &link).await,
                        }
                        buf.advance(len);
                        continue;
                    }
                    flush_run(&mut run, &link).await;
                    match frame.kind {
                        FrameKind::Tell => deliver_tell(&frame, served.map(|s| &**s), &link).await,
                        FrameKind::Ask => {
                            let permit = match Arc::clone(&permits).try_acquire_owned() {
                                Ok(permit) => permit,
                                Err(TryAcquireError::Closed) => return,
                                Err(TryAcquireError::NoPermits) => {
                                    match wait_for_permit(&permits, &sink).await {
                                        Some(permit) => permit,
                                        None => return,
                                    }
                                }
                            };
                            let pending = queue_ask(&frame, served.map(|s| &**s)).await;
                            sink.answer(frame.correlation_id, pending, permit);
                        }
                        other => {
                            link.violation(&CodecError::InvalidHeader {
                                kind: other,
                                reason: "only tells and asks are sent to actors",
                            });
                            return;
                        }
                    }
                    buf.advance(len);
                }
                drop(frames);
                flush_run(&mut run, &link).await;
                // A stream that always has more to read never waits, so it would keep its worker
                // (and the tasks it woke, which wait in that worker's slot) as long as the flood
                // lasts: one unit of the task's budget per read makes it yield now and then.
                tokio::task::coop::consume_budget().await;
            }
            if !reading && sink.is_idle() {
                return;
            }
            tokio::select! {
                () = sink.wait_queued() => {
                    if !sink.write_queued().await {
                        return;
                    }
                }
                read = recv.read_buf(&mut buf), if reading => {
                    if matches!(read, Ok(0) | Err(_)) {
                        // The peer finished sending: answer what is pending, then stop.
                        reading = false;
                        sink.drain();
                    }
                }
            }
        }
    }
}

/// Delivers a tell; one that cannot be delivered is logged and dropped.
async fn deliver_tell(frame: &FrameRef<'_>, served: Option<&dyn Served>, link: &PeerLink) {
    let outcome = match (served, frame.trace) {
        (None, _) => Err(unknown_actor(frame)),
        (Some(s), None) => s.tell(frame.tag, frame.body).await,
        // The sender's trace context is current while the message is queued, so the handler
        // runs in the same trace.
        (Some(s), Some(t)) => traced(t, s.tell(frame.tag, frame.body)).await,
    };
    if let Err(e) = outcome {
        tell_lost(frame, link.node(), &e);
    }
}

/// Logs a tell that could not be delivered (tells are at most once: it is dropped).
fn tell_lost(frame: &FrameRef<'_>, peer: &str, error: &RemoteError) {
    tracing::debug!(peer = %peer, target = ?frame.target, tag = %frame.tag, error = %error, "remote tell not delivered");
}

/// Queues an ask with its actor; the pending reply, or why there is none.
async fn queue_ask(frame: &FrameRef<'_>, served: Option<&dyn Served>) -> PendingBytes {
    let queued = match (served, frame.trace) {
        (None, _) => Err(unknown_actor(frame)),
        (Some(s), None) => s.send_ask(frame.tag, frame.body).await,
        (Some(s), Some(t)) => traced(t, s.send_ask(frame.tag, frame.body)).await,
    };
    queued.unwrap_or_else(|e| Box::pin(async move { Err(e) }))
}

fn unknown_actor(frame: &FrameRef<'_>) -> RemoteError {
    let name = match frame.target {
        Some(TargetRef::Name(name)) => name,
        _ => "",
    };
    RemoteError::UnknownActor(name.to_string())
}

async fn traced<F: Future>(t: crate::codec::TraceContext, fut: F) -> F::Output {
    let context = TraceContext::from_parts(t.trace_id, t.span_id, t.flags & 1 == 1);
    actor_core::trace::in_context(context, fut).await
}

/// Waits for a permit to work on one more ask, writing queued answers meanwhile (they free
/// permits); `None` once the stream or the node is gone.
async fn wait_for_permit(
    permits: &Arc<Semaphore>,
    sink: &ReplySink,
) -> Option<OwnedSemaphorePermit> {
    loop {
        tokio::select! {
            permit = Arc::clone(permits).acquire_owned() => return permit.ok(),
            () = sink.wait_queued() => {
                if !sink.write_queued().await {
                    return None;
                }
            }
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

    fn tell<'a>(&'a self, tag: &'a str, body: &'a [u8]) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            if tag != self.codec.tag {
                return Err(RemoteError::UnknownMessage(tag.to_string()));
            }
            (self.codec.deliver)(&self.system, &self.topic, body)
                .await
                .map(|_| ())
                .map_err(|e| RemoteError::Decode(e.to_string()))
        })
    }

    fn send_ask(
        &self,
        tag: &str,
        _body: &[u8],
    ) -> BoxFuture<'static, Result<PendingBytes, RemoteError>> {
        let unknown = RemoteError::UnknownMessage(tag.to_string());
        Box::pin(async move { Err(unknown) })
    }
}
