//! In-process scenarios, each beside the raw Tokio code it is compared with.
//!
//! | scenario | ours | baseline |
//! | --- | --- | --- |
//! | [`tell`] | `n` tells to a [`Counter`], then one ask | bounded `mpsc` to a [`RawCounter`] task, then a `oneshot` round trip |
//! | [`tell`], [`TELL_SENDERS`](tell::TELL_SENDERS) senders | the same `n` tells split between concurrent tasks | the same sends on clones of one `mpsc` sender |
//! | [`ask`] | sequential asks to a [`Counter`] | `mpsc` request carrying a `oneshot` to a [`RawCounter`] |
//! | [`spawn`] | `system.spawn(Idle)` (returns once started) | `mpsc::channel` + `tokio::spawn` of a task owning the receiver |
//! | [`idle`] | RSS growth per live idle actor | RSS growth per live bare task holding its receiver |
//!
//! Both sides use the same mailbox capacity, [`CAPACITY`] unless stated otherwise, and the
//! scenario functions time only the part being compared: set-up and tear-down are outside.

pub mod ask;
mod counter;
pub mod idle;
pub mod spawn;
pub mod tell;

pub use counter::{Add, Counter, RawCommand, RawCounter, Total};

/// The mailbox capacity of every figure, ours and baseline: the framework's default (1024).
pub const CAPACITY: usize = actor_core::DEFAULT_MAILBOX_CAPACITY;
