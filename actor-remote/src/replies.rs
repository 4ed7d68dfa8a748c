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
//! among them), and, when nothing more has arrived, leaves its waker with the stream: it is
//! the stream's reader, the one the stream wakes. Every waiting asker also registers with
//! the lane. When the reader stops waiting (answered, timed out or dropped), it wakes one
//! other waiting asker, which reads on while replies are still due; any other asker leaves
//! without waking anyone. So a reply costs one wake-up however many askers wait, and an
//! asker alone wakes nobody.

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
    /// The askers waiting for replies on this stream, and which of them reads it.
    waiting: Mutex<Waiting>,
}

/// The waiting askers, by the id of their ask: one task may wait for several asks.
#[derive(Default)]
struct Waiting {
    askers: Vec<(u64, Waker)>,
    /// The ask whose task's waker the stream holds (it read last and found nothing more),
    /// if known; `None` when nobody holds it, so that the next asker to leave hands over.
    reader: Option<u64>,
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
        ask: u64,
        mut on_frame: impl FnMut(Frame),
    ) -> ReadOutcome {
        if let Some(reader) = self.try_lead() {
            return self.lead(reader, cx, ask, &mut on_frame);
        }
        self.register(ask, cx.waker(), false);
        // Whoever read last may have stopped waiting between the first look and the
        // registration: then this asker reads.
        match self.try_lead() {
            Some(reader) => self.lead(reader, cx, ask, &mut on_frame),
            None => ReadOutcome::Pending,
        }
    }

    /// Reads the stream as its reader, the ask `ask`; on `Pending` the stream holds this
    /// task's waker, and that is recorded while `reader` is still held, so no later reader's
    /// record is overwritten.
    fn lead(
        &self,
        mut reader: MutexGuard<'_, Option<Reader>>,
        cx: &mut Context<'_>,
        ask: u64,
        on_frame: &mut impl FnMut(Frame),
    ) -> ReadOutcome {
        let outcome = read_available(&mut reader, cx, on_frame);
        if matches!(outcome, ReadOutcome::Pending) {
            self.register(ask, cx.waker(), true);
        }
        outcome
    }

    /// Registers the waiting ask `ask`; `reads`: the stream now holds its task's waker.
    fn register(&self, ask: u64, waker: &Waker, reads: bool) {
        let mut waiting = lock(&self.waiting);
        match waiting.askers.iter_mut().find(|(id, _)| *id == ask) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => *w = waker.clone(),
            None => waiting.askers.push((ask, waker.clone())),
        }
        if reads {
            waiting.reader = Some(ask);
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

    /// Called by the ask `ask` when it stops waiting (answered, timed out or dropped). If the
    /// stream may hold its task's waker (it was the reader, or nobody is known to be), one
    /// other waiting ask's task is woken to read on. `None`: the stream was just opened, and
    /// every waiting task is woken.
    pub(crate) fn stop_waiting(&self, ask: Option<u64>) {
        let mut waiting = lock(&self.waiting);
        let Some(ask) = ask else {
            waiting.reader = None;
            let all = std::mem::take(&mut waiting.askers);
            drop(waiting);
            all.into_iter().for_each(|(_, w)| w.wake());
            return;
        };
        waiting.askers.retain(|(id, _)| *id != ask);
        if waiting.reader.is_some_and(|reader| reader != ask) {
            return;
        }
        waiting.reader = None;
        let next = waiting.askers.last().map(|(_, w)| w.clone());
        drop(waiting);
        if let Some(next) = next {
            next.wake();
        }
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
