//! Trace context: one id for everything a request causes, across actors and nodes.
//!
//! A [`TraceContext`] is current while a traced future is polled: a request handler wrapped
//! with [`in_context`], or an actor handling a message that was sent from a traced context.
//! Every send copies the current context into the message (local envelopes and remote frames
//! alike), and the receiving handler runs with a child of it, its `handle` span carrying the
//! `trace_id`. So an order that crosses three nodes is one trace: filter the logs of all
//! nodes by its `trace_id`.
//!
//! ```
//! use actor_core::trace::{self, TraceContext};
//!
//! # #[tokio::main] async fn main() {
//! let root = TraceContext::new_root();
//! let seen = trace::in_context(root, async { TraceContext::current() }).await;
//! assert_eq!(seen.map(|c| c.trace_id()), Some(root.trace_id()));
//! assert_eq!(TraceContext::current(), None);
//! # }
//! ```

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static CURRENT: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

/// The position of the current work in a trace (W3C trace-context shaped).
///
/// The 128-bit trace id is kept as two halves so the context is 8-byte aligned: it rides in
/// every message and in every actor's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_hi: u64,
    trace_lo: u64,
    span_id: u64,
    sampled: bool,
}

impl TraceContext {
    /// A new trace, with a random id.
    pub fn new_root() -> Self {
        Self::from_parts(
            rand::random::<u128>().max(1),
            rand::random::<u64>().max(1),
            true,
        )
    }

    /// A context from its wire parts (for transports).
    pub fn from_parts(trace_id: u128, span_id: u64, sampled: bool) -> Self {
        Self {
            trace_hi: (trace_id >> 64) as u64,
            trace_lo: trace_id as u64,
            span_id,
            sampled,
        }
    }

    /// The whole trace's id.
    pub fn trace_id(&self) -> u128 {
        (u128::from(self.trace_hi) << 64) | u128::from(self.trace_lo)
    }

    /// The id of the span that is current.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled (recorded).
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            span_id: rand::random::<u64>().max(1),
            ..*self
        }
    }

    /// The context of the work being polled now, if it is traced.
    pub fn current() -> Option<TraceContext> {
        CURRENT.with(Cell::get)
    }

    /// The trace id as 32 hex digits, as logs show it.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}-{:016x}", self.trace_id(), self.span_id)
    }
}

/// Runs `fut` with `context` current on every poll.
pub fn in_context<F: Future>(context: TraceContext, fut: F) -> InContext<F> {
    InContext {
        context: Some(context),
        fut,
    }
}

pin_project_lite::pin_project! {
    /// A future with a trace context current while it is polled; see [`in_context`].
    #[derive(Debug)]
    pub struct InContext<F> {
        context: Option<TraceContext>,
        #[pin]
        fut: F,
    }
}

impl<F> InContext<F> {
    /// `fut` with `context` current on every poll, if there is one; without one, the
    /// thread's context is left as it is (none, between the polls of tasks).
    pub(crate) fn maybe(context: Option<TraceContext>, fut: F) -> Self {
        InContext { context, fut }
    }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = this.context.map(|c| Current::enter(Some(c)));
        this.fut.poll(cx)
    }
}

/// Makes `context` current until dropped, then restores what was current before.
pub(crate) struct Current(Option<TraceContext>);

impl Current {
    pub(crate) fn enter(context: Option<TraceContext>) -> Current {
        Current(CURRENT.with(|c| c.replace(context)))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}
