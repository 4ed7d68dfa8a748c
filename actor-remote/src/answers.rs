//! The serving side's answers: each ask a peer sent on a stream is answered on that stream
//! from the task that completes it, which is almost always the actor's own.
//!
//! An ask's pending reply is polled with a waker of its own ([`AnswerSlot`]) rather than by
//! the stream's reader: when the actor answers, the wake-up polls the reply at once, in the
//! actor's task, encodes the answer frame and writes it to the stream with a non-blocking
//! write. The stream's reader is not polled for an answer at all, as the asking side's reader
//! task is not ([`crate::replies`]), and a reply whose encoding panics fails its own ask
//! without taking the stream down. What the stream does not take at once (flow control)
//! stays queued in the [`ReplySink`] and the stream's reader writes it.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Wake, Waker};

use bytes::BytesMut;
use quinn::SendStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::codec::{Frame, encode_body, encode_frame};
use crate::connection::PeerLink;
use crate::lane::write_now;
use crate::message::PendingBytes;
use crate::stats::Counters;
use crate::wire_error::RemoteError;

struct SinkState {
    /// The stream, while nobody writes to it (the stream's reader has it out while it writes).
    send: Option<SendStream>,
    /// Answer frames encoded and not yet written.
    out: BytesMut,
    frames: u64,
    /// Permits of the asks whose answers are in `out`: released once written, so a node that
    /// drains its asks before leaving does not leave with an answer unwritten.
    permits: Vec<OwnedSemaphorePermit>,
    /// Asks taken and not answered yet.
    open: usize,
    /// The stream could not be written: answers are dropped.
    failed: bool,
    /// The peer finished sending: the stream's reader waits for the last answer to end.
    draining: bool,
}

impl SinkState {
    /// The stream cannot be written any more: what is queued, and every later answer, is
    /// dropped.
    fn fail(&mut self) {
        self.failed = true;
        self.out.clear();
        self.permits.clear();
    }
}

/// The sending half of a served stream, shared by the stream's reader and every answer on it.
pub(crate) struct ReplySink {
    state: Mutex<SinkState>,
    /// Wakes the stream's reader: answers are queued for it to write, or the last one is in.
    flush: Notify,
    link: Arc<PeerLink>,
}

impl ReplySink {
    pub(crate) fn new(send: SendStream, link: Arc<PeerLink>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(SinkState {
                send: Some(send),
                out: BytesMut::new(),
                frames: 0,
                permits: Vec::new(),
                open: 0,
                failed: false,
                draining: false,
            }),
            flush: Notify::new(),
            link,
        })
    }

    /// A guard that [closes](Self::close) the sink when the stream's reader ends, however it
    /// ends (returning, or dropped when its link goes).
    pub(crate) fn closing(self: &Arc<Self>) -> CloseOnDrop {
        CloseOnDrop(Arc::clone(self))
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts answering the ask `id` with `pending`: polled now, and then from whichever task
    /// wakes it, until it resolves and its answer is written (or queued).
    pub(crate) fn answer(
        self: &Arc<Self>,
        id: u64,
        pending: PendingBytes,
        permit: OwnedSemaphorePermit,
    ) {
        self.lock().open += 1;
        let slot = Arc::new(AnswerSlot {
            id,
            pending: Mutex::new(Some((pending, permit))),
            woken: AtomicBool::new(false),
            sink: Arc::clone(self),
        });
        slot.poll();
    }

    /// Queues the answer frame of a resolved ask and writes what is queued if nobody else is
    /// writing and the stream takes it without waiting; otherwise the stream's reader is woken
    /// to write it.
    fn complete(&self, frame: &Frame, permit: OwnedSemaphorePermit) {
        let mut s = self.lock();
        s.open = s.open.saturating_sub(1);
        if s.failed {
            drop(s);
            self.flush.notify_one();
            return;
        }
        match encode_frame(frame, &mut s.out) {
            Ok(()) => s.frames += 1,
            Err(e) => {
                tracing::error!(peer = %self.link.node(), error = %e, "reply not encodable; dropped");
            }
        }
        s.permits.push(permit);
        // The stream's reader is woken only when it has something to do: waking it after every
        // answer cost, measured, a task poll and an unpark of the other worker per ask.
        if !write_through(&mut s, self.link.counters()) || (s.open == 0 && s.draining) {
            drop(s);
            self.flush.notify_one();
        }
    }

    /// Closes the stream: the stream's reader has ended, so answers still to come are dropped
    /// (their asks fail on the asking side as the stream ends there).
    pub(crate) fn close(&self) {
        let mut s = self.lock();
        s.fail();
        // Dropping the sending half finishes the stream.
        s.send = None;
    }

    /// The stream's reader: the peer finished sending, so once every ask taken is answered
    /// (see [`is_idle`](Self::is_idle)) serving ends; the last answer wakes it.
    pub(crate) fn drain(&self) {
        self.lock().draining = true;
    }

    /// Whether every ask taken is answered and written.
    pub(crate) fn is_idle(&self) -> bool {
        let s = self.lock();
        s.open == 0 && (s.out.is_empty() || s.failed) && (s.send.is_some() || s.failed)
    }

    /// Resolves when answers are queued for the stream's reader to write (or the last one is
    /// in). Cancel-safe: it only waits.
    pub(crate) async fn wait_queued(&self) {
        self.flush.notified().await;
    }

    /// The stream's reader: writes what is queued. `false` once the stream cannot be written.
    /// Not to be cancelled (it holds the stream while it writes): await it to the end.
    pub(crate) async fn write_queued(&self) -> bool {
        let (mut send, out, frames, permits) = {
            let mut s = self.lock();
            if s.failed {
                return false;
            }
            if s.out.is_empty() {
                return true;
            }
            let Some(send) = s.send.take() else {
                return true;
            };
            let out = std::mem::take(&mut s.out);
            let frames = std::mem::take(&mut s.frames);
            (send, out, frames, std::mem::take(&mut s.permits))
        };
        let written = send.write_all(&out).await;
        let mut s = self.lock();
        s.send = Some(send);
        match written {
            Ok(()) => {
                self.link.counters().wrote(frames, out.len());
                drop(permits);
                if !s.out.is_empty() {
                    // Queued while the stream was out: written on the next turn.
                    drop(s);
                    self.flush.notify_one();
                }
                true
            }
            Err(e) => {
                tracing::debug!(peer = %self.link.node(), error = %e, "stream write failed");
                s.fail();
                false
            }
        }
    }
}

/// Closes a [`ReplySink`] when dropped.
pub(crate) struct CloseOnDrop(Arc<ReplySink>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Writes what is queued, if the stream is attached and takes all of it at once. Returns
/// whether all of it went.
fn write_through(s: &mut SinkState, counters: &Counters) -> bool {
    let Some(send) = s.send.as_mut() else {
        return false;
    };
    if !write_now(send, &mut s.out, s.frames, counters) {
        return false;
    }
    s.frames = 0;
    s.permits.clear();
    true
}

/// One ask being answered: its pending reply, polled by its own waker.
struct AnswerSlot {
    id: u64,
    pending: Mutex<Option<(PendingBytes, OwnedSemaphorePermit)>>,
    /// Woken while being polled (the poll runs again before it lets go).
    woken: AtomicBool,
    sink: Arc<ReplySink>,
}

impl AnswerSlot {
    /// Polls the pending reply, in the calling task; once resolved, answers it.
    fn poll(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        loop {
            // A wake that comes while another task polls is left to that poll, which looks
            // at `woken` again before and after it lets go.
            let mut slot = match self.pending.try_lock() {
                Ok(slot) => slot,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            while self.woken.swap(false, Ordering::AcqRel) {
                let Some((pending, _)) = slot.as_mut() else {
                    return;
                };
                let waker = Waker::from(Arc::clone(self));
                let mut cx = Context::from_waker(&waker);
                // A reply whose encoding panics (a user's `Serialize`) fails this ask alone;
                // the task that woke it (usually the actor's) is not the one to unwind.
                let polled =
                    std::panic::catch_unwind(AssertUnwindSafe(|| pending.as_mut().poll(&mut cx)));
                let reply = match polled {
                    Ok(Poll::Pending) => continue,
                    Ok(Poll::Ready(reply)) => reply,
                    Err(_) => Err(RemoteError::Encode("encoding the reply panicked".into())),
                };
                if let Some((_, permit)) = slot.take() {
                    drop(slot);
                    self.sink.complete(&answer(self.id, reply), permit);
                }
                return;
            }
            drop(slot);
            if !self.woken.load(Ordering::Acquire) {
                return;
            }
        }
    }
}

impl Wake for AnswerSlot {
    fn wake(self: Arc<Self>) {
        self.poll();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.poll();
    }
}

/// The frame answering the ask `id`.
fn answer(id: u64, reply: Result<bytes::Bytes, RemoteError>) -> Frame {
    match reply {
        Ok(body) => Frame::reply(id, body),
        Err(e) => {
            let body = encode_body(&e).unwrap_or_default();
            Frame::error(id, body)
        }
    }
}
