//! [`PeerLink`]: one authenticated QUIC connection to a peer node, and its streams.
//!
//! # Streams and ordering
//! Every actor this node sends to on the peer gets its own *lane*: a bidirectional stream that
//! carries all tells and asks to that actor, in order (so per sender->receiver order holds),
//! and brings back the replies. Different actors use different streams, so a slow actor or a
//! large message does not block the others (no head-of-line blocking). A control stream, the
//! one the handshake ran on, carries control frames.
//!
//! # Flow control
//! A lane queues the encoded bytes of its frames, bounded (see [`Lane`]); `tell` waits for
//! room, `try_tell` says `Full`. The writer takes every queued frame into one write per
//! wake-up (batching). On the
//! receiving side a lane's reader waits for the target mailbox to have room before reading on,
//! so QUIC flow control carries the back-pressure to the sender. Nothing is queued without a
//! bound.
//!
//! # Failure
//! When the connection is lost, every ask in flight on it fails at once with `NodeDown`, and
//! tells still queued are dropped and counted.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use actor_core::AskError;
use bytes::{Bytes, BytesMut};
use quinn::{Connection, RecvStream, SendStream};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, oneshot};

use crate::auth::PeerIdentity;
use crate::codec::{
    CodecError, Control, Frame, FrameDecoder, FrameKind, FrameRef, TargetRef, TraceContext,
    decode_body, encode_frame, encode_frame_ref,
};
use crate::handshake::close_code;
use crate::lane::{LANE_CAPACITY, Lane, PushError};
use crate::replies::ReadOutcome;
use crate::stats::Counters;
use crate::wire_error::RemoteError;

/// Where a link hands the frames it receives from the peer.
pub(crate) trait Inbox: Send + Sync + 'static {
    /// A new stream opened by the peer: tells and asks to serve.
    fn serve_stream(&self, link: Arc<PeerLink>, send: SendStream, recv: RecvStream);
    /// A control frame from the peer.
    fn control(&self, link: &Arc<PeerLink>, frame: Frame);
}

/// Why a send on a link failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkSendError {
    /// The lane queue is full (only from `try_` sends).
    Full,
    /// The link is closed or closing.
    Closed,
    /// Too many asks in flight to this peer.
    Overloaded,
}

type ReplySender = oneshot::Sender<Result<Bytes, AskError>>;

/// An ask in flight: where its reply goes, and the lane its frame went on (whose stream
/// brings the reply back).
struct InFlight {
    reply: ReplySender,
    lane: u64,
}

/// Resolves once `done()` holds, checking every 5 ms; callers bound it with a time-out. For
/// conditions that have no notification of their own (counts across links and permits).
pub(crate) async fn poll_until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long a settled link stays open for the answers written last to reach the peer.
const CLOSE_LINGER: Duration = Duration::from_millis(50);

/// An authenticated connection to one peer.
pub(crate) struct PeerLink {
    pub(crate) peer: PeerIdentity,
    pub(crate) conn: Connection,
    /// Whether this node dialed (decides simultaneous dials).
    pub(crate) dialed_by_us: bool,
    max_frame_len: usize,
    max_asks_in_flight: usize,
    closed: AtomicBool,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    pending: Mutex<HashMap<u64, InFlight>>,
    next_correlation: AtomicU64,
    next_lane: AtomicU64,
    control: Arc<Lane>,
    counters: Arc<Counters>,
    /// Fires when the link is closed; the reconnect logic waits on it.
    closed_signal: tokio::sync::watch::Sender<bool>,
    /// Bounds the asks from this peer being worked on here at once.
    host_permits: Arc<Semaphore>,
    /// Set once the peer's first registry announcement has arrived.
    announced: tokio::sync::watch::Sender<bool>,
    /// What this node has to announce to the peer, sent in order by the link's announcer.
    announcing: tokio::sync::watch::Sender<Announcing>,
    /// Set once the announcer has queued the leave on the control stream.
    leaving_queued: tokio::sync::watch::Sender<bool>,
    /// Bumped to drop every stream the peer opened here, keeping the connection.
    #[cfg(feature = "fault-injection")]
    pub(crate) drop_streams: tokio::sync::watch::Sender<u64>,
}

/// The announcements of this node to one peer: the newest registry (one superseded before it
/// was sent is never sent), then, once the node leaves, that it leaves.
#[derive(Debug, Clone, Default)]
struct Announcing {
    registry: Option<Bytes>,
    /// Counts the registries announced, so the announcer sends each newest one once.
    version: u64,
    leaving: bool,
}

/// The send priority of the control stream; data streams keep quinn's default, 0.
const CONTROL_PRIORITY: i32 = 1;

/// Settings of a link taken from the node's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkLimits {
    pub(crate) max_frame_len: usize,
    pub(crate) max_asks_in_flight: usize,
}

/// The tasks of a new link, not yet started: see [`PeerLink::new`].
pub(crate) struct LinkTasks {
    link: Arc<PeerLink>,
    control_send: SendStream,
    control_recv: RecvStream,
    inbox: Arc<dyn Inbox>,
}

impl LinkTasks {
    /// Starts writing and reading the link's control stream, accepting its streams and
    /// watching for its close.
    pub(crate) fn spawn(self) {
        let LinkTasks {
            link,
            control_send,
            control_recv,
            inbox,
        } = self;
        // Membership probes, registries and leaves go ahead of data: a flood of tells on
        // the data streams must not delay an ack until the peer takes this node for down.
        if control_send.set_priority(CONTROL_PRIORITY).is_err() {
            tracing::debug!(peer = %link.node(), "control stream closed before it was used");
        }
        let writer = Arc::clone(&link);
        tokio::spawn(async move {
            let control = Arc::clone(&writer.control);
            control.attach(control_send);
            write_lane(writer, Arc::clone(&control)).await;
            control.close();
        });
        tokio::spawn(read_control(
            Arc::clone(&link),
            control_recv,
            Arc::clone(&inbox),
        ));
        tokio::spawn(accept_streams(Arc::clone(&link), inbox));
        tokio::spawn(announce(Arc::clone(&link)));
        tokio::spawn(watch_close(link));
    }
}

impl PeerLink {
    /// Wraps a connection that has passed the handshake. Nothing is read from it until
    /// [`LinkTasks::spawn`]: the caller makes the link known first, so that what the peer
    /// sends (its membership packets above all) finds it.
    pub(crate) fn new(
        handshake: crate::handshake::Handshake,
        dialed_by_us: bool,
        limits: LinkLimits,
        counters: Arc<Counters>,
        inbox: Arc<dyn Inbox>,
    ) -> (Arc<PeerLink>, LinkTasks) {
        let link = Arc::new(PeerLink {
            peer: handshake.peer,
            conn: handshake.conn,
            dialed_by_us,
            max_frame_len: limits.max_frame_len,
            max_asks_in_flight: limits.max_asks_in_flight,
            closed: AtomicBool::new(false),
            lanes: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_correlation: AtomicU64::new(1),
            next_lane: AtomicU64::new(1),
            control: Arc::new(Lane::new(0, LANE_CAPACITY, Arc::clone(&counters))),
            counters,
            closed_signal: tokio::sync::watch::Sender::new(false),
            host_permits: Arc::new(Semaphore::new(limits.max_asks_in_flight)),
            announced: tokio::sync::watch::Sender::new(false),
            announcing: tokio::sync::watch::Sender::new(Announcing::default()),
            leaving_queued: tokio::sync::watch::Sender::new(false),
            #[cfg(feature = "fault-injection")]
            drop_streams: tokio::sync::watch::Sender::new(0),
        });
        let tasks = LinkTasks {
            link: Arc::clone(&link),
            control_send: handshake.control_send,
            control_recv: handshake.control_recv,
            inbox,
        };
        (link, tasks)
    }

    /// The peer's node name.
    pub(crate) fn node(&self) -> &str {
        &self.peer.node
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The largest frame this link sends.
    pub(crate) fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Records that the peer's registry has arrived.
    pub(crate) fn mark_announced(&self) {
        self.announced.send_replace(true);
    }

    /// Resolves once the peer's first registry announcement has arrived (or the link closed).
    pub(crate) async fn announced(&self) {
        let mut rx = self.announced.subscribe();
        tokio::select! {
            _ = rx.wait_for(|a| *a) => {}
            () = self.closed() => {}
        }
    }

    /// How many asks from this peer this node is working on now.
    pub(crate) fn host_asks_in_flight(&self) -> usize {
        self.max_asks_in_flight
            .saturating_sub(self.host_permits.available_permits())
    }

    /// How many asks this node has sent on the link and not yet had answered.
    pub(crate) fn asks_awaiting_replies(&self) -> usize {
        self.lock_pending().len()
    }

    /// Closes a link that takes no new work (a duplicate, or a peer that left) once nothing
    /// is in flight on it: no ask of ours awaits its answer and no ask of the peer's is being
    /// answered here, and the last answers written have had [`CLOSE_LINGER`] to reach the
    /// peer. At the latest after `bound`. Closing at once would fail what is in flight:
    /// QUIC discards what a closed connection has not yet delivered.
    pub(crate) fn close_when_settled(
        self: Arc<Self>,
        bound: Duration,
        code: quinn::VarInt,
        reason: &'static [u8],
    ) {
        tokio::spawn(async move {
            let settled = async {
                poll_until(|| {
                    self.is_closed()
                        || (self.asks_awaiting_replies() == 0 && self.host_asks_in_flight() == 0)
                })
                .await;
                tokio::time::sleep(CLOSE_LINGER).await;
            };
            let _ = tokio::time::timeout(bound, settled).await;
            self.close(code, reason);
        });
    }

    /// Resolves once the link is closed.
    pub(crate) async fn closed(&self) {
        let mut rx = self.closed_signal.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Closes the connection with `code` and fails what is in flight.
    pub(crate) fn close(&self, code: quinn::VarInt, reason: &[u8]) {
        self.conn.close(code, reason);
        self.mark_closed();
    }

    /// Marks the link closed: no new sends; asks in flight fail with `NodeDown`.
    fn mark_closed(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let lanes: Vec<Arc<Lane>> = self.lock_lanes().drain().map(|(_, lane)| lane).collect();
        let dropped: u64 = lanes.iter().map(|lane| lane.close()).sum();
        Counters::add(&self.counters.tells_dropped, dropped);
        self.control.close();
        let pending: Vec<ReplySender> = self
            .lock_pending()
            .drain()
            .map(|(_, ask)| ask.reply)
            .collect();
        Counters::add(&self.counters.asks_failed_node_down, pending.len() as u64);
        for tx in pending {
            let _ = tx.send(Err(AskError::NodeDown {
                node: self.peer.node.clone(),
            }));
        }
        self.closed_signal.send_replace(true);
    }

    fn lock_lanes(&self) -> MutexGuard<'_, HashMap<String, Arc<Lane>>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_pending(&self) -> MutexGuard<'_, HashMap<u64, InFlight>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lane to `target`, opening it on first use.
    ///
    /// Senders that send to one target over and over keep the lane (see `NameRoute`) rather
    /// than look it up per message; it stops taking frames when its stream or the link closes.
    pub(crate) fn lane(self: &Arc<Self>, target: &str) -> Result<Arc<Lane>, LinkSendError> {
        if self.is_closed() {
            return Err(LinkSendError::Closed);
        }
        let mut lanes = self.lock_lanes();
        if let Some(lane) = lanes.get(target).filter(|lane| !lane.is_closed()) {
            return Ok(Arc::clone(lane));
        }
        let id = self.next_lane.fetch_add(1, Ordering::Relaxed);
        let lane = Arc::new(Lane::new(id, LANE_CAPACITY, Arc::clone(&self.counters)));
        lanes.insert(target.to_string(), Arc::clone(&lane));
        drop(lanes);
        // Closed after the insert: mark_closed may have run before it and missed this lane.
        if self.is_closed() {
            lane.close();
            return Err(LinkSendError::Closed);
        }
        tokio::spawn(open_lane(
            Arc::clone(self),
            Arc::clone(&lane),
            target.to_string(),
        ));
        Ok(lane)
    }

    /// Forgets `lane` (its stream is gone), so the next send to its target opens a new one.
    fn drop_lane(&self, target: &str, lane: &Arc<Lane>) {
        let mut lanes = self.lock_lanes();
        if lanes.get(target).is_some_and(|l| Arc::ptr_eq(l, lane)) {
            lanes.remove(target);
        }
    }

    /// The stream of `lane` is gone while the link lives on: no reply can come back on it.
    /// Closes the lane (a later send opens a new one) and fails the asks sent on it with
    /// `Unreachable` at once, rather than at their time-outs. They may have been handled.
    fn fail_lane(&self, lane: &Lane) {
        if self.is_closed() || self.conn.close_reason().is_some() {
            // The connection is gone: the link fails every ask with `NodeDown`.
            return;
        }
        Counters::add(&self.counters.tells_dropped, lane.close());
        let lost: Vec<ReplySender> = {
            let mut pending = self.lock_pending();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, ask)| ask.lane == lane.id)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| pending.remove(id))
                .map(|ask| ask.reply)
                .collect()
        };
        if !lost.is_empty() {
            tracing::info!(peer = %self.peer.node, asks = lost.len(), "a lane's stream ended with asks unanswered; they fail");
        }
        for reply in lost {
            let _ = reply.send(Err(AskError::Unreachable {
                node: self.peer.node.clone(),
            }));
        }
    }

    /// Queues a tell of an encoded body to `target`, waiting for room.
    pub(crate) async fn tell(
        self: &Arc<Self>,
        target: &str,
        tag: &'static str,
        body: Bytes,
    ) -> Result<(), LinkSendError> {
        let frame = FrameRef {
            kind: FrameKind::Tell,
            correlation_id: 0,
            target: Some(TargetRef::Name(target)),
            tag,
            trace: current_trace(),
            body: &body,
        };
        let lane = self.lane(target)?;
        match lane
            .push_with(true, |dst, _| encode_frame_ref(&frame, dst))
            .await
        {
            Ok(()) => Ok(()),
            Err(PushError::Encode(e)) => {
                tracing::error!(peer = %self.peer.node, error = %e, "frame not encodable; dropped");
                Err(LinkSendError::Closed)
            }
            Err(_) => Err(LinkSendError::Closed),
        }
    }

    /// Registers an ask about to be sent on `lane` of this link: its correlation id and the
    /// receiver of its reply. The caller queues the ask's frame on that lane. Dropping the
    /// returned [`PendingAsk`] forgets the ask.
    pub(crate) fn begin_ask(
        self: &Arc<Self>,
        lane: &Arc<Lane>,
    ) -> Result<PendingAsk, LinkSendError> {
        let id = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.lock_pending();
            if pending.len() >= self.max_asks_in_flight {
                return Err(LinkSendError::Overloaded);
            }
            pending.insert(
                id,
                InFlight {
                    reply: tx,
                    lane: lane.id,
                },
            );
        }
        let guard = PendingAsk {
            link: Arc::clone(self),
            lane: Arc::clone(lane),
            id,
            rx,
            waited: false,
        };
        // Closed after the insert: mark_closed may have run before it and missed this entry.
        if self.is_closed() {
            return Err(LinkSendError::Closed);
        }
        Ok(guard)
    }

    /// Sends this node's registry (an encoded announcement) to the peer, replacing any
    /// announcement not yet sent: each one states the whole registry, so only the newest
    /// counts, and a burst of changes cannot fill the control stream with stale ones.
    pub(crate) fn announce(&self, registry: Bytes) {
        self.announcing.send_modify(|a| {
            a.registry = Some(registry);
            a.version += 1;
        });
    }

    /// Tells the peer this node is leaving, after the registry announced last; resolves once
    /// that is queued on the control stream (or the link closed), so that control frames sent
    /// afterwards follow it.
    pub(crate) async fn announce_leaving(&self) {
        self.announcing.send_modify(|a| a.leaving = true);
        let mut queued = self.leaving_queued.subscribe();
        tokio::select! {
            _ = queued.wait_for(|q| *q) => {}
            () = self.closed() => {}
        }
    }

    /// Sends a control frame to the peer if the control stream has room now.
    pub(crate) fn send_control(&self, frame: Frame) -> Result<(), LinkSendError> {
        match self
            .control
            .try_push(false, |dst, _| encode_frame(&frame, dst))
        {
            Ok(()) => Ok(()),
            Err(PushError::Full) => {
                tracing::debug!(peer = %self.peer.node, "control stream full; control frame dropped");
                Err(LinkSendError::Full)
            }
            Err(PushError::Closed) => Err(LinkSendError::Closed),
            Err(PushError::Encode(e)) => {
                tracing::error!(peer = %self.peer.node, error = %e, "control frame not encodable; dropped");
                Err(LinkSendError::Closed)
            }
        }
    }

    fn complete(&self, id: u64, outcome: Result<Bytes, AskError>) {
        let ask = self.lock_pending().remove(&id);
        if let Some(ask) = ask {
            let _ = ask.reply.send(outcome);
        }
    }

    /// Disconnects a peer that broke the protocol: one log line, one close code.
    pub(crate) fn violation(&self, error: &CodecError) {
        let code = match error {
            CodecError::FrameTooLarge { .. } => close_code::FRAME_TOO_LARGE,
            _ => close_code::PROTOCOL_VIOLATION,
        };
        if !self.is_closed() {
            Counters::add(&self.counters.peers_disconnected_for_violations, 1);
            tracing::warn!(peer = %self.peer.node, %error, "disconnecting peer: protocol violation");
        }
        self.close(code, b"protocol violation");
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Permits bounding the asks from this peer that this node works on at once: a stream
    /// reader waits for one before dispatching the next ask, so a flood cannot grow tasks
    /// without bound.
    pub(crate) fn host_permits(&self) -> Arc<Semaphore> {
        Arc::clone(&self.host_permits)
    }
}

/// The trace context of the sending code, if it is traced, as it travels in a frame.
pub(crate) fn current_trace() -> Option<TraceContext> {
    actor_core::trace::TraceContext::current().map(|t| TraceContext {
        trace_id: t.trace_id(),
        span_id: t.span_id(),
        flags: u8::from(t.sampled()),
    })
}

/// An ask in flight: its reply receiver, the lane whose stream brings the reply, and the
/// entry it removes when dropped (time-out).
pub(crate) struct PendingAsk {
    link: Arc<PeerLink>,
    lane: Arc<Lane>,
    id: u64,
    rx: oneshot::Receiver<Result<Bytes, AskError>>,
    /// Whether this ask may have registered with the lane's stream as waiting.
    waited: bool,
}

impl PendingAsk {
    /// The ask's correlation id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The reply body, or why there is none. While waiting, reads the lane's stream when no
    /// other asker does (see [`crate::replies`]).
    pub(crate) async fn reply(mut self) -> Result<Bytes, AskError> {
        std::future::poll_fn(|cx| self.poll_reply(cx)).await
    }

    fn poll_reply(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<Bytes, AskError>> {
        // While this task reads the stream, it may complete its own ask. Were its waker
        // registered with the receiver then, the task would wake itself while running, and
        // Tokio reschedules such a task as if it had yielded, waking another worker to take
        // it: a parked thread woken per round trip. So the receiver holds a no-op waker while
        // the task reads, and the task's own only once nothing more can be read.
        let mut idle = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let Poll::Ready(outcome) = self.poll_rx(&mut idle) {
                return Poll::Ready(outcome);
            }
            let link = &self.link;
            // Reading may register this ask as waiting (see `Drop`).
            self.waited = true;
            let outcome = self.lane.replies.read(cx, self.id, |frame| {
                Counters::add(&link.counters.frames_received, 1);
                on_reply(link, frame);
            });
            match outcome {
                ReadOutcome::Progress => {}
                ReadOutcome::Pending => return self.poll_rx(cx),
                ReadOutcome::Ended => {
                    // Fails this ask and every other one on the lane (each learns it from
                    // its own reply), unless the connection is gone: then the link fails
                    // them with `NodeDown`.
                    self.link.fail_lane(&self.lane);
                }
                ReadOutcome::Violation(e) => self.link.violation(&e),
            }
        }
    }

    /// The reply, if it has come, registering `cx`'s waker for it otherwise.
    fn poll_rx(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<Bytes, AskError>> {
        Pin::new(&mut self.rx).poll(cx).map(|outcome| {
            outcome.unwrap_or_else(|_| {
                Err(AskError::NodeDown {
                    node: self.link.peer.node.clone(),
                })
            })
        })
    }
}

impl Drop for PendingAsk {
    fn drop(&mut self) {
        self.link.lock_pending().remove(&self.id);
        // This asker may have been the one the lane's stream wakes.
        if self.waited {
            self.lane.replies.stop_waiting(Some(self.id));
        }
    }
}

/// Completes the ask a frame that came back on a lane answers.
fn on_reply(link: &PeerLink, frame: Frame) {
    match frame.kind {
        FrameKind::Reply => link.complete(frame.correlation_id, Ok(frame.body)),
        FrameKind::Error => {
            let error = decode_body::<RemoteError>(&frame.body)
                .unwrap_or_else(|e| RemoteError::Internal(e.to_string()));
            link.complete(frame.correlation_id, Err(error.into_ask_error(link.node())));
        }
        other => link.violation(&CodecError::InvalidHeader {
            kind: other,
            reason: "only replies and errors come back on a lane",
        }),
    }
}

/// Opens the lane's stream, then writes its frames and reads its replies.
async fn open_lane(link: Arc<PeerLink>, lane: Arc<Lane>, target: String) {
    match link.conn.open_bi().await {
        Ok((send, recv)) => {
            lane.replies.attach(recv, link.max_frame_len);
            lane.attach(send);
            write_lane(Arc::clone(&link), Arc::clone(&lane)).await;
        }
        Err(e) => {
            tracing::debug!(peer = %link.peer.node, error = %e, "cannot open lane");
            link.fail_lane(&lane);
        }
    }
    // The stream is gone (or never was): let the next send to the target open a new lane,
    // and count what is still queued.
    link.drop_lane(&target, &lane);
    Counters::add(&link.counters.tells_dropped, lane.close());
}

/// Writes what is queued on `lane` to `send`, every queued frame in one write per wake-up,
/// until the lane closes or the stream fails.
async fn write_lane(link: Arc<PeerLink>, lane: Arc<Lane>) {
    let mut out = BytesMut::new();
    while let Some((batch, send)) = lane.take(&mut out).await {
        // Attached before the writer starts, and only the writer takes it out.
        let Some(mut send) = send else { break };
        let written = send.write_all(&out).await;
        lane.attach(send);
        if let Err(e) = written {
            tracing::debug!(peer = %link.peer.node, error = %e, "stream write failed");
            // Asks fail when the reply stream ends (or with the link); control frames are
            // not messages.
            Counters::add(&link.counters.tells_dropped, batch.tells);
            break;
        }
        link.counters.wrote(batch.frames, out.len());
        out.clear();
    }
}

/// Reads frames from `recv` and hands each to `on_frame`; a protocol violation disconnects
/// the peer.
pub(crate) async fn read_frames<F, Fut>(link: &Arc<PeerLink>, mut recv: RecvStream, mut on_frame: F)
where
    F: FnMut(Frame) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut decoder = FrameDecoder::new(link.max_frame_len);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    Counters::add(&link.counters.frames_received, 1);
                    on_frame(frame).await;
                }
                Ok(None) => break,
                Err(e) => {
                    link.violation(&e);
                    return;
                }
            }
        }
        match recv.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Reads control frames from the peer.
async fn read_control(link: Arc<PeerLink>, recv: RecvStream, inbox: Arc<dyn Inbox>) {
    let reader = Arc::clone(&link);
    read_frames(&reader, recv, |frame| {
        let (link, inbox) = (&link, &inbox);
        async move {
            if frame.kind == FrameKind::Control {
                inbox.control(link, frame);
            } else {
                link.violation(&CodecError::InvalidHeader {
                    kind: frame.kind,
                    reason: "only control frames go on the control stream",
                });
            }
        }
    })
    .await;
}

/// Accepts the streams the peer opens to send to actors here.
async fn accept_streams(link: Arc<PeerLink>, inbox: Arc<dyn Inbox>) {
    while let Ok((send, recv)) = link.conn.accept_bi().await {
        inbox.serve_stream(Arc::clone(&link), send, recv);
    }
}

/// Sends this node's announcements to the peer as they change: the newest registry, then
/// the leave. Waits for room on the control stream (a registry announced meanwhile replaces
/// the one waiting), so none is lost to a full stream.
async fn announce(link: Arc<PeerLink>) {
    let mut newest = link.announcing.subscribe();
    // What was announced before this task started counts too.
    newest.mark_changed();
    let (mut sent_version, mut sent_leaving) = (0, false);
    loop {
        tokio::select! {
            changed = newest.changed() => if changed.is_err() { return },
            () = link.closed() => return,
        }
        let now = newest.borrow_and_update().clone();
        let leave = now.leaving && !sent_leaving;
        let mut messages = Vec::new();
        if let Some(registry) = now.registry.filter(|_| now.version != sent_version) {
            messages.push(Control::Registry(registry.to_vec()));
        }
        if leave {
            messages.push(Control::Leaving);
        }
        for message in messages {
            let queued = link
                .control
                .push_with(false, |dst, _| {
                    Frame::control(&message).and_then(|f| encode_frame(&f, dst))
                })
                .await;
            match queued {
                Ok(()) => {}
                Err(PushError::Encode(e)) => {
                    tracing::error!(peer = %link.peer.node, error = %e, "announcement not encodable");
                }
                Err(_) => return,
            }
        }
        sent_version = now.version;
        if leave {
            sent_leaving = true;
            link.leaving_queued.send_replace(true);
        }
    }
}

/// Waits for the connection to end, then fails what was in flight on it.
async fn watch_close(link: Arc<PeerLink>) {
    let reason = link.conn.closed().await;
    tracing::info!(peer = %link.peer.node, %reason, "connection closed");
    link.mark_closed();
}
