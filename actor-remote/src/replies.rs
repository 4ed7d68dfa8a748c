//! [`ReplyStream`]: the receiving half of a lane's stream, read by the askers themselves.
//!
//! Replies to the asks sent on a lane come back on the same stream. A reader task between
//! the connection and the asker would be one more task hop per round trip, and hops are
//! dear: Tokio runs at most three woken tasks in a row on one worker before it wakes
//! another worker to share the work, and that hand-off (a parked thread woken, the work
//! bouncing between two workers) costs more than the hop itself. So the askers read.
//!
//! An asker waiting for its reply that finds the stream free reads it: it decodes every frame
//! that has arrived, completes each reply through the link's table of asks in flight (its own
//! among them), and, when nothing more has arrived, leaves its waker with the stream (the
//! last asker to read is the one the stream wakes). Every waiting asker also registers with
//! the lane. An asker that stops waiting (answered, timed out or dropped) wakes the others,
//! so that one of them reads on while replies are still due; alone, it wakes nobody.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use quinn::RecvStream;

use crate::codec::{CodecError, Frame, FrameDecoder};

/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 16 * 1024;

struct Reader {
    recv: RecvStream,
    decoder: FrameDecoder,
    buf: BytesMut,
    chunk: Box<[u8]>,
}

/// What a read of the stream came to.
pub(crate) enum ReadOutcome {
    /// At least one frame was handled.
    Progress,
    /// Nothing more has arrived; the caller's task is woken when something does.
    Pending,
    /// The stream ended (finished, reset or failed): no reply comes on it any more.
    Ended,
    /// The peer sent something that is not a frame.
    Violation(CodecError),
}

/// The receiving half of one lane's stream.
#[derive(Default)]
pub(crate) struct ReplyStream {
    /// `None` until the stream is open, and again once it has ended.
    reader: Mutex<Option<Reader>>,
    /// The askers waiting for replies on this stream.
    waiting: Mutex<Vec<Waker>>,
}

impl ReplyStream {
    /// Hands over the opened stream, and wakes the askers already waiting for it.
    pub(crate) fn attach(&self, recv: RecvStream, max_frame_len: usize) {
        *lock(&self.reader) = Some(Reader {
            recv,
            decoder: FrameDecoder::new(max_frame_len),
            buf: BytesMut::new(),
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        });
        self.stop_waiting(None);
    }

    /// Reads what has arrived and hands each frame to `on_frame`, if no other asker is
    /// reading at this moment. On `Pending`, the caller's task is registered as waiting: it
    /// is woken when a reply comes (if it read the stream last), when its own reply is
    /// completed, or when an asker that may have read the stream stops waiting
    /// ([`stop_waiting`](Self::stop_waiting)).
    pub(crate) fn read(
        &self,
        cx: &mut Context<'_>,
        mut on_frame: impl FnMut(Frame),
    ) -> ReadOutcome {
        if let Some(mut reader) = self.try_lead() {
            let outcome = read_available(&mut reader, cx, &mut on_frame);
            if matches!(outcome, ReadOutcome::Pending) {
                // The stream holds this task's waker now; another reader may take it over.
                self.register(cx.waker());
            }
            return outcome;
        }
        self.register(cx.waker());
        // Whoever read last may have stopped waiting between the first look and the
        // registration: then this asker reads.
        match self.try_lead() {
            Some(mut reader) => read_available(&mut reader, cx, &mut on_frame),
            None => ReadOutcome::Pending,
        }
    }

    fn register(&self, waker: &Waker) {
        let mut waiting = lock(&self.waiting);
        if !waiting.iter().any(|w| w.will_wake(waker)) {
            waiting.push(waker.clone());
        }
    }

    /// The stream, if it is open and no other asker is reading it.
    fn try_lead(&self) -> Option<MutexGuard<'_, Option<Reader>>> {
        let guard = match self.reader.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        guard.is_some().then_some(guard)
    }

    /// Called by an asker that stops waiting (answered, timed out or dropped), with the
    /// waker it registered: the stream may hold that waker as its reader's, so every other
    /// waiting asker is woken and one of them reads on.
    pub(crate) fn stop_waiting(&self, own: Option<&Waker>) {
        let mut waiting = lock(&self.waiting);
        if let Some(own) = own {
            waiting.retain(|w| !w.will_wake(own));
        }
        if waiting.is_empty() {
            return;
        }
        let others = std::mem::take(&mut *waiting);
        drop(waiting);
        others.into_iter().for_each(Waker::wake);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Decodes the frames that have arrived; reads more only when there were none.
fn read_available(
    slot: &mut MutexGuard<'_, Option<Reader>>,
    cx: &mut Context<'_>,
    on_frame: &mut impl FnMut(Frame),
) -> ReadOutcome {
    let Some(reader) = slot.as_mut() else {
        return ReadOutcome::Ended;
    };
    loop {
        let mut progressed = false;
        loop {
            match reader.decoder.decode(&mut reader.buf) {
                Ok(Some(frame)) => {
                    on_frame(frame);
                    progressed = true;
                }
                Ok(None) => break,
                Err(e) => {
                    **slot = None;
                    return ReadOutcome::Violation(e);
                }
            }
        }
        if progressed {
            return ReadOutcome::Progress;
        }
        match reader.recv.poll_read(cx, &mut reader.chunk) {
            Poll::Ready(Ok(0) | Err(_)) => {
                **slot = None;
                return ReadOutcome::Ended;
            }
            Poll::Ready(Ok(n)) => reader.buf.extend_from_slice(&reader.chunk[..n]),
            Poll::Pending => return ReadOutcome::Pending,
        }
    }
}
