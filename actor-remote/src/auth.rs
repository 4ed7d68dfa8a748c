//! The handshake proof: how two nodes show each other that they belong to the same cluster.
//!
//! Nothing from a peer is dispatched until it has proven membership. In shared-secret mode the
//! proof is an HMAC-SHA256, keyed by the [`ClusterSecret`], over
//!
//! - a domain-separation label (so the MAC means nothing outside this handshake),
//! - the TLS exporter keying material of *this* connection ([`EXPORTER_LABEL`]; both ends derive
//!   the same 32 bytes, and no other connection has them),
//! - the cluster name, protocol version, node name, incarnation and [`Role`] of the sender.
//!
//! Binding the exporter means a proof captured on one connection is worthless on another
//! (no replay, and a man in the middle who terminates TLS on each side sees two different
//! exporters). Binding the role means a dialer's proof cannot be sent back to it as if it came
//! from the acceptor (no reflection).
//!
//! This module is plain functions: the transport exports the keying material, moves the encoded
//! [`Hello`] and [`HelloReply`] and applies the verdict.
//!
//! # Flow
//!
//! 1. The dialer sends `make_hello(.., Role::Dialer)`.
//! 2. The acceptor calls `verify_hello(.., Role::Dialer)`. On success it answers
//!    [`HelloReply::Accepted`] with its own hello made with [`Role::Acceptor`]; on failure it answers
//!    [`HelloReply::Rejected`] with [`AuthError::rejection`] and closes the connection.
//! 3. The dialer verifies the acceptor's hello with `Role::Acceptor`.
//!
//! The dialer reveals its proof first. Whoever receives it (an impostor accepting connections, or
//! a man in the middle) cannot reuse it, since it is bound to that one connection, but could try
//! to guess a weak secret from it offline: use a long random secret.
//!
//! # Example
//!
//! ```
//! use actor_remote::auth::{make_hello, verify_hello, ClusterSecret, Role};
//!
//! let secret = ClusterSecret::new("correct horse battery staple");
//! let exporter = [7u8; 32]; // from Connection::export_keying_material in real use
//! let hello = make_hello(&secret, &exporter, "shop", "node-a", 1, Role::Dialer);
//! let peer = verify_hello(&hello, "shop", &secret, &exporter, Role::Dialer)?;
//! assert_eq!(peer.node, "node-a");
//! # Ok::<(), actor_remote::auth::AuthError>(())
//! ```

use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::codec::{CodecError, PROTOCOL_VERSION, decode_body, encode_body};

/// Label for the TLS exporter (RFC 5705 / RFC 8446 section 7.5) whose output the proof binds.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-actor-remote-hello";

/// Context for the TLS exporter: none.
pub const EXPORTER_CONTEXT: &[u8] = b"";

/// Bytes of exporter keying material the proof binds.
pub const EXPORTER_LEN: usize = 32;

/// The longest node or cluster name accepted in a hello, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Domain separation: this MAC is a hello proof of this protocol and nothing else.
const PROOF_LABEL: &[u8] = b"actor-remote/1 hello proof\0";

type HmacSha256 = Hmac<Sha256>;

/// The secret every node of a cluster shares in development mode.
///
/// It never appears in `Debug` output, is not `Serialize`, and compares in constant time.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ClusterSecret(String);

impl ClusterSecret {
    /// Wraps a secret. Use a long random string: see the module docs on offline guessing.
    pub fn new(secret: impl Into<String>) -> Self {
        ClusterSecret(secret.into())
    }

    /// Whether the secret is empty (configuration refuses an empty secret).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(self.0.as_bytes())
            .expect("HMAC accepts keys of any length")
    }
}

impl From<&str> for ClusterSecret {
    fn from(secret: &str) -> Self {
        ClusterSecret::new(secret)
    }
}

impl From<String> for ClusterSecret {
    fn from(secret: String) -> Self {
        ClusterSecret::new(secret)
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl PartialEq for ClusterSecret {
    /// Constant time: both secrets key a MAC over the same label and the tags are compared with
    /// `verify_slice`, so timing reveals nothing about where the secrets differ.
    fn eq(&self, other: &Self) -> bool {
        const LABEL: &[u8] = b"actor-remote secret comparison";
        let mut ours = self.mac();
        ours.update(LABEL);
        let tag = ours.finalize().into_bytes();
        let mut theirs = other.mac();
        theirs.update(LABEL);
        theirs.verify_slice(&tag).is_ok()
    }
}

impl Eq for ClusterSecret {}

/// Which end of the connection a node is; part of the proof, so proofs cannot be reflected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The node that opened the connection.
    Dialer,
    /// The node that accepted it.
    Acceptor,
}

impl Role {
    /// The role of the other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Role::Dialer => 1,
            Role::Acceptor => 2,
        }
    }
}

/// The first message each side sends: who it is, and its proof of membership.
///
/// `protocol_version` is the first field and stays first in every version of the protocol, so a
/// node can still read the version of a hello it cannot otherwise parse ([`Hello::from_bytes`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub protocol_version: u16,
    /// The cluster the sender belongs to.
    pub cluster: String,
    /// The sender's node name, unique in the cluster.
    pub node: String,
    /// Distinguishes restarts of the same node name (larger is newer).
    pub incarnation: u64,
    /// The sender's end of this connection.
    pub role: Role,
    /// HMAC-SHA256 over the fields above and the connection's exporter keying material.
    pub proof: [u8; 32],
}

impl fmt::Debug for Hello {
    /// The proof is left out: it is no secret, but a logged proof is material for guessing one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("protocol_version", &self.protocol_version)
            .field("cluster", &self.cluster)
            .field("node", &self.node)
            .field("incarnation", &self.incarnation)
            .field("role", &self.role)
            .field("proof", &format_args!("<redacted>"))
            .finish()
    }
}

impl Hello {
    /// Serializes the hello for the handshake stream.
    ///
    /// # Errors
    /// [`CodecError::BodyEncode`] only for names beyond the body size limit.
    pub fn to_bytes(&self) -> Result<Bytes, CodecError> {
        encode_body(self)
    }

    /// Reads a hello sent by a peer.
    ///
    /// # Errors
    /// [`AuthError::WrongProtocolVersion`] if the bytes do not parse as a hello of our version but
    /// start with another version number, [`AuthError::Malformed`] otherwise.
    pub fn from_bytes(bytes: &[u8]) -> Result<Hello, AuthError> {
        match decode_body::<Hello>(bytes) {
            Ok(hello) => Ok(hello),
            Err(_) => match bincode::serde::decode_from_slice::<u16, _>(
                bytes,
                bincode::config::standard(),
            ) {
                Ok((theirs, _)) if theirs != PROTOCOL_VERSION => {
                    Err(AuthError::WrongProtocolVersion {
                        ours: PROTOCOL_VERSION,
                        theirs,
                    })
                }
                _ => Err(AuthError::Malformed("hello does not parse")),
            },
        }
    }
}

/// Who the peer proved to be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The peer's node name.
    pub node: String,
    /// The peer's incarnation (larger is a newer start of the same node name).
    pub incarnation: u64,
}

/// Builds this node's hello for the connection whose exporter keying material is `exporter`.
///
/// `exporter` is `EXPORTER_LEN` bytes from the connection's
/// `export_keying_material(.., EXPORTER_LABEL, EXPORTER_CONTEXT)`.
pub fn make_hello(
    secret: &ClusterSecret,
    exporter: &[u8; EXPORTER_LEN],
    cluster: &str,
    node: &str,
    incarnation: u64,
    role: Role,
) -> Hello {
    let proof = proof_mac(
        secret,
        exporter,
        cluster,
        PROTOCOL_VERSION,
        node,
        incarnation,
        role,
    )
    .finalize()
    .into_bytes()
    .into();
    Hello {
        protocol_version: PROTOCOL_VERSION,
        cluster: cluster.to_owned(),
        node: node.to_owned(),
        incarnation,
        role,
        proof,
    }
}

/// Checks a peer's hello received on the connection whose exporter keying material is `exporter`.
///
/// `expected_peer_role` is the peer's end of the connection: [`Role::Dialer`] on the accepting
/// side, [`Role::Acceptor`] on the dialing side.
///
/// # Errors
/// In this order, so the first mismatch a misconfigured node hits is the one reported:
/// [`AuthError::WrongProtocolVersion`], [`AuthError::WrongCluster`], [`AuthError::Malformed`]
/// (empty or over-long node name), and [`AuthError::BadProof`] (wrong secret, a proof from another
/// connection, or one reflected from the other role). The proof is compared in constant time.
pub fn verify_hello(
    hello: &Hello,
    expected_cluster: &str,
    secret: &ClusterSecret,
    exporter: &[u8; EXPORTER_LEN],
    expected_peer_role: Role,
) -> Result<PeerIdentity, AuthError> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(AuthError::WrongProtocolVersion {
            ours: PROTOCOL_VERSION,
            theirs: hello.protocol_version,
        });
    }
    if hello.cluster.len() > MAX_NAME_LEN {
        return Err(AuthError::Malformed("cluster name is too long"));
    }
    if hello.cluster != expected_cluster {
        return Err(AuthError::WrongCluster {
            ours: expected_cluster.to_owned(),
            theirs: hello.cluster.clone(),
        });
    }
    if hello.node.is_empty() {
        return Err(AuthError::Malformed("node name is empty"));
    }
    if hello.node.len() > MAX_NAME_LEN {
        return Err(AuthError::Malformed("node name is too long"));
    }
    // The MAC is computed over the role we expect, not the one claimed: a reflected proof fails
    // here even if its role field was rewritten.
    let mac = proof_mac(
        secret,
        exporter,
        &hello.cluster,
        hello.protocol_version,
        &hello.node,
        hello.incarnation,
        expected_peer_role,
    );
    mac.verify_slice(&hello.proof)
        .map_err(|_| AuthError::BadProof)?;
    if hello.role != expected_peer_role {
        return Err(AuthError::BadProof);
    }
    Ok(PeerIdentity {
        node: hello.node.clone(),
        incarnation: hello.incarnation,
    })
}

fn proof_mac(
    secret: &ClusterSecret,
    exporter: &[u8; EXPORTER_LEN],
    cluster: &str,
    protocol_version: u16,
    node: &str,
    incarnation: u64,
    role: Role,
) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(PROOF_LABEL);
    mac.update(exporter);
    update_str(&mut mac, cluster);
    mac.update(&protocol_version.to_be_bytes());
    update_str(&mut mac, node);
    mac.update(&incarnation.to_be_bytes());
    mac.update(&[role.to_byte()]);
    mac
}

/// Length-prefixed, so no two field sequences feed the MAC the same bytes.
fn update_str(mac: &mut HmacSha256, s: &str) {
    mac.update(&(s.len() as u64).to_be_bytes());
    mac.update(s.as_bytes());
}

/// Why a peer's hello was not accepted, from this node's point of view.
///
/// No variant carries anything derived from the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}")]
    WrongProtocolVersion {
        /// Our [`PROTOCOL_VERSION`].
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// The peer belongs to another cluster.
    #[error("cluster name mismatch: we are in {ours:?}, the peer is in {theirs:?}")]
    WrongCluster {
        /// Our cluster name.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// The proof does not verify: a wrong cluster secret, or a proof replayed from another
    /// connection or reflected from the other end of this one.
    #[error(
        "the peer's proof of membership is invalid (wrong cluster secret, or a replayed proof)"
    )]
    BadProof,
    /// The hello is not well-formed.
    #[error("malformed hello: {0}")]
    Malformed(&'static str),
}

impl AuthError {
    /// What to tell the refused peer: versions and cluster names, but for a bad proof only that
    /// it is unauthorized.
    pub fn rejection(&self) -> Rejection {
        match self {
            AuthError::WrongProtocolVersion { ours, theirs } => Rejection::WrongProtocolVersion {
                expected: *ours,
                got: *theirs,
            },
            AuthError::WrongCluster { ours, theirs } => Rejection::WrongCluster {
                expected: ours.clone(),
                got: theirs.clone(),
            },
            AuthError::BadProof => Rejection::Unauthorized,
            AuthError::Malformed(_) => Rejection::Malformed,
        }
    }
}

/// Why the accepting node refused a dialer; sent to the dialer in [`HelloReply::Rejected`].
///
/// Messages read from the refused node's side. The variant order is part of the wire format and is
/// kept across protocol versions, so a refused node can always read why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// The refusing node speaks protocol version `expected`; we sent `got`.
    #[error("refused by peer: it speaks protocol version {expected}, we speak {got}")]
    WrongProtocolVersion {
        /// The refusing node's version.
        expected: u16,
        /// The version we sent.
        got: u16,
    },
    /// The refusing node is in cluster `expected`; we said `got`.
    #[error("refused by peer: it is in cluster {expected:?}, we are in {got:?}")]
    WrongCluster {
        /// The refusing node's cluster.
        expected: String,
        /// The cluster we sent.
        got: String,
    },
    /// Our proof did not verify (most likely a different cluster secret).
    #[error("refused by peer: unauthorized (check the cluster secret)")]
    Unauthorized,
    /// The refusing node could not read our hello.
    #[error("refused by peer: it could not read our hello")]
    Malformed,
}

/// The accepting node's answer to a dialer's [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted; the acceptor's own hello follows, for the dialer to verify.
    Accepted(Hello),
    /// Refused, and why. The connection is closed after this.
    Rejected(Rejection),
}

impl HelloReply {
    /// Serializes the reply for the handshake stream.
    ///
    /// # Errors
    /// [`CodecError::BodyEncode`] only for names beyond the body size limit.
    pub fn to_bytes(&self) -> Result<Bytes, CodecError> {
        encode_body(self)
    }

    /// Reads the reply sent by the acceptor.
    ///
    /// # Errors
    /// [`AuthError::Malformed`] if the bytes are no reply.
    pub fn from_bytes(bytes: &[u8]) -> Result<HelloReply, AuthError> {
        decode_body(bytes).map_err(|_| AuthError::Malformed("hello reply does not parse"))
    }

    /// The acceptor's hello, or the reason it refused us.
    ///
    /// # Errors
    /// The [`Rejection`] the acceptor sent.
    pub fn into_result(self) -> Result<Hello, Rejection> {
        match self {
            HelloReply::Accepted(hello) => Ok(hello),
            HelloReply::Rejected(rejection) => Err(rejection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-for-tests-only";
    const EXPORTER: [u8; EXPORTER_LEN] = [0xa5; EXPORTER_LEN];

    fn secret() -> ClusterSecret {
        ClusterSecret::new(SECRET)
    }

    fn dialer_hello() -> Hello {
        make_hello(&secret(), &EXPORTER, "shop", "node-a", 3, Role::Dialer)
    }

    fn verify(hello: &Hello) -> Result<PeerIdentity, AuthError> {
        verify_hello(hello, "shop", &secret(), &EXPORTER, Role::Dialer)
    }

    #[test]
    fn good_proof_verifies_and_names_the_peer() {
        assert_eq!(
            verify(&dialer_hello()),
            Ok(PeerIdentity {
                node: "node-a".into(),
                incarnation: 3
            })
        );
    }

    #[test]
    fn acceptor_proof_verifies_on_the_dialer() {
        let hello = make_hello(&secret(), &EXPORTER, "shop", "node-b", 1, Role::Acceptor);
        assert!(verify_hello(&hello, "shop", &secret(), &EXPORTER, Role::Acceptor).is_ok());
    }

    #[test]
    fn wrong_secret_is_bad_proof() {
        let hello = make_hello(
            &ClusterSecret::new("another secret"),
            &EXPORTER,
            "shop",
            "node-a",
            3,
            Role::Dialer,
        );
        assert_eq!(verify(&hello), Err(AuthError::BadProof));
    }

    #[test]
    fn wrong_cluster_names_both_clusters() {
        let hello = make_hello(&secret(), &EXPORTER, "bank", "node-a", 3, Role::Dialer);
        assert_eq!(
            verify(&hello),
            Err(AuthError::WrongCluster {
                ours: "shop".into(),
                theirs: "bank".into()
            })
        );
    }

    #[test]
    fn wrong_protocol_version_is_reported_before_anything_else() {
        let mut hello = make_hello(&secret(), &EXPORTER, "bank", "", 3, Role::Dialer);
        hello.protocol_version = PROTOCOL_VERSION + 1;
        assert_eq!(
            verify(&hello),
            Err(AuthError::WrongProtocolVersion {
                ours: PROTOCOL_VERSION,
                theirs: PROTOCOL_VERSION + 1
            })
        );
    }

    #[test]
    fn proof_made_for_another_connection_is_bad_proof() {
        let replayed = make_hello(&secret(), &[0x5a; 32], "shop", "node-a", 3, Role::Dialer);
        assert_eq!(verify(&replayed), Err(AuthError::BadProof));
    }

    #[test]
    fn reflected_proof_is_bad_proof() {
        // The dialer's own hello sent back to it, as-is and with the role field rewritten.
        let reflected = dialer_hello();
        let check = |h: &Hello| verify_hello(h, "shop", &secret(), &EXPORTER, Role::Acceptor);
        assert_eq!(check(&reflected), Err(AuthError::BadProof));
        let rewritten = Hello {
            role: Role::Acceptor,
            ..reflected
        };
        assert_eq!(check(&rewritten), Err(AuthError::BadProof));
    }

    #[test]
    fn tampered_identity_is_bad_proof() {
        let renamed = Hello {
            node: "node-z".into(),
            ..dialer_hello()
        };
        assert_eq!(verify(&renamed), Err(AuthError::BadProof));
        let reborn = Hello {
            incarnation: 4,
            ..dialer_hello()
        };
        assert_eq!(verify(&reborn), Err(AuthError::BadProof));
    }

    #[test]
    fn empty_or_over_long_node_name_is_malformed() {
        let empty = make_hello(&secret(), &EXPORTER, "shop", "", 3, Role::Dialer);
        assert!(matches!(verify(&empty), Err(AuthError::Malformed(_))));
        let long = "n".repeat(MAX_NAME_LEN + 1);
        let long = make_hello(&secret(), &EXPORTER, "shop", &long, 3, Role::Dialer);
        assert!(matches!(verify(&long), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn hello_round_trips_through_bytes() {
        let hello = dialer_hello();
        let bytes = hello.to_bytes().expect("encodes");
        assert_eq!(Hello::from_bytes(&bytes), Ok(hello));
    }

    #[test]
    fn garbage_hello_is_malformed() {
        let mut ours_then_garbage = encode_body(&PROTOCOL_VERSION).expect("encodes").to_vec();
        ours_then_garbage.push(2);
        assert!(matches!(
            Hello::from_bytes(&ours_then_garbage),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            Hello::from_bytes(&[]),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn unreadable_hello_of_another_version_reports_the_version() {
        // A future hello: its version first, then a layout we do not know.
        let future = PROTOCOL_VERSION + 1;
        let mut bytes = encode_body(&future).expect("encodes").to_vec();
        bytes.extend_from_slice(&[0xff; 7]);
        assert_eq!(
            Hello::from_bytes(&bytes),
            Err(AuthError::WrongProtocolVersion {
                ours: PROTOCOL_VERSION,
                theirs: future
            })
        );
    }

    #[test]
    fn rejection_tells_versions_and_clusters_but_only_unauthorized_for_bad_proof() {
        assert_eq!(
            AuthError::WrongProtocolVersion { ours: 1, theirs: 2 }.rejection(),
            Rejection::WrongProtocolVersion {
                expected: 1,
                got: 2
            }
        );
        assert_eq!(
            AuthError::WrongCluster {
                ours: "shop".into(),
                theirs: "bank".into()
            }
            .rejection(),
            Rejection::WrongCluster {
                expected: "shop".into(),
                got: "bank".into()
            }
        );
        assert_eq!(AuthError::BadProof.rejection(), Rejection::Unauthorized);
        assert_eq!(AuthError::Malformed("x").rejection(), Rejection::Malformed);
        assert_eq!(
            Rejection::Unauthorized.to_string(),
            "refused by peer: unauthorized (check the cluster secret)"
        );
    }

    #[test]
    fn hello_reply_round_trips_through_bytes() {
        for reply in [
            HelloReply::Accepted(dialer_hello()),
            HelloReply::Rejected(Rejection::WrongCluster {
                expected: "shop".into(),
                got: "bank".into(),
            }),
            HelloReply::Rejected(Rejection::Unauthorized),
        ] {
            let bytes = reply.to_bytes().expect("encodes");
            assert_eq!(HelloReply::from_bytes(&bytes), Ok(reply));
        }
        assert!(HelloReply::from_bytes(&[9]).is_err());
    }

    #[test]
    fn hello_reply_into_result_separates_acceptance_from_refusal() {
        assert_eq!(
            HelloReply::Accepted(dialer_hello()).into_result(),
            Ok(dialer_hello())
        );
        assert_eq!(
            HelloReply::Rejected(Rejection::Malformed).into_result(),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn debug_output_redacts_secret_and_proof() {
        assert_eq!(format!("{:?}", secret()), "ClusterSecret(<redacted>)");
        let hello = dialer_hello();
        let shown = format!("{hello:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&format!("{:?}", hello.proof)));
        assert!(!shown.contains(SECRET));
    }

    #[test]
    fn secrets_compare_by_value() {
        assert_eq!(secret(), ClusterSecret::from(SECRET));
        assert_ne!(secret(), ClusterSecret::from("s3cr3t-for-tests-onlY"));
        assert_ne!(secret(), ClusterSecret::from(""));
    }
}
