//! Remote actors and clusters: the same `ActorRef`, whether the actor is here or on another
//! node.
//!
//! A [`Node`] is an [`ActorSystem`](actor_core::ActorSystem) with a name, a QUIC endpoint and
//! credentials. Nodes prove to each other that they belong (a shared secret bound to the very
//! TLS connection, or mutual TLS against a cluster CA) before anything is dispatched, find each
//! other from a seed list, watch each other with SWIM, and announce the names they serve.
//! Messages that may cross nodes are [`RemoteMessage`]s; an actor type declares the ones it
//! accepts once ([`RemoteActor`]), for both ends.
//!
//! ```
//! use std::time::Duration;
//! use actor_core::{Actor, Context, Handler, Message};
//! use actor_remote::config::{AuthConfig, NodeConfig};
//! use actor_remote::{Accepts, Node, RemoteActor, RemoteMessage};
//! use serde::{Deserialize, Serialize};
//!
//! struct Greeter;
//! impl Actor for Greeter {}
//!
//! #[derive(Serialize, Deserialize)]
//! struct Greet(String);
//! impl Message for Greet { type Reply = String; }
//! impl RemoteMessage for Greet { const TAG: &'static str = "doc.greeter.greet.v1"; }
//! impl Handler<Greet> for Greeter {
//!     async fn handle(&mut self, msg: Greet, _ctx: &mut Context<Self>) -> String {
//!         format!("hello, {}", msg.0)
//!     }
//! }
//! impl RemoteActor for Greeter {
//!     fn accepts(accepts: &mut Accepts<Self>) { accepts.message::<Greet>(); }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = AuthConfig::Secret("a long random secret".into());
//! let b = Node::start(NodeConfig::new("b", secret.clone())).await?;
//! let greeter = b.system().spawn_named("greeter", Greeter).await?;
//! b.serve(&greeter)?;
//!
//! let mut config = NodeConfig::new("a", secret);
//! config.seeds = vec![b.local_addr().to_string()];
//! let a = Node::start(config).await?;
//! let greeter = a.lookup_wait::<Greeter>("greeter", Duration::from_secs(5)).await?;
//! assert!(!greeter.is_local());
//! assert_eq!(greeter.ask(Greet("a".into())).await?, "hello, a");
//!
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Parts
//! The protocol pieces are pure and I/O-free, so each is tested on its own; the node, its
//! links and the membership are thin drivers around them.
//!
//! - [`codec`]: the wire frame format and message-body serialization.
//! - [`auth`]: the shared-secret handshake proof, bound to one TLS connection.
//! - [`handshake`]: the handshake driver and the close codes.
//! - [`tls`]: rustls and quinn configuration for both authentication modes.
//! - [`config`]: the node configuration file.
//! - `connection`: one link per peer: a stream per target actor, batching writers, asks in
//!   flight, `NodeDown` on loss.
//! - `membership`: SWIM (foca) driven over the links; [`MemberEvent`]s.
//! - `cluster`: the registry of names and topics per node.
//! - `dispatch`, `route`: delivery to served actors, and the refs' remote routes.
//!
//! # Guarantees
//! As in `actor_core`: per sender->receiver order (one stream per target actor), exactly one
//! outcome per ask (`NodeDown` at once when the connection is lost, `Unreachable` at once
//! when only the stream that carried it breaks), bounded queues end to
//! end (QUIC flow control carries back-pressure to the sender), and a peer that sends garbage
//! or oversized frames is disconnected alone.

mod answers;
pub mod auth;
mod cluster;
pub mod codec;
pub mod config;
mod connection;
mod dispatch;
pub mod handshake;
mod lane;
mod membership;
mod message;
mod node;
mod peers;
mod replies;
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
