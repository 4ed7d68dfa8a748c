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
//! A lane has a bounded queue in front of its writer; `tell` waits for room, `try_tell` says
//! `Full`. The writer drains every queued frame into one write per wake-up (batching). On the
//! receiving side a lane's reader waits for the target mailbox to have room before reading on,
//! so QUIC flow control carries the back-pressure to the sender. Nothing is queued without a
//! bound.
//!
//! # Failure
//! When the connection is lost, every ask in flight on it fails at once with `NodeDown`, and
//! tells still queued are dropped and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actor_core::AskError;
use bytes::{Bytes, BytesMut};
use quinn::{Connection, RecvStream, SendStream};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::auth::PeerIdentity;
use crate::codec::{
    CodecError, Frame, FrameDecoder, FrameKind, FrameRef, TargetRef, TraceContext, decode_body,
    encode_frame, encode_frame_ref,
};
use crate::handshake::close_code;
use crate::stats::Counters;
use crate::wire_error::RemoteError;

/// Frames queued per lane before `tell` waits.
const LANE_CAPACITY: usize = 1024;
/// A writer stops adding frames to one write past this many bytes.
const MAX_BATCH_BYTES: usize = 256 * 1024;

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

/// A tell or ask queued on a lane. The lane knows its target and the tag is static, so queuing
/// one copies no strings; the lane's writer puts the whole header on the wire.
#[derive(Debug)]
pub(crate) struct LaneFrame {
    /// 0 for a tell, the ask's id otherwise.
    correlation_id: u64,
    tag: &'static str,
    trace: Option<TraceContext>,
    body: Bytes,
}

impl LaneFrame {
    /// A tell carrying the trace context of the sending code, if it is traced.
    pub(crate) fn tell(tag: &'static str, body: Bytes) -> Self {
        LaneFrame {
            correlation_id: 0,
            tag,
            trace: current_trace(),
            body,
        }
    }

    fn ask(correlation_id: u64, tag: &'static str, body: Bytes) -> Self {
        LaneFrame {
            correlation_id,
            tag,
            trace: current_trace(),
            body,
        }
    }
}

/// What a writer task puts on its stream.
pub(crate) trait Outgoing: Send + 'static {
    /// Appends the frame to `dst`; `lane_target` is the target of the lane it is written on.
    fn encode(&self, lane_target: &str, dst: &mut BytesMut) -> Result<(), CodecError>;
    /// Whether dropping it unsent counts as a dropped tell.
    fn is_tell(&self) -> bool;
}

impl Outgoing for Frame {
    fn encode(&self, _lane_target: &str, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(self, dst)
    }
    fn is_tell(&self) -> bool {
        self.kind == FrameKind::Tell
    }
}

impl Outgoing for LaneFrame {
    fn encode(&self, lane_target: &str, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame_ref(
            &FrameRef {
                kind: if self.is_tell() {
                    FrameKind::Tell
                } else {
                    FrameKind::Ask
                },
                correlation_id: self.correlation_id,
                target: Some(TargetRef::Name(lane_target)),
                tag: self.tag,
                trace: self.trace,
                body: &self.body,
            },
            dst,
        )
    }
    fn is_tell(&self) -> bool {
        self.correlation_id == 0
    }
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

/// The queue of one lane.
pub(crate) type LaneSender = mpsc::Sender<LaneFrame>;

/// An authenticated connection to one peer.
pub(crate) struct PeerLink {
    pub(crate) peer: PeerIdentity,
    pub(crate) conn: Connection,
    /// Whether this node dialed (decides simultaneous dials).
    pub(crate) dialed_by_us: bool,
    max_frame_len: usize,
    max_asks_in_flight: usize,
    closed: AtomicBool,
    lanes: Mutex<HashMap<String, LaneSender>>,
    pending: Mutex<HashMap<u64, ReplySender>>,
    next_correlation: AtomicU64,
    control: mpsc::Sender<Frame>,
    counters: Arc<Counters>,
    /// Fires when the link is closed; the reconnect logic waits on it.
    closed_signal: tokio::sync::watch::Sender<bool>,
    /// Bounds the asks from this peer being worked on here at once.
    host_permits: Arc<Semaphore>,
    /// Set once the peer's first registry announcement has arrived.
    announced: tokio::sync::watch::Sender<bool>,
}

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
    control_rx: mpsc::Receiver<Frame>,
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
            control_rx,
            inbox,
        } = self;
        tokio::spawn(write_frames(
            Arc::clone(&link),
            control_send,
            control_rx,
            String::new(),
        ));
        tokio::spawn(read_control(
            Arc::clone(&link),
            control_recv,
            Arc::clone(&inbox),
        ));
        tokio::spawn(accept_streams(Arc::clone(&link), inbox));
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
        let (control_tx, control_rx) = mpsc::channel(LANE_CAPACITY);
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
            control: control_tx,
            counters,
            closed_signal: tokio::sync::watch::Sender::new(false),
            host_permits: Arc::new(Semaphore::new(limits.max_asks_in_flight)),
            announced: tokio::sync::watch::Sender::new(false),
        });
        let tasks = LinkTasks {
            link: Arc::clone(&link),
            control_send: handshake.control_send,
            control_recv: handshake.control_recv,
            control_rx,
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
        self.lock_lanes().clear();
        let pending: Vec<ReplySender> = self.lock_pending().drain().map(|(_, tx)| tx).collect();
        Counters::add(&self.counters.asks_failed_node_down, pending.len() as u64);
        for tx in pending {
            let _ = tx.send(Err(AskError::NodeDown {
                node: self.peer.node.clone(),
            }));
        }
        self.closed_signal.send_replace(true);
    }

    fn lock_lanes(&self) -> MutexGuard<'_, HashMap<String, LaneSender>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_pending(&self) -> MutexGuard<'_, HashMap<u64, ReplySender>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The queue of the lane to `target`, opening the lane on first use.
    ///
    /// Senders that send to one target over and over keep the queue (see `NameRoute`) rather
    /// than look it up per message; it stops taking frames when the link closes.
    pub(crate) fn lane(self: &Arc<Self>, target: &str) -> Result<LaneSender, LinkSendError> {
        if self.is_closed() {
            return Err(LinkSendError::Closed);
        }
        let mut lanes = self.lock_lanes();
        if let Some(tx) = lanes.get(target) {
            return Ok(tx.clone());
        }
        let (tx, rx) = mpsc::channel(LANE_CAPACITY);
        lanes.insert(target.to_string(), tx.clone());
        drop(lanes);
        tokio::spawn(open_lane(Arc::clone(self), rx, target.to_string()));
        Ok(tx)
    }

    /// Queues a tell to `target`, waiting for room.
    pub(crate) async fn tell(
        self: &Arc<Self>,
        target: &str,
        tag: &'static str,
        body: Bytes,
    ) -> Result<(), LinkSendError> {
        let frame = LaneFrame::tell(tag, body);
        self.lane(target)?
            .send(frame)
            .await
            .map_err(|_| LinkSendError::Closed)
    }

    /// Queues an ask on `lane` (a lane of this link; waiting for room) and returns the
    /// receiver of its reply body. Dropping the returned [`PendingAsk`] forgets the ask.
    pub(crate) async fn send_ask(
        self: &Arc<Self>,
        lane: &LaneSender,
        tag: &'static str,
        body: Bytes,
    ) -> Result<PendingAsk, LinkSendError> {
        let id = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.lock_pending();
            if pending.len() >= self.max_asks_in_flight {
                return Err(LinkSendError::Overloaded);
            }
            pending.insert(id, tx);
        }
        let guard = PendingAsk {
            link: Arc::clone(self),
            id,
            rx,
        };
        // Closed after the insert: mark_closed may have run before it and missed this entry.
        if self.is_closed() {
            return Err(LinkSendError::Closed);
        }
        let frame = LaneFrame::ask(id, tag, body);
        match lane.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(frame)) => {
                lane.send(frame).await.map_err(|_| LinkSendError::Closed)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(LinkSendError::Closed),
        }
        Ok(guard)
    }

    /// Sends a control frame to the peer.
    pub(crate) fn send_control(&self, frame: Frame) -> Result<(), LinkSendError> {
        self.control.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LinkSendError::Full,
            mpsc::error::TrySendError::Closed(_) => LinkSendError::Closed,
        })
    }

    fn complete(&self, id: u64, outcome: Result<Bytes, AskError>) {
        let tx = self.lock_pending().remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(outcome);
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
fn current_trace() -> Option<TraceContext> {
    actor_core::trace::TraceContext::current().map(|t| TraceContext {
        trace_id: t.trace_id(),
        span_id: t.span_id(),
        flags: u8::from(t.sampled()),
    })
}

/// An ask in flight: its reply receiver, and the entry it removes when dropped (time-out).
pub(crate) struct PendingAsk {
    link: Arc<PeerLink>,
    id: u64,
    rx: oneshot::Receiver<Result<Bytes, AskError>>,
}

impl PendingAsk {
    /// The reply body, or why there is none.
    pub(crate) async fn reply(mut self) -> Result<Bytes, AskError> {
        let node = self.link.peer.node.clone();
        (&mut self.rx)
            .await
            .unwrap_or(Err(AskError::NodeDown { node }))
    }
}

impl Drop for PendingAsk {
    fn drop(&mut self) {
        self.link.lock_pending().remove(&self.id);
    }
}

/// Opens the lane's stream, then writes its frames and reads its replies.
async fn open_lane(link: Arc<PeerLink>, rx: mpsc::Receiver<LaneFrame>, target: String) {
    match link.conn.open_bi().await {
        Ok((send, recv)) => {
            tokio::spawn(read_replies(Arc::clone(&link), recv));
            write_frames(link, send, rx, target).await;
        }
        Err(e) => {
            tracing::debug!(peer = %link.peer.node, error = %e, "cannot open lane");
            drop_queued(&link, rx);
        }
    }
}

/// Drains `rx` into `send`, every queued frame in one write per wake-up.
pub(crate) async fn write_frames<T: Outgoing>(
    link: Arc<PeerLink>,
    mut send: SendStream,
    mut rx: mpsc::Receiver<T>,
    lane_target: String,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        // The link holds the control queue's sender itself: stop on close, not on hang-up.
        let first = tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
            () = link.closed() => break,
        };
        buf.clear();
        let (mut frames, mut tells) = (0u64, 0u64);
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            match frame.encode(&lane_target, &mut buf) {
                Ok(()) => {
                    frames += 1;
                    tells += u64::from(frame.is_tell());
                }
                Err(e) => {
                    tracing::error!(peer = %link.peer.node, error = %e, "frame not encodable; dropped")
                }
            }
            if buf.len() < MAX_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = send.write_all(&buf).await {
            tracing::debug!(peer = %link.peer.node, error = %e, "stream write failed");
            // Asks fail on their own (NodeDown); control frames are not messages.
            Counters::add(&link.counters.tells_dropped, tells);
            break;
        }
        let c = &link.counters;
        Counters::add(&c.frames_sent, frames);
        Counters::add(&c.writes, 1);
        Counters::add(&c.bytes_sent, buf.len() as u64);
    }
    drop_queued(&link, rx);
}

/// Counts (and drops) what is still queued on a lane whose stream is gone.
fn drop_queued<T: Outgoing>(link: &PeerLink, mut rx: mpsc::Receiver<T>) {
    rx.close();
    let mut tells = 0;
    while let Ok(frame) = rx.try_recv() {
        if frame.is_tell() {
            tells += 1;
        }
    }
    Counters::add(&link.counters.tells_dropped, tells);
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

/// Reads the replies that come back on a lane.
async fn read_replies(link: Arc<PeerLink>, recv: RecvStream) {
    let reader = Arc::clone(&link);
    read_frames(&reader, recv, |frame| {
        let link = &link;
        async move {
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
    })
    .await;
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

/// Waits for the connection to end, then fails what was in flight on it.
async fn watch_close(link: Arc<PeerLink>) {
    let reason = link.conn.closed().await;
    tracing::info!(peer = %link.peer.node, %reason, "connection closed");
    link.mark_closed();
}
