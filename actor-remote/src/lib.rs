//! Remote actors: the pieces that carry messages between nodes.
//!
//! The building blocks here are pure and I/O-free, so each can be tested on its own; the node,
//! its connections and the router are thin drivers around them.
//!
//! - [`codec`]: the wire frame format and message-body serialization.
//! - [`auth`]: the shared-secret handshake proof, bound to one TLS connection.
//! - [`tls`]: rustls and quinn configuration for both authentication modes.
//! - [`config`]: the node configuration file.

pub mod auth;
mod cluster;
pub mod codec;
pub mod config;
mod connection;
mod dispatch;
pub mod handshake;
mod membership;
mod message;
mod node;
mod peers;
mod route;
mod stats;
pub mod tls;
mod wire_error;

pub use handshake::ConnectError;
pub use membership::{Member, MemberEvent, MemberState};
pub use message::{Accepts, RemoteActor, RemoteMessage};
pub use node::{MEMBER_EVENTS, Node, NodeError, PeerInfo, ServeError};
pub use stats::NodeStats;
pub use wire_error::RemoteError;
