//! The connection handshake driver: TLS, then the proof of membership, before anything else.
//!
//! The dialer opens the first bidirectional stream (the control stream) and sends its
//! [`Hello`]; the acceptor verifies it and answers [`HelloReply::Accepted`] with its own hello
//! (which the dialer verifies in turn) or [`HelloReply::Rejected`] with the reason, then closes.
//! The proofs are bound to this connection's TLS exporter keying material (see
//! [`crate::auth`]). No data stream is accepted and no frame is dispatched before both hellos
//! verify. All checks are the pure functions of `auth`; this module only moves bytes.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};

use crate::auth::{
    self, AuthError, ClusterSecret, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, Hello,
    HelloReply, PeerIdentity, Rejection, Role,
};
use crate::tls::SERVER_NAME;

/// Largest hello or hello reply accepted.
const MAX_HELLO_LEN: usize = 16 * 1024;

/// QUIC application error codes this crate closes connections with.
pub mod close_code {
    use quinn::VarInt;

    /// Orderly close: shutdown or graceful leave.
    pub const NORMAL: VarInt = VarInt::from_u32(0);
    /// The peer's proof of membership did not verify.
    pub const UNAUTHORIZED: VarInt = VarInt::from_u32(1);
    /// The peer is in another cluster.
    pub const WRONG_CLUSTER: VarInt = VarInt::from_u32(2);
    /// The peer speaks another protocol version.
    pub const WRONG_VERSION: VarInt = VarInt::from_u32(3);
    /// The peer sent bytes that are not a valid frame or hello.
    pub const PROTOCOL_VIOLATION: VarInt = VarInt::from_u32(4);
    /// The peer sent a frame larger than our limit.
    pub const FRAME_TOO_LARGE: VarInt = VarInt::from_u32(5);
    /// The peer did not finish the handshake in time.
    pub const HANDSHAKE_TIMEOUT: VarInt = VarInt::from_u32(6);
    /// Another connection between the same two nodes won (simultaneous dial).
    pub const DUPLICATE: VarInt = VarInt::from_u32(7);
}

/// Why a dial did not produce an authenticated connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The QUIC connection could not be started (bad address, endpoint closed).
    #[error("cannot dial {addr}: {source}")]
    Dial {
        /// The address dialed.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: quinn::ConnectError,
    },
    /// The connection failed or was closed during the handshake.
    #[error("connection to {addr} failed: {source}")]
    Connection {
        /// The address dialed.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: quinn::ConnectionError,
    },
    /// The peer refused us, and said why.
    #[error("{addr}: {rejection}")]
    Refused {
        /// The address dialed.
        addr: SocketAddr,
        /// The peer's reason.
        rejection: Rejection,
    },
    /// The peer's own hello did not verify: we refused it.
    #[error("{addr}: refused the peer: {source}")]
    PeerRefused {
        /// The address dialed.
        addr: SocketAddr,
        /// Why the peer's hello failed.
        #[source]
        source: AuthError,
    },
    /// The handshake did not finish within the handshake time-out.
    #[error("handshake with {addr} timed out")]
    Timeout {
        /// The address dialed.
        addr: SocketAddr,
    },
    /// The peer broke the handshake protocol.
    #[error("handshake with {addr} failed: {reason}")]
    Protocol {
        /// The address dialed.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The node is shutting down.
    #[error("node is shutting down")]
    ShuttingDown,
}

/// Why an incoming connection was not accepted (logged; the dialer gets a rejection).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("refused: {0}")]
    Refused(AuthError),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Who this node is, for its hellos.
pub(crate) struct LocalIdentity<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) node: &'a str,
    pub(crate) incarnation: u64,
    /// The key of the proof: the cluster secret, or in mutual-TLS mode a key derived from the
    /// cluster name (the certificates authenticate; the proof still binds the hello to this
    /// connection).
    pub(crate) secret: &'a ClusterSecret,
    /// Raised on the connection once both hellos verify.
    pub(crate) limits: &'a crate::tls::TransportLimits,
}

/// An authenticated connection and its control stream.
pub(crate) struct Handshake {
    pub(crate) conn: Connection,
    pub(crate) peer: PeerIdentity,
    pub(crate) control_send: SendStream,
    pub(crate) control_recv: RecvStream,
}

/// Dials `addr` and runs the dialer's side of the handshake.
pub(crate) async fn dial(
    endpoint: &Endpoint,
    client: quinn::ClientConfig,
    addr: SocketAddr,
    me: &LocalIdentity<'_>,
) -> Result<Handshake, ConnectError> {
    let conn = endpoint
        .connect_with(client, addr, SERVER_NAME)
        .map_err(|source| ConnectError::Dial { addr, source })?
        .await
        .map_err(|source| ConnectError::Connection { addr, source })?;
    let protocol = |reason: String| ConnectError::Protocol { addr, reason };
    let exporter = exporter(&conn).map_err(protocol)?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|source| ConnectError::Connection { addr, source })?;
    let hello = auth::make_hello(
        me.secret,
        &exporter,
        me.cluster,
        me.node,
        me.incarnation,
        Role::Dialer,
    );
    let bytes = hello.to_bytes().map_err(|e| protocol(e.to_string()))?;
    write_blob(&mut send, &bytes)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    let reply = match read_blob(&mut recv).await {
        Ok(reply) => reply,
        Err(e) => {
            // A refusing acceptor closes right after its reply; prefer its close reason.
            return Err(match conn.close_reason() {
                Some(source) => ConnectError::Connection { addr, source },
                None => protocol(e),
            });
        }
    };
    let theirs = HelloReply::from_bytes(&reply)
        .map_err(|e| protocol(e.to_string()))?
        .into_result()
        .map_err(|rejection| ConnectError::Refused { addr, rejection })?;
    match auth::verify_hello(&theirs, me.cluster, me.secret, &exporter, Role::Acceptor) {
        Ok(peer) => {
            me.limits.open_after_auth(&conn);
            Ok(Handshake {
                conn,
                peer,
                control_send: send,
                control_recv: recv,
            })
        }
        Err(source) => {
            conn.close(code_for(&source), b"refused");
            Err(ConnectError::PeerRefused { addr, source })
        }
    }
}

/// Runs the acceptor's side of the handshake on an incoming connection: TLS, then the
/// hellos within `timeout`. A peer that is too slow is closed with
/// [`close_code::HANDSHAKE_TIMEOUT`], one that breaks the protocol with
/// [`close_code::PROTOCOL_VIOLATION`].
pub(crate) async fn accept(
    incoming: quinn::Incoming,
    me: &LocalIdentity<'_>,
    timeout: std::time::Duration,
) -> Result<Handshake, AcceptError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let conn = tokio::time::timeout_at(deadline, incoming)
        .await
        .map_err(|_| AcceptError::Protocol("TLS handshake timed out".to_string()))??;
    match tokio::time::timeout_at(deadline, exchange_hellos(&conn, me)).await {
        Ok(Ok((peer, control_send, control_recv))) => {
            me.limits.open_after_auth(&conn);
            Ok(Handshake {
                conn,
                peer,
                control_send,
                control_recv,
            })
        }
        Ok(Err(e)) => {
            if let AcceptError::Protocol(_) = &e {
                conn.close(
                    close_code::PROTOCOL_VIOLATION,
                    b"handshake protocol violation",
                );
            }
            Err(e)
        }
        Err(_) => {
            conn.close(close_code::HANDSHAKE_TIMEOUT, b"handshake timed out");
            Err(AcceptError::Protocol(
                "hello not received in time".to_string(),
            ))
        }
    }
}

/// The acceptor's hello exchange on an established TLS connection.
async fn exchange_hellos(
    conn: &Connection,
    me: &LocalIdentity<'_>,
) -> Result<(PeerIdentity, SendStream, RecvStream), AcceptError> {
    let exporter = exporter(conn).map_err(AcceptError::Protocol)?;
    let (mut send, mut recv) = conn.accept_bi().await?;
    let bytes = read_blob(&mut recv).await.map_err(AcceptError::Protocol)?;
    let verified = Hello::from_bytes(&bytes).and_then(|hello| {
        auth::verify_hello(&hello, me.cluster, me.secret, &exporter, Role::Dialer)
    });
    let peer = match verified {
        Ok(peer) => peer,
        Err(e) => {
            let reply = HelloReply::Rejected(e.rejection());
            if let Ok(bytes) = reply.to_bytes() {
                let _ = write_blob(&mut send, &bytes).await;
                let _ = send.finish();
                // Give the reply a moment to leave before the close discards it.
                let _ = tokio::time::timeout(std::time::Duration::from_millis(200), send.stopped())
                    .await;
            }
            conn.close(code_for(&e), b"refused");
            return Err(AcceptError::Refused(e));
        }
    };
    let ours = auth::make_hello(
        me.secret,
        &exporter,
        me.cluster,
        me.node,
        me.incarnation,
        Role::Acceptor,
    );
    let reply = HelloReply::Accepted(ours)
        .to_bytes()
        .map_err(|e| AcceptError::Protocol(e.to_string()))?;
    write_blob(&mut send, &reply)
        .await
        .map_err(|e| AcceptError::Protocol(e.to_string()))?;
    Ok((peer, send, recv))
}

/// The close code that tells the peer why its hello was refused.
pub(crate) fn code_for(e: &AuthError) -> VarInt {
    match e {
        AuthError::WrongProtocolVersion { .. } => close_code::WRONG_VERSION,
        AuthError::WrongCluster { .. } => close_code::WRONG_CLUSTER,
        AuthError::BadProof => close_code::UNAUTHORIZED,
        AuthError::Malformed(_) => close_code::PROTOCOL_VIOLATION,
    }
}

fn exporter(conn: &Connection) -> Result<[u8; EXPORTER_LEN], String> {
    let mut out = [0u8; EXPORTER_LEN];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .map_err(|_| "TLS exporter unavailable".to_string())?;
    Ok(out)
}

async fn write_blob(send: &mut SendStream, bytes: &Bytes) -> Result<(), quinn::WriteError> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    send.write_all(&len.to_be_bytes()).await?;
    send.write_all(bytes).await
}

async fn read_blob(recv: &mut RecvStream) -> Result<BytesMut, String> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len)
        .await
        .map_err(|e| format!("reading hello length: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HELLO_LEN {
        return Err(format!("hello of {len} bytes exceeds {MAX_HELLO_LEN}"));
    }
    let mut buf = BytesMut::zeroed(len);
    recv.read_exact(&mut buf)
        .await
        .map_err(|e| format!("reading hello: {e}"))?;
    Ok(buf)
}
