//! The baseline: a plain quinn server and client on 127.0.0.1, moving u32-length-prefixed
//! frames on bidirectional streams, with nothing of ours in between.
//!
//! # Wire
//! A stream opens with one mode byte, then carries frames: a big-endian `u32` length and that
//! many payload bytes.
//!
//! - [`CountingStream`]: the server counts the frames; a zero-length frame asks for the count
//!   since the last request, answered with one frame holding it as a big-endian `u64`.
//! - [`EchoStream`]: the server writes every frame back as it is.
//!
//! # Senders
//! [`WriteBatching::Buffered`] appends frames to a buffer and writes it with one
//! `write_all` whenever it holds [`FLUSH_AT`] bytes or more (and at the end), as a hand-written
//! sender with a write buffer does; [`WriteBatching::EachFrame`] calls `write_all` once per
//! frame. The server reads with `read_buf` into one growing buffer and walks the frames in
//! place, without copying them out.
//!
//! TLS and QUIC settings are a node's: the configurations come from [`NodeTls`] in
//! shared-secret mode (self-signed certificate, `ring` provider, TLS 1.3) with the default
//! [`Limits`], so the only difference to our side is the framework itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use actor_remote::auth::ClusterSecret;
use actor_remote::config::Limits;
use actor_remote::tls::{Credentials, NodeTls, SERVER_NAME, TransportLimits};
use bytes::{Buf, BufMut, BytesMut};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use super::{PAYLOAD_LEN, TellRun, check_delivered, payload};
use crate::BenchResult;

/// Bytes a buffered sender collects before it writes: 64 KiB.
pub const FLUSH_AT: usize = 64 * 1024;

/// Bytes of the length prefix in front of every frame.
const PREFIX_LEN: usize = 4;

/// Bytes of one payload frame on the wire.
const FRAME_LEN: usize = PREFIX_LEN + PAYLOAD_LEN;

/// Bytes of the count reply: prefix and a `u64`.
const COUNT_REPLY_LEN: usize = PREFIX_LEN + 8;

/// The server's read buffer, as large as a node's.
const READ_BUF: usize = 16 * 1024;

const MODE_COUNT: u8 = 1;
const MODE_ECHO: u8 = 2;

/// How a baseline sender turns frames into stream writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBatching {
    /// One `write_all` per frame.
    EachFrame,
    /// Frames are appended to a buffer, written with one `write_all` once it holds at least
    /// `flush_at` bytes, and at the end.
    Buffered {
        /// The buffer size that triggers a write.
        flush_at: usize,
    },
}

impl WriteBatching {
    /// Buffered, flushing every [`FLUSH_AT`] bytes: the baseline of the tell figures.
    pub const DEFAULT: WriteBatching = WriteBatching::Buffered { flush_at: FLUSH_AT };

    /// In words, for the report.
    pub fn describe(&self) -> String {
        match self {
            WriteBatching::EachFrame => "write_all per frame".to_string(),
            WriteBatching::Buffered { flush_at } => {
                format!("buffer-and-flush every {} KiB", flush_at / 1024)
            }
        }
    }
}

/// The baseline's server: a quinn endpoint on 127.0.0.1 (any port) that counts or echoes the
/// frames of every stream a client opens. It runs beside the client ([`RawQuinn::start`]) or
/// in a process of its own ([`RawQuinn::connect`]).
#[derive(Debug)]
pub struct RawServer {
    endpoint: Endpoint,
    accept: JoinHandle<()>,
}

impl RawServer {
    /// Starts serving on 127.0.0.1 (any port).
    ///
    /// # Errors
    /// When TLS cannot be set up or the socket cannot be bound.
    pub fn start() -> BenchResult<Self> {
        Self::start_with(&tls()?)
    }

    fn start_with(tls: &NodeTls) -> BenchResult<Self> {
        let limits = Limits::default().transport();
        let endpoint = Endpoint::server(tls.server_config(&limits)?, loopback())?;
        let accept = tokio::spawn(accept_loop(endpoint.clone(), limits));
        Ok(Self { endpoint, accept })
    }

    /// The address clients connect to.
    ///
    /// # Errors
    /// When the socket has no address.
    pub fn local_addr(&self) -> BenchResult<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Stops accepting and closes every connection.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"done");
        self.accept.abort();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

/// The baseline's client: one connection to a [`RawServer`], and that server when it runs in
/// this process.
#[derive(Debug)]
pub struct RawQuinn {
    server: Option<RawServer>,
    client: Endpoint,
    conn: Connection,
}

fn tls() -> BenchResult<NodeTls> {
    let secret = ClusterSecret::new("raw quinn baseline (TLS only; no proof is exchanged)");
    Ok(NodeTls::new(&Credentials::SharedSecret { secret })?)
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

impl RawQuinn {
    /// Starts the server on 127.0.0.1 (any port) and connects a client to it.
    ///
    /// # Errors
    /// When TLS cannot be set up, a socket cannot be bound, or the handshake fails.
    pub async fn start() -> BenchResult<Self> {
        // One self-signed certificate serves both ends, as one node's would.
        let tls = tls()?;
        let server = RawServer::start_with(&tls)?;
        let mut raw = Self::connect_with(&tls, server.local_addr()?).await?;
        raw.server = Some(server);
        Ok(raw)
    }

    /// Connects a client to the [`RawServer`] at `addr` (on 127.0.0.1).
    ///
    /// # Errors
    /// When TLS cannot be set up, the socket cannot be bound, or the handshake fails.
    pub async fn connect(addr: SocketAddr) -> BenchResult<Self> {
        Self::connect_with(&tls()?, addr).await
    }

    async fn connect_with(tls: &NodeTls, addr: SocketAddr) -> BenchResult<Self> {
        let limits = Limits::default().transport();
        let client = Endpoint::client(loopback())?;
        let conn = client
            .connect_with(tls.client_config(&limits)?, addr, SERVER_NAME)?
            .await?;
        // The same working limits an authenticated node link is opened up to (a node starts
        // a connection with one stream and a small window until the peer proves it belongs).
        limits.open_after_auth(&conn);
        Ok(Self {
            server: None,
            client,
            conn,
        })
    }

    /// Opens a stream whose frames the server counts.
    ///
    /// # Errors
    /// When the connection is gone.
    pub async fn counting_stream(&self) -> BenchResult<CountingStream> {
        let (send, recv) = self.open(MODE_COUNT).await?;
        Ok(CountingStream {
            send,
            recv,
            out: BytesMut::with_capacity(FLUSH_AT + FRAME_LEN),
        })
    }

    /// Opens a stream whose frames the server echoes.
    ///
    /// # Errors
    /// When the connection is gone.
    pub async fn echo_stream(&self) -> BenchResult<EchoStream> {
        let (send, recv) = self.open(MODE_ECHO).await?;
        Ok(EchoStream { send, recv })
    }

    async fn open(&self, mode: u8) -> BenchResult<(SendStream, RecvStream)> {
        let (mut send, recv) = self.conn.open_bi().await?;
        send.write_all(&[mode]).await?;
        Ok((send, recv))
    }

    /// Closes the connection, the client and, if it runs here, the server.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        self.client.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.wait_idle()).await;
        if let Some(server) = self.server {
            server.close().await;
        }
    }
}

/// A client stream to the counting server.
#[derive(Debug)]
pub struct CountingStream {
    send: SendStream,
    recv: RecvStream,
    out: BytesMut,
}

impl CountingStream {
    /// Sends `n` payload frames as `batching` says, then asks the server how many frames it
    /// counted since the last request, and returns that count.
    ///
    /// # Errors
    /// When the stream fails or the reply is malformed.
    pub async fn send_and_count(&mut self, n: u64, batching: WriteBatching) -> BenchResult<u64> {
        for i in 0..n {
            put_frame(&mut self.out, &payload(i));
            match batching {
                WriteBatching::EachFrame => self.flush().await?,
                WriteBatching::Buffered { flush_at } if self.out.len() >= flush_at => {
                    self.flush().await?;
                }
                WriteBatching::Buffered { .. } => {}
            }
        }
        put_frame(&mut self.out, &[]);
        self.flush().await?;
        let mut reply = [0u8; COUNT_REPLY_LEN];
        self.recv.read_exact(&mut reply).await?;
        let (prefix, count) = reply.split_at(PREFIX_LEN);
        if prefix != 8u32.to_be_bytes() {
            return Err("malformed count reply".into());
        }
        Ok(u64::from_be_bytes(count.try_into()?))
    }

    async fn flush(&mut self) -> BenchResult<()> {
        self.send.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }
}

/// A client stream to the echo server.
#[derive(Debug)]
pub struct EchoStream {
    send: SendStream,
    recv: RecvStream,
}

impl EchoStream {
    /// Writes one 64-byte payload frame and waits until the same frame has come back.
    ///
    /// # Errors
    /// When the stream fails or the echo differs.
    pub async fn round_trip(&mut self, i: u64) -> BenchResult<()> {
        let mut frame = [0u8; FRAME_LEN];
        frame[..PREFIX_LEN].copy_from_slice(&(PAYLOAD_LEN as u32).to_be_bytes());
        frame[PREFIX_LEN..].copy_from_slice(&payload(i));
        self.send.write_all(&frame).await?;
        let mut echo = [0u8; FRAME_LEN];
        self.recv.read_exact(&mut echo).await?;
        if echo == frame {
            Ok(())
        } else {
            Err("echo differs from the request".into())
        }
    }

    /// Times each of `n` sequential round trips.
    ///
    /// # Errors
    /// The first failed round trip.
    pub async fn latencies(&mut self, n: u64) -> BenchResult<Vec<Duration>> {
        let mut out = Vec::with_capacity(usize::try_from(n)?);
        for i in 0..n {
            let start = Instant::now();
            self.round_trip(i).await?;
            out.push(start.elapsed());
        }
        Ok(out)
    }
}

/// Baseline, one sender: times `n` frames on `stream` and the count coming back.
///
/// # Errors
/// When the stream fails or the server counted a different number.
pub async fn raw_tell(
    stream: &mut CountingStream,
    n: u64,
    batching: WriteBatching,
) -> BenchResult<TellRun> {
    let start = Instant::now();
    let delivered = stream.send_and_count(n, batching).await?;
    let elapsed = start.elapsed();
    check_delivered(delivered, n)?;
    Ok(TellRun { elapsed, delivered })
}

/// Baseline, several senders: one task per stream of `streams`, each sending `per_sender`
/// frames and waiting for its count; timed until the last count is back. Returns the streams
/// for the next round.
///
/// # Errors
/// When a stream fails or the counts do not add up.
pub async fn raw_tell_concurrent(
    streams: Vec<CountingStream>,
    per_sender: u64,
    batching: WriteBatching,
) -> BenchResult<(TellRun, Vec<CountingStream>)> {
    let sent = per_sender * streams.len() as u64;
    let start = Instant::now();
    let tasks: Vec<JoinHandle<BenchResult<(u64, CountingStream)>>> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let count = stream.send_and_count(per_sender, batching).await?;
                Ok((count, stream))
            })
        })
        .collect();
    let mut delivered = 0;
    let mut streams = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (count, stream) = task.await??;
        delivered += count;
        streams.push(stream);
    }
    let elapsed = start.elapsed();
    check_delivered(delivered, sent)?;
    Ok((TellRun { elapsed, delivered }, streams))
}

fn put_frame(out: &mut BytesMut, payload: &[u8]) {
    // Payloads here are 64 bytes or empty.
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

/// Accepts connections, and on each the streams the client opens.
async fn accept_loop(endpoint: Endpoint, limits: TransportLimits) {
    while let Some(incoming) = endpoint.accept().await {
        let limits = limits.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            limits.open_after_auth(&conn);
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(async move {
                    // A stream ends with an error when the client closes the connection.
                    let _ = serve_stream(send, recv).await;
                });
            }
        });
    }
}

/// Serves one stream: counts or echoes its frames, as its mode byte says.
async fn serve_stream(mut send: SendStream, mut recv: RecvStream) -> BenchResult<()> {
    let mut mode = [0u8; 1];
    recv.read_exact(&mut mode).await?;
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let mut count = 0u64;
    loop {
        while let Some(len) = complete_frame(&buf) {
            match mode[0] {
                MODE_ECHO => send.write_all(&buf[..PREFIX_LEN + len]).await?,
                _ if len == 0 => {
                    let mut reply = [0u8; COUNT_REPLY_LEN];
                    reply[..PREFIX_LEN].copy_from_slice(&8u32.to_be_bytes());
                    reply[PREFIX_LEN..].copy_from_slice(&count.to_be_bytes());
                    send.write_all(&reply).await?;
                    count = 0;
                }
                _ => count += 1,
            }
            buf.advance(PREFIX_LEN + len);
        }
        if recv.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// The payload length of the frame at the front of `buf`, if all of it has arrived.
fn complete_frame(buf: &BytesMut) -> Option<usize> {
    let prefix = buf.first_chunk::<PREFIX_LEN>()?;
    let len = u32::from_be_bytes(*prefix) as usize;
    (buf.len() >= PREFIX_LEN + len).then_some(len)
}

/// An echo stream driven through two extra task hops on the client, as an actor transport
/// does: requests go to a writer task over a channel, and echoes come back from a reader
/// task over another. For `remote_breakdown`'s `raw-ask-hops`.
#[derive(Debug)]
pub struct HoppedEcho {
    to_writer: tokio::sync::mpsc::Sender<[u8; FRAME_LEN]>,
    from_reader: tokio::sync::mpsc::Receiver<[u8; FRAME_LEN]>,
}

impl EchoStream {
    /// Moves the stream's halves into a writer task and a reader task.
    pub fn hopped(self) -> HoppedEcho {
        let (to_writer, mut requests) = tokio::sync::mpsc::channel::<[u8; FRAME_LEN]>(64);
        let (echoes, from_reader) = tokio::sync::mpsc::channel::<[u8; FRAME_LEN]>(64);
        let (mut send, mut recv) = (self.send, self.recv);
        tokio::spawn(async move {
            while let Some(frame) = requests.recv().await {
                if send.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            let mut echo = [0u8; FRAME_LEN];
            while recv.read_exact(&mut echo).await.is_ok() {
                if echoes.send(echo).await.is_err() {
                    return;
                }
            }
        });
        HoppedEcho {
            to_writer,
            from_reader,
        }
    }
}

impl HoppedEcho {
    /// Times each of `n` sequential round trips.
    ///
    /// # Errors
    /// The first failed round trip.
    pub async fn latencies(&mut self, n: u64) -> BenchResult<Vec<Duration>> {
        let mut out = Vec::with_capacity(usize::try_from(n)?);
        for i in 0..n {
            let start = Instant::now();
            let mut frame = [0u8; FRAME_LEN];
            frame[..PREFIX_LEN].copy_from_slice(&(PAYLOAD_LEN as u32).to_be_bytes());
            frame[PREFIX_LEN..].copy_from_slice(&payload(i));
            self.to_writer
                .send(frame)
                .await
                .map_err(|_| "writer gone")?;
            let echo = self.from_reader.recv().await.ok_or("reader gone")?;
            if echo != frame {
                return Err("echo differs from the request".into());
            }
            out.push(start.elapsed());
        }
        Ok(out)
    }
}
