//! Handshake attacks against a real node on loopback.
//!
//! Each attacker is a raw `quinn` client (or server) built from the crate's own TLS
//! configuration, so it gets through TLS like a node would and then misbehaves in the one place
//! it is told to: it stays silent, stalls mid-hello, sends a frame instead of a hello, pipelines
//! a frame behind a bad hello, replays or reflects a proof, or opens streams without limit.
//!
//! Every test asserts three things:
//! - the attacker is cut off (or stalled) within the node's handshake time-out or a transport
//!   limit, with the close code it gets and, for a refused dialer, the node's
//!   `handshakes_refused` count; the time it took is measured (`--nocapture` prints it);
//! - nothing it sent reached an actor: the node serves a counting actor, and the first
//!   well-behaved ask afterwards sees a count of one (itself);
//! - a well-behaved node still connects and gets its ask answered afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor_core::{Actor, Context, Handler, Message};
use actor_remote::auth::{
    self, ClusterSecret, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, Hello, HelloReply,
    Rejection, Role,
};
use actor_remote::codec::{Frame, Target, encode_body, encode_frame};
use actor_remote::config::{AuthConfig, NodeConfig};
use actor_remote::handshake::close_code;
use actor_remote::tls::{Credentials, NodeTls, SERVER_NAME, TransportLimits};
use actor_remote::{Accepts, ConnectError, Node, RemoteActor, RemoteMessage};
use bytes::BytesMut;
use quinn::{Connection, ConnectionError, RecvStream, SendStream, VarInt};
use serde::{Deserialize, Serialize};

const SECRET: &str = "handshake-attacks-secret";
const CLUSTER: &str = "default";

/// The node's handshake time-out in these tests: short, so each attack is over quickly.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);

/// Scheduling slack on top of a deadline: two cores, shared with other test binaries.
const SLACK: Duration = Duration::from_millis(700);

/// How long an attacker that should already be cut off is waited for before the test fails.
const PATIENCE: Duration = Duration::from_secs(5);

/// The close code of a handshake that ran out of time.
const TIMED_OUT_CODES: [VarInt; 1] = [close_code::HANDSHAKE_TIMEOUT];

/// Counts every message it handles, so a test can prove nothing was dispatched.
struct Counter {
    handled: Arc<AtomicU64>,
}
impl Actor for Counter {}

/// Counts itself and answers with the number of messages handled so far.
#[derive(Serialize, Deserialize)]
struct Hit;
impl Message for Hit {
    type Reply = u64;
}
impl RemoteMessage for Hit {
    const TAG: &'static str = "test.attacks.hit.v1";
}
impl Handler<Hit> for Counter {
    async fn handle(&mut self, _msg: Hit, _ctx: &mut Context<Self>) -> u64 {
        self.handled.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl RemoteActor for Counter {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<Hit>();
    }
}

/// The node under attack, and how many messages its counter has handled.
struct Defender {
    node: Node,
    handled: Arc<AtomicU64>,
}

fn config(name: &str) -> NodeConfig {
    let mut config = NodeConfig::new(name, AuthConfig::Secret(SECRET.into()));
    config.limits.handshake_timeout_ms = HANDSHAKE_TIMEOUT.as_millis() as u64;
    config
}

/// Starts the node under attack, serving a [`Counter`] as `"counter"`.
async fn defender() -> Defender {
    let node = Node::start(config("defender"))
        .await
        .expect("defender starts");
    let handled = Arc::new(AtomicU64::new(0));
    let counter = node
        .system()
        .spawn_named(
            "counter",
            Counter {
                handled: Arc::clone(&handled),
            },
        )
        .await
        .expect("counter spawns");
    node.serve(&counter).expect("counter served");
    Defender { node, handled }
}

/// A valid-looking ask to the counter, as a well-behaved peer would send it once authenticated.
fn hit_frame() -> BytesMut {
    let body = encode_body(&Hit).expect("body encodes");
    let frame = Frame::ask(1, Target::Name("counter".into()), Hit::TAG, body);
    let mut wire = BytesMut::new();
    encode_frame(&frame, &mut wire).expect("frame encodes");
    wire
}

/// A raw QUIC client with the nodes' own TLS setup: it passes TLS, and nothing more on its own.
fn attacker() -> (quinn::Endpoint, quinn::ClientConfig) {
    let creds = Credentials::SharedSecret {
        secret: ClusterSecret::new(SECRET),
    };
    let client = NodeTls::new(&creds)
        .expect("attacker tls")
        .client_config(&TransportLimits::default())
        .expect("attacker client config");
    let endpoint =
        quinn::Endpoint::client((std::net::Ipv4Addr::LOCALHOST, 0).into()).expect("bind");
    (endpoint, client)
}

/// Dials the defender and completes TLS; returns the connection and when the dial started.
async fn dial_raw(defender: &Defender) -> (quinn::Endpoint, Connection, Instant) {
    let (endpoint, client) = attacker();
    let started = Instant::now();
    let conn = endpoint
        .connect_with(client, defender.node.local_addr(), SERVER_NAME)
        .expect("dial starts")
        .await
        .expect("TLS completes");
    (endpoint, conn, started)
}

/// This connection's exporter keying material, the input of its proof.
fn exporter(conn: &Connection) -> [u8; EXPORTER_LEN] {
    let mut out = [0; EXPORTER_LEN];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .expect("exporter");
    out
}

/// A hello with the right secret for `conn`, as a real node dialing it would send.
fn valid_hello(conn: &Connection, node: &str) -> Hello {
    let secret = ClusterSecret::new(SECRET);
    auth::make_hello(&secret, &exporter(conn), CLUSTER, node, 1, Role::Dialer)
}

/// Writes `bytes` with the handshake's u32 big-endian length prefix.
async fn write_blob(send: &mut SendStream, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("small blob");
    send.write_all(&len.to_be_bytes()).await.expect("write len");
    send.write_all(bytes).await.expect("write blob");
}

/// Reads the node's length-prefixed hello reply; `None` if the stream or connection ends first.
async fn read_reply(recv: &mut RecvStream) -> Option<HelloReply> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    recv.read_exact(&mut buf).await.ok()?;
    HelloReply::from_bytes(&buf).ok()
}

/// Sends `hello` on a new control stream of `conn` and returns the node's answer.
async fn send_hello(
    conn: &Connection,
    hello: &Hello,
) -> (SendStream, RecvStream, Option<HelloReply>) {
    let (mut send, mut recv) = conn.open_bi().await.expect("open control stream");
    write_blob(&mut send, &hello.to_bytes().expect("hello encodes")).await;
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut recv))
        .await
        .expect("the node answers the hello");
    (send, recv, reply)
}

/// Waits for the node to close `conn`; returns the time since `since` and the close code.
async fn closed_by_node(conn: &Connection, since: Instant) -> (Duration, VarInt) {
    let reason = tokio::time::timeout(PATIENCE, conn.closed())
        .await
        .expect("the node closes the connection");
    let elapsed = since.elapsed();
    match reason {
        ConnectionError::ApplicationClosed(close) => (elapsed, close.error_code),
        other => panic!("expected the node to close the connection, got {other}"),
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// A well-behaved node connects to the defender and its ask is answered; the answer is the number
/// of messages the counter has handled, this ask included.
async fn well_behaved_ask(defender: &Defender) -> u64 {
    let good = Node::start(config("good")).await.expect("good node starts");
    good.connect(defender.node.local_addr())
        .await
        .expect("a well-behaved node is still accepted");
    let counter = good
        .lookup_wait::<Counter>("counter", PATIENCE)
        .await
        .expect("the counter is visible");
    let answer = counter
        .ask(Hit)
        .await
        .expect("a well-behaved ask is answered");
    good.shutdown().await;
    answer
}

/// The node cut the peer off at its handshake time-out, with a time-out's close code.
fn assert_timed_out(elapsed: Duration, code: VarInt) {
    assert!(
        elapsed <= HANDSHAKE_TIMEOUT + SLACK,
        "cut off in time: {elapsed:?}"
    );
    assert!(TIMED_OUT_CODES.contains(&code), "code {code}");
}

/// The node counted exactly one refused handshake and dispatched nothing; then it stops.
async fn refused_once_then_unharmed(defender: Defender) {
    wait_for("the refusal to be counted", || {
        defender.node.stats().handshakes_refused == 1
    })
    .await;
    assert_unharmed(&defender).await;
    defender.node.shutdown().await;
}

/// The attack left nothing behind: no peer, no dispatched message, and the next well-behaved
/// ask is the first message the counter ever handles.
async fn assert_unharmed(defender: &Defender) {
    assert_eq!(
        defender.handled.load(Ordering::SeqCst),
        0,
        "nothing was dispatched"
    );
    assert!(
        !defender.node.peers().iter().any(|p| p.node != "good"),
        "no attacker is a peer: {:?}",
        defender.node.peers()
    );
    assert_eq!(
        well_behaved_ask(defender).await,
        1,
        "only the good ask was handled"
    );
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_closed_at_the_handshake_timeout() {
    let defender = defender().await;
    let (_endpoint, conn, started) = dial_raw(&defender).await;
    let (elapsed, code) = closed_by_node(&conn, started).await;
    println!("silent client: closed after {elapsed:?} with code {code}");
    assert!(
        elapsed >= HANDSHAKE_TIMEOUT - Duration::from_millis(50),
        "closed by the time-out, not before: {elapsed:?}"
    );
    assert_timed_out(elapsed, code);
    refused_once_then_unharmed(defender).await;
}

#[tokio::test]
async fn a_client_that_stalls_mid_hello_is_closed_at_the_handshake_timeout() {
    let defender = defender().await;
    let (_endpoint, conn, started) = dial_raw(&defender).await;
    let hello = valid_hello(&conn, "slow").to_bytes().expect("encodes");
    let (mut send, _recv) = conn.open_bi().await.expect("open control stream");
    // The length and half the hello, then nothing (slowloris).
    send.write_all(&(hello.len() as u32).to_be_bytes())
        .await
        .expect("write len");
    send.write_all(&hello[..hello.len() / 2])
        .await
        .expect("write half");
    let (elapsed, code) = closed_by_node(&conn, started).await;
    println!("stalled hello: closed after {elapsed:?} with code {code}");
    assert_timed_out(elapsed, code);
    refused_once_then_unharmed(defender).await;
}

#[tokio::test]
async fn a_frame_sent_instead_of_the_hello_is_refused_and_never_dispatched() {
    let defender = defender().await;
    let (_endpoint, conn, started) = dial_raw(&defender).await;
    let (mut send, mut recv) = conn.open_bi().await.expect("open control stream");
    // The frame's own length prefix stands where the hello's would.
    send.write_all(&hit_frame()).await.expect("write frame");
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut recv))
        .await
        .expect("the node answers");
    let (elapsed, code) = closed_by_node(&conn, started).await;
    println!("frame as hello: reply {reply:?}, closed after {elapsed:?} with code {code}");
    assert!(
        matches!(reply, Some(HelloReply::Rejected(_))),
        "refused with a reason: {reply:?}"
    );
    assert!(elapsed < HANDSHAKE_TIMEOUT, "refused at once: {elapsed:?}");
    assert_ne!(code, close_code::NORMAL, "closed as refused");
    refused_once_then_unharmed(defender).await;
}

#[tokio::test]
async fn a_frame_on_a_second_stream_before_any_hello_is_never_dispatched() {
    let defender = defender().await;
    let (_endpoint, conn, started) = dial_raw(&defender).await;
    // The control stream stays silent. Before the hello the node grants one stream only, so
    // a data stream cannot even be opened: the attempt waits until the node cuts the peer off.
    let (_control_send, _control_recv) = conn.open_bi().await.expect("open control stream");
    let opened = tokio::time::timeout(PATIENCE, conn.open_bi())
        .await
        .expect("the open ends when the node closes");
    assert!(opened.is_err(), "no second stream before the hello");
    let (elapsed, code) = closed_by_node(&conn, started).await;
    println!("frame on a second stream: closed after {elapsed:?} with code {code}");
    assert_timed_out(elapsed, code);
    refused_once_then_unharmed(defender).await;
}

#[tokio::test]
async fn a_frame_pipelined_behind_a_hello_with_the_wrong_secret_is_never_dispatched() {
    let defender = defender().await;
    let (_endpoint, conn, started) = dial_raw(&defender).await;
    let wrong = auth::make_hello(
        &ClusterSecret::new("not the cluster secret"),
        &exporter(&conn),
        CLUSTER,
        "intruder",
        1,
        Role::Dialer,
    );
    let (mut control, mut control_recv) = conn.open_bi().await.expect("open control stream");
    // The frame is on its way before the hello is judged: right behind the hello, on the
    // one stream the node grants before authentication.
    write_blob(&mut control, &wrong.to_bytes().expect("encodes")).await;
    control.write_all(&hit_frame()).await.expect("write frame");
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut control_recv))
        .await
        .expect("the node answers");
    let (elapsed, code) = closed_by_node(&conn, started).await;
    println!("pipelined frame: reply {reply:?}, closed after {elapsed:?} with code {code}");
    assert_eq!(reply, Some(HelloReply::Rejected(Rejection::Unauthorized)));
    assert_eq!(code, close_code::UNAUTHORIZED);
    assert!(elapsed < HANDSHAKE_TIMEOUT, "refused at once: {elapsed:?}");
    refused_once_then_unharmed(defender).await;
}

#[tokio::test]
async fn a_proof_replayed_from_another_connection_is_refused_as_unauthorized() {
    let defender = defender().await;
    // Connection 1 carries a genuine hello, which the node accepts.
    let (_endpoint1, first, _) = dial_raw(&defender).await;
    let captured = valid_hello(&first, "intruder");
    let (_send, _recv, reply) = send_hello(&first, &captured).await;
    assert!(
        matches!(reply, Some(HelloReply::Accepted(_))),
        "the captured hello is genuine: {reply:?}"
    );

    // The same bytes on connection 2 prove nothing: the proof is bound to connection 1.
    let (_endpoint2, second, started) = dial_raw(&defender).await;
    let (_send2, _recv2, reply) = send_hello(&second, &captured).await;
    let (elapsed, code) = closed_by_node(&second, started).await;
    println!("replayed proof: reply {reply:?}, closed after {elapsed:?} with code {code}");
    assert_eq!(reply, Some(HelloReply::Rejected(Rejection::Unauthorized)));
    assert_eq!(code, close_code::UNAUTHORIZED);
    assert!(elapsed < HANDSHAKE_TIMEOUT, "refused at once: {elapsed:?}");
    wait_for("the refusal to be counted", || {
        defender.node.stats().handshakes_refused == 1
    })
    .await;

    first.close(close_code::NORMAL, b"done");
    wait_for("the genuine connection to be gone", || {
        defender.node.peers().is_empty()
    })
    .await;
    assert_unharmed(&defender).await;
    defender.node.shutdown().await;
}

#[tokio::test]
async fn the_acceptors_proof_sent_back_on_another_connection_is_refused() {
    let defender = defender().await;
    let (_endpoint1, first, _) = dial_raw(&defender).await;
    let (_send, _recv, reply) = send_hello(&first, &valid_hello(&first, "intruder")).await;
    let Some(HelloReply::Accepted(nodes_own)) = reply else {
        panic!("the genuine hello is accepted: {reply:?}");
    };

    let (_endpoint2, second, started) = dial_raw(&defender).await;
    let (_send2, _recv2, reply) = send_hello(&second, &nodes_own).await;
    let (elapsed, code) = closed_by_node(&second, started).await;
    println!("reflected proof: reply {reply:?}, closed after {elapsed:?} with code {code}");
    assert_eq!(reply, Some(HelloReply::Rejected(Rejection::Unauthorized)));
    assert_eq!(code, close_code::UNAUTHORIZED);
    assert!(elapsed < HANDSHAKE_TIMEOUT, "refused at once: {elapsed:?}");

    first.close(close_code::NORMAL, b"done");
    wait_for("the genuine connection to be gone", || {
        defender.node.peers().is_empty()
    })
    .await;
    assert_unharmed(&defender).await;
    defender.node.shutdown().await;
}

/// An impostor acceptor: a raw quinn server with the nodes' TLS setup, which the defender dials.
fn impostor() -> quinn::Endpoint {
    let creds = Credentials::SharedSecret {
        secret: ClusterSecret::new("the impostor does not know the secret"),
    };
    let server = NodeTls::new(&creds)
        .expect("impostor tls")
        .server_config(&TransportLimits::default())
        .expect("impostor server config");
    quinn::Endpoint::server(server, (std::net::Ipv4Addr::LOCALHOST, 0).into()).expect("bind")
}

#[tokio::test]
async fn a_dialers_own_proof_reflected_back_by_the_acceptor_is_refused() {
    let defender = defender().await;
    let impostor = impostor();
    let addr = impostor.local_addr().expect("impostor addr");
    let reflect = async {
        let conn = impostor
            .accept()
            .await
            .expect("the defender dials")
            .await
            .expect("TLS completes");
        let (mut send, mut recv) = conn.accept_bi().await.expect("control stream");
        let mut len = [0u8; 4];
        recv.read_exact(&mut len).await.expect("hello length");
        let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
        recv.read_exact(&mut hello).await.expect("hello");
        let theirs = Hello::from_bytes(&hello).expect("a hello");
        let reply = HelloReply::Accepted(theirs).to_bytes().expect("encodes");
        write_blob(&mut send, &reply).await;
        conn.closed().await
    };
    let started = Instant::now();
    let (dialed, closed) = tokio::join!(defender.node.connect(addr), reflect);
    let elapsed = started.elapsed();
    println!("reflected to the dialer: {dialed:?}, impostor saw {closed} after {elapsed:?}");
    assert!(
        matches!(
            dialed,
            Err(ConnectError::PeerRefused {
                source: auth::AuthError::BadProof,
                ..
            })
        ),
        "{dialed:?}"
    );
    assert!(
        matches!(&closed, ConnectionError::ApplicationClosed(c) if c.error_code == close_code::UNAUTHORIZED),
        "{closed}"
    );
    assert!(elapsed < HANDSHAKE_TIMEOUT + SLACK, "{elapsed:?}");
    assert_unharmed(&defender).await;
    defender.node.shutdown().await;
}

#[tokio::test]
async fn a_silent_acceptor_fails_the_dial_at_the_handshake_timeout() {
    let defender = defender().await;
    let impostor = impostor();
    let addr = impostor.local_addr().expect("impostor addr");
    let hold = async {
        let conn = impostor
            .accept()
            .await
            .expect("the defender dials")
            .await
            .expect("TLS completes");
        let _control = conn.accept_bi().await;
        conn.closed().await
    };
    let started = Instant::now();
    let dialed = tokio::select! {
        dialed = defender.node.connect(addr) => dialed,
        _ = hold => panic!("the impostor's connection ended before the dial did"),
    };
    let elapsed = started.elapsed();
    println!("silent acceptor: {dialed:?} after {elapsed:?}");
    assert!(
        matches!(dialed, Err(ConnectError::Timeout { .. })),
        "{dialed:?}"
    );
    assert!(elapsed <= HANDSHAKE_TIMEOUT + SLACK, "{elapsed:?}");
    assert_unharmed(&defender).await;
    defender.node.shutdown().await;
}

/// Opens streams with `open` until one does not open within `wait`; returns how many opened.
async fn open_until_stalled<S, F>(
    mut open: impl FnMut() -> F,
    wait: Duration,
    cap: usize,
) -> (usize, Vec<S>)
where
    F: std::future::Future<Output = Result<S, ConnectionError>>,
{
    let mut streams = Vec::new();
    while streams.len() < cap {
        match tokio::time::timeout(wait, open()).await {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(e)) => panic!("opening a stream failed: {e}"),
            Err(_) => break,
        }
    }
    (streams.len(), streams)
}

#[tokio::test]
async fn streams_opened_before_the_hello_are_bounded_and_cut_off_at_the_timeout() {
    let limits = TransportLimits::default();
    let defender = defender().await;
    let (_endpoint, conn, started) = dial_raw(&defender).await;
    let wait = Duration::from_millis(20);
    let cap = 10 * limits.max_concurrent_bidi_streams as usize;
    let (bidi, mut bidi_streams) = open_until_stalled(|| conn.open_bi(), wait, cap).await;
    let (uni, mut uni_streams) = open_until_stalled(|| conn.open_uni(), wait, cap).await;
    // Each stream carries a byte, so the node really sees it.
    for (send, _) in &mut bidi_streams {
        send.write_all(b"x").await.expect("write");
    }
    for send in &mut uni_streams {
        send.write_all(b"x").await.expect("write");
    }
    println!("before the hello: {bidi} bidirectional and {uni} unidirectional streams opened");
    // One stream (for the hello) until the peer has proven it belongs.
    assert_eq!(bidi, 1);
    assert_eq!(uni, 0);

    // The next stream waits for credit the node never gives, until the node cuts the peer off.
    let next = tokio::time::timeout(PATIENCE, conn.open_bi())
        .await
        .expect("the stalled open ends when the node closes");
    let elapsed = started.elapsed();
    println!(
        "stalled open ended after {elapsed:?}: {:?}",
        next.as_ref().err()
    );
    assert!(next.is_err(), "no stream beyond the limit");
    let (elapsed, code) = closed_by_node(&conn, started).await;
    assert_timed_out(elapsed, code);
    refused_once_then_unharmed(defender).await;
}

#[tokio::test]
async fn an_authenticated_peer_cannot_hold_more_streams_than_the_limit() {
    let limits = TransportLimits::default();
    let defender = defender().await;
    let (_endpoint, conn, _) = dial_raw(&defender).await;
    let (_control, _control_recv, reply) = send_hello(&conn, &valid_hello(&conn, "greedy")).await;
    assert!(matches!(reply, Some(HelloReply::Accepted(_))), "{reply:?}");
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let tasks_before = tasks();

    // Every data stream gets a frame prefix and no more, so the node holds it open, reading.
    let wait = Duration::from_millis(20);
    let cap = 10 * limits.max_concurrent_bidi_streams as usize;
    let (opened, mut streams) = open_until_stalled(|| conn.open_bi(), wait, cap).await;
    for (send, _) in &mut streams {
        send.write_all(&[0, 0]).await.expect("write");
    }
    // The control stream is one of the peer's bidirectional streams.
    assert_eq!(opened + 1, limits.max_concurrent_bidi_streams as usize);
    let (uni, _uni_streams) = open_until_stalled(|| conn.open_uni(), wait, cap).await;
    assert_eq!(uni, limits.max_concurrent_uni_streams as usize);

    // One more stays stalled for as long as the others are held; meanwhile the node has taken
    // up every stream it allowed.
    let started = Instant::now();
    let next = tokio::time::timeout(2 * HANDSHAKE_TIMEOUT, conn.open_bi()).await;
    assert!(next.is_err(), "no stream beyond the limit");
    let grown = tasks().saturating_sub(tasks_before);
    println!(
        "after the hello: {opened} data + {uni} unidirectional streams, the next stalled for {:?}; \
         node tasks grew by {grown}",
        started.elapsed()
    );
    // At most a reader and a reply writer per stream it was allowed, however long it tries.
    assert!(grown <= 2 * opened + 8, "tasks grew by {grown}");

    // The limit is per connection: a well-behaved node is served meanwhile.
    assert_eq!(well_behaved_ask(&defender).await, 1);
    conn.close(close_code::NORMAL, b"done");
    defender.node.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_silent_clients_is_cut_off_while_a_well_behaved_peer_gets_in() {
    const FLOOD: usize = 32;
    let defender = defender().await;
    let (endpoint, client) = attacker();
    let dials: Vec<_> = (0..FLOOD)
        .map(|_| {
            endpoint
                .connect_with(client.clone(), defender.node.local_addr(), SERVER_NAME)
                .expect("dial starts")
        })
        .collect();
    let mut flood = Vec::with_capacity(FLOOD);
    for dial in dials {
        let conn = dial.await.expect("TLS completes");
        // The node's clock started before TLS did, so this bounds its time-out from above.
        let established = Instant::now();
        flood.push(tokio::spawn(async move {
            closed_by_node(&conn, established).await
        }));
    }
    // While all of them wait to be cut off, a well-behaved node is served.
    assert_eq!(well_behaved_ask(&defender).await, 1);
    let mut slowest = Duration::ZERO;
    for silent in flood {
        let (elapsed, code) = silent.await.expect("each silent client is cut off");
        assert!(TIMED_OUT_CODES.contains(&code), "code {code}");
        slowest = slowest.max(elapsed);
    }
    println!("{FLOOD} silent clients: the last was cut off {slowest:?} after its TLS handshake");
    assert!(
        slowest <= HANDSHAKE_TIMEOUT + SLACK,
        "cut off in time: {slowest:?}"
    );
    wait_for("every refusal to be counted", || {
        defender.node.stats().handshakes_refused == FLOOD as u64
    })
    .await;
    defender.node.shutdown().await;
}

/// Bytes the node may be made to hold for a peer that has not proven anything yet: its hello,
/// with room to spare.
const PRE_AUTH_BUFFER_BUDGET: usize = 1 << 20;

/// Writes into every stream `conn` may open, without ever sending a hello, until the node
/// grants no more credit, cuts the peer off, or `budget` is exceeded; returns the bytes the node
/// granted (and must buffer, since before the hello it reads none of them).
async fn credit_granted_before_the_hello(conn: &Connection, budget: usize) -> usize {
    let stall = Duration::from_millis(10);
    let chunk = vec![0u8; 64 * 1024];
    // The control stream stays silent: a hello is never sent.
    let Ok(Ok(_control)) = tokio::time::timeout(stall, conn.open_bi()).await else {
        return 0;
    };
    let mut granted = 0;
    for bidirectional in [false, true] {
        loop {
            let open = async {
                if bidirectional {
                    conn.open_bi().await.map(|(send, _)| send)
                } else {
                    conn.open_uni().await
                }
            };
            let mut send = match tokio::time::timeout(stall, open).await {
                Ok(Ok(send)) => send,
                Ok(Err(_)) => return granted,
                Err(_) => break,
            };
            loop {
                match tokio::time::timeout(stall, send.write(&chunk)).await {
                    Ok(Ok(n)) => granted += n,
                    Ok(Err(_)) => return granted,
                    Err(_) => break,
                }
                if granted > budget {
                    return granted;
                }
            }
        }
    }
    granted
}

#[tokio::test]
async fn an_unauthenticated_peer_cannot_make_the_node_buffer_more_than_a_hello() {
    let defender = defender().await;
    let (endpoint, client) = attacker();
    let mut transport = quinn::TransportConfig::default();
    // The attacker's own send buffer must not be what stops it.
    transport.send_window(64 << 20);
    let mut client = client;
    client.transport_config(Arc::new(transport));
    let conn = endpoint
        .connect_with(client, defender.node.local_addr(), SERVER_NAME)
        .expect("dial starts")
        .await
        .expect("TLS completes");
    let granted = credit_granted_before_the_hello(&conn, PRE_AUTH_BUFFER_BUDGET).await;
    println!("granted {granted} bytes of credit before any hello");
    assert!(
        granted <= PRE_AUTH_BUFFER_BUDGET,
        "the node granted {granted} bytes to a peer that proved nothing"
    );
    conn.close(close_code::NORMAL, b"done");
    assert_unharmed(&defender).await;
    defender.node.shutdown().await;
}
