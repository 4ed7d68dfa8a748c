//! [`Lane`]: the send queue of one stream, held as the encoded bytes of its frames.
//!
//! Senders encode their frame straight into the lane's buffer, under its lock, so queuing a
//! message allocates nothing and copies its body once (serializing it in place). The stream's
//! writer swaps the whole buffer out for its spare one and writes it in one go: every frame
//! queued since the last write, in order. The bound is in bytes: a sender waits (or, with
//! `try_`, is refused) while the queued bytes reach the capacity. A frame goes in whenever
//! less than that is queued, whatever its size, so a big message is never refused here for
//! its size (the frame limit bounds it): a lane holds at most its capacity plus one frame.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use quinn::SendStream;
use tokio::sync::Notify;

use crate::codec::{CodecError, StreamHeaders};
use crate::replies::ReplyStream;
use crate::stats::Counters;

/// Queued bytes at which a lane stops taking frames until its writer catches up.
pub(crate) const LANE_CAPACITY: usize = 128 * 1024;

/// A writer's buffer larger than this after a big write is given back to the allocator.
const KEEP_CAPACITY: usize = 2 * LANE_CAPACITY;

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The lane holds its capacity in bytes (only from `try_push`).
    Full,
    /// The lane is closed: its stream or its connection is gone.
    Closed,
    /// The frame could not be encoded; nothing was queued.
    Encode(CodecError),
}

/// The frames a writer took in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) frames: u64,
    pub(crate) tells: u64,
}

struct Queued {
    buf: BytesMut,
    frames: u64,
    tells: u64,
    /// What the frames queued so far have stated on the stream, in stream order.
    headers: StreamHeaders,
    /// The stream, while nobody writes to it (the writer has it out while it writes).
    sink: Option<SendStream>,
}

/// Cuts a buffer back to `len` when dropped: dropped only when an encode unwinds.
struct Rollback<'a> {
    buf: &'a mut BytesMut,
    len: usize,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.len);
    }
}

/// The send queue of one stream.
pub(crate) struct Lane {
    /// Tells this lane apart from the link's other lanes, past and present.
    pub(crate) id: u64,
    queued: Mutex<Queued>,
    closed: AtomicBool,
    capacity: usize,
    /// Wakes the writer: frames were queued, or the lane closed.
    work: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
    /// The stream's receiving half, where the replies to asks sent on the lane come back.
    pub(crate) replies: ReplyStream,
    counters: Arc<Counters>,
}

impl Lane {
    pub(crate) fn new(id: u64, capacity: usize, counters: Arc<Counters>) -> Self {
        Self {
            id,
            queued: Mutex::new(Queued {
                buf: BytesMut::new(),
                frames: 0,
                tells: 0,
                headers: StreamHeaders::default(),
                sink: None,
            }),
            closed: AtomicBool::new(false),
            capacity,
            work: Notify::new(),
            room: Notify::new(),
            replies: ReplyStream::default(),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues the frame `encode` appends to the buffer, if there is room now. `encode` runs
    /// under the lane's lock, with the stream's header state, and must leave both as they were
    /// when it fails.
    pub(crate) fn try_push(
        &self,
        is_tell: bool,
        encode: impl FnOnce(&mut BytesMut, &mut StreamHeaders) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        let q = self.with_room(self.lock())?;
        self.push_locked(q, is_tell, encode)
    }

    /// As [`try_push`](Self::try_push), waiting for room first: `encode` runs once there
    /// is room.
    pub(crate) async fn push_with(
        &self,
        is_tell: bool,
        encode: impl FnOnce(&mut BytesMut, &mut StreamHeaders) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so room made in between is not missed.
            room.as_mut().enable();
            // A statement, so the lock is released before waiting.
            match self.with_room(self.lock()) {
                Ok(q) => return self.push_locked(q, is_tell, encode),
                Err(PushError::Full) => {}
                Err(e) => return Err(e),
            }
            room.await;
        }
    }

    /// The lock, if the lane is open and has room.
    fn with_room<'a>(
        &self,
        q: MutexGuard<'a, Queued>,
    ) -> Result<MutexGuard<'a, Queued>, PushError> {
        // Checked under the lock: `close` empties the buffer under it, so nothing queued
        // after the close is left behind uncounted.
        if self.is_closed() {
            Err(PushError::Closed)
        } else if q.buf.len() >= self.capacity {
            Err(PushError::Full)
        } else {
            Ok(q)
        }
    }

    /// Appends one frame under the lock, then wakes the writer if it may be waiting.
    fn push_locked(
        &self,
        mut q: MutexGuard<'_, Queued>,
        is_tell: bool,
        encode: impl FnOnce(&mut BytesMut, &mut StreamHeaders) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        let was_empty = q.buf.is_empty();
        let queued = &mut *q;
        // A panic in `encode` (a user's `Serialize`) must not leave half a frame queued: the
        // peer would take the rest of the stream for garbage. The lock ignores poisoning, so
        // this is what keeps the buffer whole.
        let rollback = Rollback {
            len: queued.buf.len(),
            buf: &mut queued.buf,
        };
        encode(rollback.buf, &mut queued.headers).map_err(PushError::Encode)?;
        std::mem::forget(rollback);
        q.frames += 1;
        q.tells += u64::from(is_tell);
        if was_empty && !is_tell && write_through(&mut q, &self.counters) {
            return Ok(());
        }
        drop(q);
        // A writer that found the buffer empty waits for this; one that has not taken the
        // last batch yet will take this frame with it.
        if was_empty {
            self.work.notify_one();
        }
        Ok(())
    }

    /// Hands the stream to the lane: once opened, and back from the writer after each write.
    pub(crate) fn attach(&self, sink: SendStream) {
        self.lock().sink = Some(sink);
    }

    /// The writer's side: waits for queued frames and swaps them into `out` (which must be
    /// empty), with the stream to write them to (if one is attached), or returns `None` once
    /// the lane is closed.
    /// The writer gives the stream back with [`attach`](Self::attach).
    pub(crate) async fn take(&self, out: &mut BytesMut) -> Option<(Batch, Option<SendStream>)> {
        if out.capacity() > KEEP_CAPACITY {
            *out = BytesMut::new();
        }
        loop {
            {
                let mut q = self.lock();
                if self.is_closed() {
                    return None;
                }
                if !q.buf.is_empty() {
                    let sink = q.sink.take();
                    std::mem::swap(&mut q.buf, out);
                    let batch = Batch {
                        frames: std::mem::take(&mut q.frames),
                        tells: std::mem::take(&mut q.tells),
                    };
                    drop(q);
                    self.room.notify_waiters();
                    return Some((batch, sink));
                }
            }
            self.work.notified().await;
        }
    }

    /// Closes the lane: no more frames are taken, and what is queued is dropped. Returns the
    /// number of tells dropped.
    pub(crate) fn close(&self) -> u64 {
        let mut q = self.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return 0;
        }
        let tells = q.tells;
        q.buf = BytesMut::new();
        q.frames = 0;
        q.tells = 0;
        drop(q);
        self.work.notify_one();
        self.room.notify_waiters();
        tells
    }
}

/// Writes the one frame queued to the stream at once, if nobody is writing to it and it
/// takes all of it without waiting: an ask then goes out from the asker's task, without
/// waking the writer (one task hop less per round trip, see [`crate::replies`]). Whatever
/// is not written stays queued for the writer. Returns whether all of it went.
fn write_through(q: &mut Queued, counters: &Counters) -> bool {
    let Some(sink) = q.sink.as_mut() else {
        return false;
    };
    if !write_now(sink, &mut q.buf, q.frames, counters) {
        return false;
    }
    q.frames = 0;
    q.tells = 0;
    true
}

/// Writes `buf` (holding `frames` frames) to `send` as far as the stream takes it without
/// waiting, and counts what went. No task is woken when the stream has room again: whoever
/// writes the rest waits for that. Returns whether all of it went (then `buf` is empty and
/// the write is counted whole); otherwise what went is taken out of `buf`.
pub(crate) fn write_now(
    send: &mut SendStream,
    buf: &mut BytesMut,
    frames: u64,
    counters: &Counters,
) -> bool {
    let len = buf.len();
    let mut cx = Context::from_waker(Waker::noop());
    while !buf.is_empty() {
        match Pin::new(&mut *send).poll_write(&mut cx, buf) {
            Poll::Ready(Ok(n)) if n > 0 => buf.advance(n),
            _ => {
                Counters::add(&counters.bytes_sent, (len - buf.len()) as u64);
                return false;
            }
        }
    }
    counters.wrote(frames, len);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn push_bytes(lane: &Lane, bytes: &[u8]) -> Result<(), PushError> {
        lane.try_push(true, |dst, _| {
            dst.extend_from_slice(bytes);
            Ok(())
        })
    }

    /// What the writer takes next: the batch and its bytes.
    async fn take_batch(lane: &Lane) -> (Batch, BytesMut) {
        let mut out = BytesMut::new();
        let (batch, _) = lane.take(&mut out).await.expect("open");
        (batch, out)
    }

    /// A tell of `bytes` that waits for room, in a task of its own.
    fn spawn_push(
        lane: &Arc<Lane>,
        bytes: &'static [u8],
    ) -> tokio::task::JoinHandle<Result<(), PushError>> {
        let lane = Arc::clone(lane);
        tokio::spawn(async move {
            lane.push_with(true, |dst, _| {
                dst.extend_from_slice(bytes);
                Ok(())
            })
            .await
        })
    }

    #[tokio::test]
    async fn the_writer_takes_every_queued_frame_in_order_in_one_batch() {
        let lane = Lane::new(0, 1024, Arc::default());
        for frame in [&b"one"[..], b"two", b"three"] {
            push_bytes(&lane, frame).expect("room");
        }
        let (batch, out) = take_batch(&lane).await;
        assert_eq!(
            batch,
            Batch {
                frames: 3,
                tells: 3
            }
        );
        assert_eq!(&out[..], b"onetwothree");
    }

    #[tokio::test]
    async fn a_full_lane_refuses_try_push_and_a_waiting_push_goes_in_once_the_writer_took_the_rest()
    {
        let lane = Arc::new(Lane::new(0, 8, Arc::default()));
        push_bytes(&lane, b"12345678").expect("room");
        assert!(matches!(push_bytes(&lane, b"9"), Err(PushError::Full)));
        let waiting = spawn_push(&lane, b"9");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "push waits for room");
        let (_, out) = take_batch(&lane).await;
        assert_eq!(&out[..], b"12345678");
        let pushed = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(pushed, Ok(Ok(Ok(())))));
        let (_, out) = take_batch(&lane).await;
        assert_eq!(&out[..], b"9");
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_capacity_goes_into_an_empty_lane() {
        let lane = Lane::new(0, 8, Arc::default());
        push_bytes(&lane, &[0; 100]).expect("an empty lane takes it");
    }

    #[tokio::test]
    async fn a_failed_encode_queues_nothing() {
        let lane = Lane::new(0, 1024, Arc::default());
        push_bytes(&lane, b"kept").expect("room");
        let failed = lane.try_push(false, |_, _| Err(CodecError::TrailingBytes { extra: 1 }));
        assert!(matches!(failed, Err(PushError::Encode(_))));
        let (batch, _) = take_batch(&lane).await;
        assert_eq!(
            batch,
            Batch {
                frames: 1,
                tells: 1
            }
        );
    }

    #[tokio::test]
    async fn an_encode_that_panics_leaves_no_part_of_its_frame_queued() {
        let lane = Lane::new(0, 1024, Arc::default());
        push_bytes(&lane, b"kept").expect("room");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = lane.try_push(true, |dst, _| {
                dst.extend_from_slice(b"half a fra");
                panic!("Serialize panicked");
            });
        }));
        assert!(panicked.is_err());
        push_bytes(&lane, b"next").expect("the lane still works");
        let (batch, out) = take_batch(&lane).await;
        assert_eq!(&out[..], b"keptnext");
        assert_eq!(
            batch,
            Batch {
                frames: 2,
                tells: 2
            }
        );
    }

    #[tokio::test]
    async fn closing_counts_the_queued_tells_and_ends_the_writer_and_the_waiting_senders() {
        let lane = Arc::new(Lane::new(0, 4, Arc::default()));
        push_bytes(&lane, b"full").expect("room");
        lane.try_push(false, |dst, _| {
            dst.extend_from_slice(b"ask");
            Ok(())
        })
        .expect_err("full");
        let waiting = spawn_push(&lane, b"x");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(lane.close(), 1);
        assert_eq!(lane.close(), 0, "closing twice counts once");
        let pushed = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(pushed, Ok(Ok(Err(PushError::Closed)))));
        assert!(lane.take(&mut BytesMut::new()).await.is_none());
        assert!(matches!(push_bytes(&lane, b"late"), Err(PushError::Closed)));
    }
}
