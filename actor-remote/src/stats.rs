//! Counters of one node's transport, for tests, the benches report and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by all of a node's connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) tells_dropped: AtomicU64,
    pub(crate) asks_failed_node_down: AtomicU64,
    pub(crate) peers_disconnected_for_violations: AtomicU64,
    pub(crate) handshakes_refused: AtomicU64,
    pub(crate) membership_packets_sent: AtomicU64,
    pub(crate) membership_bytes_sent: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one write of `frames` frames, `bytes` bytes, to a stream.
    pub(crate) fn wrote(&self, frames: u64, bytes: usize) {
        Self::add(&self.frames_sent, frames);
        Self::add(&self.writes, 1);
        Self::add(&self.bytes_sent, bytes as u64);
    }

    pub(crate) fn snapshot(&self) -> NodeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeStats {
            frames_sent: get(&self.frames_sent),
            writes: get(&self.writes),
            bytes_sent: get(&self.bytes_sent),
            frames_received: get(&self.frames_received),
            tells_dropped: get(&self.tells_dropped),
            asks_failed_node_down: get(&self.asks_failed_node_down),
            peers_disconnected_for_violations: get(&self.peers_disconnected_for_violations),
            handshakes_refused: get(&self.handshakes_refused),
            membership_packets_sent: get(&self.membership_packets_sent),
            membership_bytes_sent: get(&self.membership_bytes_sent),
        }
    }
}

/// A snapshot of a node's transport counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Frames written to peers.
    pub frames_sent: u64,
    /// Stream writes those frames took (frames per write shows the batching).
    pub writes: u64,
    /// Bytes written to peers.
    pub bytes_sent: u64,
    /// Frames read from peers.
    pub frames_received: u64,
    /// Tells dropped because their peer was down or its connection was lost.
    pub tells_dropped: u64,
    /// Asks failed with `NodeDown` because their connection was lost.
    pub asks_failed_node_down: u64,
    /// Peers disconnected for sending garbage or oversized frames.
    pub peers_disconnected_for_violations: u64,
    /// Incoming connections refused at the handshake.
    pub handshakes_refused: u64,
    /// Membership (SWIM) packets sent to peers.
    pub membership_packets_sent: u64,
    /// Bytes of those packets.
    pub membership_bytes_sent: u64,
}

impl NodeStats {
    /// Mean frames per stream write (the writers' batching); 0 before any write.
    pub fn frames_per_write(&self) -> f64 {
        if self.writes == 0 {
            0.0
        } else {
            self.frames_sent as f64 / self.writes as f64
        }
    }
}
