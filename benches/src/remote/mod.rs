//! Two-node scenarios over QUIC on loopback, each beside the raw quinn code it is compared with.
//!
//! | scenario | ours ([`ours`]) | baseline ([`raw`]) |
//! | --- | --- | --- |
//! | tell, one sender | `n` tells of a 64-byte [`Blob64`](ours::Blob64) from node A to a served actor on node B, then one ask for the count | `n` u32-length-prefixed 64-byte frames on one stream, buffered and flushed every [`FLUSH_AT`](raw::FLUSH_AT) bytes, then a count request answered by the server |
//! | tell, [`SENDERS`] senders | [`SENDERS`] tasks on node A tell the same actor (all on its one lane), then one ask for the count | [`SENDERS`] tasks, each with its own stream on the one connection, as above |
//! | ask round trip | sequential asks carrying 64 bytes, answered with the same 64 bytes | sequential 64-byte frames on one stream, each echoed by the server |
//!
//! Both sides run in this process on the same runtime ([`crate::runtime`]), use the same TLS
//! and QUIC settings (the baseline takes its configurations from
//! [`actor_remote::tls::NodeTls`] in shared-secret mode, as a node does), and talk over
//! 127.0.0.1. Connections and streams are set up once per figure, outside the timed part, and
//! reused by every round, as a node reuses its connection and its lane to an actor.
//!
//! Our frames are larger than the baseline's: the frame header carries the kind,
//! correlation id, target name and message tag (see [`actor_remote::codec`]), and the body is
//! bincode. That is the framework's cost and is counted.

pub mod ours;
pub mod raw;

use std::time::Duration;

/// Bytes of payload in every message, ours and baseline: 64.
pub const PAYLOAD_LEN: usize = 64;

/// Tells per round in the report: 100,000.
pub const TELL_MESSAGES: u64 = 100_000;

/// Sequential round trips per round in the report: 2,000.
pub const ASK_ROUND_TRIPS: u64 = 2_000;

/// Concurrent senders of the multi-sender figure: 8.
pub const SENDERS: usize = 8;

/// What one measured tell run moved, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TellRun {
    /// The timed part: every send, and the final count coming back.
    pub elapsed: Duration,
    /// Messages (frames) counted by the receiver.
    pub delivered: u64,
}

/// The payload both sides send: 64 bytes, different per message index.
pub fn payload(i: u64) -> [u8; PAYLOAD_LEN] {
    let mut bytes = [0u8; PAYLOAD_LEN];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&i.to_le_bytes());
    }
    bytes
}

fn check_delivered(delivered: u64, sent: u64) -> crate::BenchResult<()> {
    if delivered == sent {
        Ok(())
    } else {
        Err(format!("receiver counted {delivered} messages, {sent} were sent").into())
    }
}
