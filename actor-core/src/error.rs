//! Typed errors for sends, asks, spawns and look-ups.
//!
//! Every error says what happened. Send errors hand the unsent message back, so
//! nothing a caller owned is lost when delivery is refused.

use std::fmt;
use std::time::Duration;

/// A boxed error, as returned by a failing [`Actor::started`](crate::Actor::started).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a `tell` or `try_tell` could not deliver a message. The message comes back.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SendError<M> {
    /// The mailbox is at capacity (only from `try_tell`).
    #[error("mailbox full")]
    Full(M),
    /// The actor has stopped for good; its mailbox is closed.
    #[error("actor stopped")]
    Stopped(M),
    /// The actor lives on a node that cannot be reached right now.
    #[error("node {node} unreachable")]
    Unreachable {
        /// The message that was not sent.
        msg: M,
        /// The node that could not be reached.
        node: String,
    },
    /// The message cannot cross nodes: the target does not accept it remotely.
    #[error("message {type_name} is not accepted remotely by this actor")]
    NotRemote {
        /// The message that was not sent.
        msg: M,
        /// The Rust type name of the message.
        type_name: &'static str,
    },
}

impl<M> SendError<M> {
    /// Takes the unsent message back.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m) | SendError::Stopped(m) => m,
            SendError::Unreachable { msg, .. } | SendError::NotRemote { msg, .. } => msg,
        }
    }

    /// Replaces the carried message, keeping the reason.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> SendError<N> {
        match self {
            SendError::Full(m) => SendError::Full(f(m)),
            SendError::Stopped(m) => SendError::Stopped(f(m)),
            SendError::Unreachable { msg, node } => SendError::Unreachable { msg: f(msg), node },
            SendError::NotRemote { msg, type_name } => SendError::NotRemote {
                msg: f(msg),
                type_name,
            },
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    // The message may not be Debug (and may hold secrets): show the reason only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::Stopped(_) => f.write_str("Stopped(..)"),
            SendError::Unreachable { node, .. } => write!(f, "Unreachable {{ node: {node:?} }}"),
            SendError::NotRemote { type_name, .. } => {
                write!(f, "NotRemote {{ type_name: {type_name:?} }}")
            }
        }
    }
}

/// The outcome of an `ask` that produced no reply. An ask has exactly one outcome:
/// the reply or one of these, and never later than its time-out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// No reply arrived within the time-out (the message may or may not have been handled).
    #[error("ask timed out after {0:?}")]
    Timeout(Duration),
    /// The actor has stopped for good, or stopped before handling this message.
    #[error("actor stopped")]
    Stopped,
    /// The mailbox was at capacity (only from `try_ask`).
    #[error("mailbox full")]
    Full,
    /// The handler panicked while handling this very message; the actor's supervisor decides
    /// what happens next.
    #[error("handler panicked{}", node_suffix(.node))]
    HandlerPanicked {
        /// The node that ran the handler, `None` when local.
        node: Option<String>,
    },
    /// The node hosting the actor went down while the ask was in flight.
    #[error("node {node} is down")]
    NodeDown {
        /// The node that went down.
        node: String,
    },
    /// The node hosting the actor cannot be reached, or the stream that carried the ask
    /// broke before its reply came back (the message may have been handled).
    #[error("node {node} unreachable")]
    Unreachable {
        /// The node that could not be reached.
        node: String,
    },
    /// The remote node serves no actor by that name.
    #[error("no actor named {name:?} on node {node}")]
    UnknownActor {
        /// The node asked.
        node: String,
        /// The name that was not found.
        name: String,
    },
    /// The remote actor does not accept this message tag.
    #[error("actor does not accept message {tag:?}")]
    UnknownMessage {
        /// The message's wire tag.
        tag: String,
    },
    /// The message cannot cross nodes: the target does not accept it remotely.
    #[error("message {type_name} is not accepted remotely by this actor")]
    NotRemote {
        /// The Rust type name of the message.
        type_name: &'static str,
    },
    /// The message or its reply could not be encoded or decoded.
    #[error("codec error: {0}")]
    Codec(String),
    /// The peer refused this node (wrong secret, cluster or certificate).
    #[error("unauthorized by node {node}")]
    Unauthorized {
        /// The node that refused.
        node: String,
    },
    /// The node hosting the actor is at a limit (asks in flight, remote mailbox full); retry
    /// later.
    #[error("node {node} is overloaded")]
    Overloaded {
        /// The node at its limit.
        node: String,
    },
    /// The remote node failed to answer for another reason it named.
    #[error("node {node}: {reason}")]
    Remote {
        /// The node that failed.
        node: String,
        /// What it said.
        reason: String,
    },
    /// A call policy refused the call without trying (circuit breaker open).
    #[error("circuit open for {target}")]
    CircuitOpen {
        /// The target whose breaker is open.
        target: String,
    },
}

fn node_suffix(node: &Option<String>) -> String {
    node.as_ref()
        .map(|n| format!(" on node {n}"))
        .unwrap_or_default()
}

impl<M> From<SendError<M>> for AskError {
    fn from(e: SendError<M>) -> Self {
        match e {
            SendError::Full(_) => AskError::Full,
            SendError::Stopped(_) => AskError::Stopped,
            SendError::Unreachable { node, .. } => AskError::Unreachable { node },
            SendError::NotRemote { type_name, .. } => AskError::NotRemote { type_name },
        }
    }
}

/// Why an actor or supervisor could not be spawned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// Another live actor already has this name.
    #[error("name {0:?} is already taken")]
    NameTaken(String),
    /// `started` returned an error or panicked; the actor was not started.
    #[error("actor {name} failed to start: {reason}")]
    StartFailed {
        /// The actor's name, or its id when anonymous.
        name: String,
        /// What `started` returned or the panic message.
        reason: String,
    },
    /// The system is shutting down and takes no new actors.
    #[error("actor system is shutting down")]
    ShuttingDown,
}

/// Why a look-up by name found no usable ref.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No live actor has this name.
    #[error("no actor named {0:?}")]
    NotFound(String),
    /// An actor has this name but is of another type.
    #[error("actor {name:?} is a {actual}, not a {expected}")]
    WrongType {
        /// The name looked up.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The type registered under the name.
        actual: &'static str,
    },
    /// The name did not appear before the time-out (from `lookup_wait`).
    #[error("no actor named {name:?} appeared within {timeout:?}")]
    Timeout {
        /// The name waited for.
        name: String,
        /// How long was waited.
        timeout: Duration,
    },
}
