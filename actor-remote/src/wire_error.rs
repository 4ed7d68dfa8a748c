//! [`RemoteError`]: why a hosting node could not answer an ask, as sent in an error frame.

use serde::{Deserialize, Serialize};

use actor_core::AskError;

/// The body of an error frame. Turned into the caller's [`AskError`], naming the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No actor is served under that name.
    #[error("no actor named {0:?}")]
    UnknownActor(String),
    /// The actor does not accept that tag.
    #[error("unknown message tag {0:?}")]
    UnknownMessage(String),
    /// The body did not decode as the tagged message.
    #[error("cannot decode message: {0}")]
    Decode(String),
    /// The reply could not be encoded.
    #[error("cannot encode reply: {0}")]
    Encode(String),
    /// The handler panicked on this message.
    #[error("handler panicked")]
    HandlerPanicked,
    /// The actor stopped before answering.
    #[error("actor stopped")]
    Stopped,
    /// The actor did not answer within the hosting node's ask time-out.
    #[error("actor did not answer in time")]
    Timeout,
    /// The hosting node is at a limit.
    #[error("overloaded")]
    Overloaded,
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RemoteError {
    /// The caller's view of this error, from node `node`.
    pub fn into_ask_error(self, node: &str) -> AskError {
        let node = node.to_string();
        match self {
            RemoteError::UnknownActor(name) => AskError::UnknownActor { node, name },
            RemoteError::UnknownMessage(tag) => AskError::UnknownMessage { tag },
            RemoteError::Decode(e) | RemoteError::Encode(e) => AskError::Codec(e),
            RemoteError::HandlerPanicked => AskError::HandlerPanicked { node: Some(node) },
            RemoteError::Stopped => AskError::Stopped,
            RemoteError::Overloaded => AskError::Overloaded { node },
            RemoteError::Timeout => AskError::Remote {
                node,
                reason: "actor did not answer in time".to_string(),
            },
            RemoteError::Internal(reason) => AskError::Remote { node, reason },
        }
    }
}
