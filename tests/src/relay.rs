//! [`Relay`]: a fault-injecting UDP relay that sits between two nodes on loopback.
//!
//! A node that should reach its peer through faults dials the relay's [`addr`](Relay::addr)
//! instead of the peer's. The relay forwards each datagram from a client to its one upstream
//! address, and each datagram the upstream sends back to that client. Every client address
//! gets an upstream socket of its own, so the peer sees one steady address per client and
//! QUIC one consistent 4-tuple per connection.
//!
//! The client side listens on `127.0.0.1` unless told otherwise
//! ([`listen`](RelayBuilder::listen)); upstream sockets bind the loopback address of the
//! upstream's family. A relay can therefore join an IPv6 client to an IPv4 upstream, which
//! makes it the only way between the two: a socket bound to `::1` cannot send to
//! `127.0.0.1`, nor the other way round.
//!
//! Faults are set per direction at run time and apply to a datagram when it reaches the
//! relay:
//!
//! | fault | set with | what happens to a datagram |
//! | --- | --- | --- |
//! | loss | [`set_loss`](Relay::set_loss) | dropped with the given probability, drawn from a seeded RNG per direction |
//! | delay | [`set_delay`](Relay::set_delay) | sent that much later |
//! | blackhole | [`blackhole`](Relay::blackhole) | dropped, all of them |
//! | none | [`heal`](Relay::heal) | forwarded at once |
//!
//! Guarantees:
//! - **Order**: datagrams of one direction leave in the order they arrived (a delay holds
//!   the queue behind it; it never reorders).
//! - **Repeatable loss**: with the same [seed](RelayBuilder::seed), the same sequence of
//!   datagrams in one direction meets the same drops, whatever the other direction does.
//! - **Bounded**: at most [`queue_capacity`](RelayBuilder::queue_capacity) datagrams wait per
//!   direction (more are dropped and counted as `overflowed`); at most
//!   [`max_sessions`](RelayBuilder::max_sessions) clients are served (more are refused and
//!   counted); one receive buffer per socket.
//! - **Gone with its value**: dropping the [`Relay`] ends every one of its tasks, which
//!   releases its sockets.
//!
//! ```
//! use std::time::Duration;
//! use tests::relay::{Direction, Relay};
//! use tokio::net::UdpSocket;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = UdpSocket::bind("127.0.0.1:0").await?;
//! let relay = Relay::builder(server.local_addr()?).seed(7).start().await?;
//! let client = UdpSocket::bind("127.0.0.1:0").await?;
//! client.connect(relay.addr()).await?;
//!
//! client.send(b"hello").await?;
//! let mut buf = [0; 16];
//! let (len, _) = server.recv_from(&mut buf).await?;
//! assert_eq!(&buf[..len], b"hello");
//!
//! relay.blackhole(Direction::ToUpstream);
//! client.send(b"lost").await?;
//! while relay.stats().to_upstream.received < 2 {
//!     tokio::time::sleep(Duration::from_millis(1)).await;
//! }
//! assert_eq!(relay.stats().to_upstream.blackholed, 1);
//! relay.heal();
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Default [`RelayBuilder::queue_capacity`]: datagrams waiting per direction.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// Default [`RelayBuilder::max_sessions`]: client addresses served.
pub const DEFAULT_MAX_SESSIONS: usize = 16;
/// Default [`RelayBuilder::seed`].
pub const DEFAULT_SEED: u64 = 0x5eed;

/// The largest UDP payload; one receive buffer of this size per socket.
const MAX_DATAGRAM: usize = 65_535;

/// Which way the datagrams a fault applies to travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the clients to the upstream address.
    ToUpstream,
    /// From the upstream address back to the clients.
    ToClient,
    /// Both ways.
    Both,
}

impl Direction {
    fn ways(self) -> &'static [Way] {
        match self {
            Direction::ToUpstream => &[Way::ToUpstream],
            Direction::ToClient => &[Way::ToClient],
            Direction::Both => &[Way::ToUpstream, Way::ToClient],
        }
    }
}

/// One of the two directions, as an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ToUpstream = 0,
    ToClient = 1,
}

/// What happened to the datagrams of one direction, counted since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams that reached the relay.
    pub received: u64,
    /// Datagrams sent on.
    pub forwarded: u64,
    /// Datagrams dropped by the loss fault.
    pub lost: u64,
    /// Datagrams dropped by a blackhole.
    pub blackholed: u64,
    /// Datagrams dropped because the queue was full.
    pub overflowed: u64,
    /// Datagrams the socket refused to send.
    pub send_failed: u64,
}

/// A snapshot of a relay's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Client to upstream.
    pub to_upstream: DirectionStats,
    /// Upstream to client.
    pub to_client: DirectionStats,
    /// Client addresses served.
    pub sessions: u64,
    /// Datagrams from client addresses beyond `max_sessions`, dropped.
    pub refused: u64,
}

/// How to start a [`Relay`]: `Relay::builder(upstream).seed(7).start().await`.
#[derive(Debug, Clone)]
pub struct RelayBuilder {
    upstream: SocketAddr,
    listen: SocketAddr,
    seed: u64,
    queue_capacity: usize,
    max_sessions: usize,
}

impl RelayBuilder {
    /// The address the clients send to (default `127.0.0.1:0`, any free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The seed of the loss RNGs (default [`DEFAULT_SEED`]): the same seed drops the same
    /// datagrams of the same sequence.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Datagrams that may wait per direction (default [`DEFAULT_QUEUE_CAPACITY`], at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Client addresses served (default [`DEFAULT_MAX_SESSIONS`]).
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// Binds the client side and starts forwarding, without faults.
    ///
    /// # Errors
    /// The socket could not be bound.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub async fn start(self) -> io::Result<Relay> {
        let client_side = Arc::new(UdpSocket::bind(self.listen).await?);
        let addr = client_side.local_addr()?;
        let shared = Arc::new(Shared {
            faults: [
                Mutex::new(Faults::new(StdRng::seed_from_u64(self.seed))),
                // A stream of its own, so one direction's traffic does not shift the other's
                // drops.
                Mutex::new(Faults::new(StdRng::seed_from_u64(!self.seed))),
            ],
            counters: Default::default(),
            sessions: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let (stop_tx, stop) = watch::channel(());
        let (to_upstream, upstream_queue) = mpsc::channel(self.queue_capacity);
        let (to_client, client_queue) = mpsc::channel(self.queue_capacity);
        tokio::spawn(send_loop(
            Way::ToUpstream,
            upstream_queue,
            Arc::clone(&shared),
            stop.clone(),
        ));
        tokio::spawn(send_loop(
            Way::ToClient,
            client_queue,
            Arc::clone(&shared),
            stop.clone(),
        ));
        let clients = ClientSide {
            socket: client_side,
            upstream: self.upstream,
            max_sessions: self.max_sessions,
            shared: Arc::clone(&shared),
            to_upstream,
            to_client,
            stop,
        };
        tokio::spawn(clients.run());
        Ok(Relay {
            addr,
            upstream: self.upstream,
            shared,
            _stop: stop_tx,
        })
    }
}

/// A running fault-injecting UDP relay to one upstream address; see the module docs.
///
/// Dropping it stops all of its tasks and releases its sockets.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    /// Dropped with the relay: every task watches it and ends.
    _stop: watch::Sender<()>,
}

impl Relay {
    /// A relay to `upstream` with the default seed and bounds; see [`RelayBuilder`].
    pub fn builder(upstream: SocketAddr) -> RelayBuilder {
        RelayBuilder {
            upstream,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: DEFAULT_SEED,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Starts a relay to `upstream` with the defaults of [`Relay::builder`].
    ///
    /// # Errors
    /// The socket could not be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Relay> {
        Relay::builder(upstream).start().await
    }

    /// The address clients send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address datagrams are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Drops each datagram travelling `direction` with probability `fraction` (0 turns loss
    /// off).
    ///
    /// # Panics
    /// If `fraction` is not within `0.0..=1.0`.
    pub fn set_loss(&self, direction: Direction, fraction: f64) {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "a loss fraction is within 0..=1, not {fraction}"
        );
        self.update(direction, |f| f.loss = fraction);
    }

    /// Holds each datagram travelling `direction` for `delay` before sending it on (zero
    /// turns delay off). Datagrams already waiting keep their time.
    pub fn set_delay(&self, direction: Direction, delay: Duration) {
        self.update(direction, |f| f.delay = delay);
    }

    /// Drops every datagram travelling `direction` until [`heal`](Self::heal). Datagrams
    /// already waiting out a delay are still sent.
    pub fn blackhole(&self, direction: Direction) {
        self.update(direction, |f| f.blackholed = true);
    }

    /// Turns every fault off in both directions (the loss RNGs carry on where they were).
    pub fn heal(&self) {
        self.update(Direction::Both, |f| {
            f.loss = 0.0;
            f.delay = Duration::ZERO;
            f.blackholed = false;
        });
    }

    /// The counters so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            to_upstream: self.shared.counters[Way::ToUpstream as usize].snapshot(),
            to_client: self.shared.counters[Way::ToClient as usize].snapshot(),
            sessions: self.shared.sessions.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    fn update(&self, direction: Direction, change: impl Fn(&mut Faults)) {
        for way in direction.ways() {
            change(&mut self.shared.faults(*way));
        }
    }
}

/// The faults of one direction and its loss RNG.
#[derive(Debug)]
struct Faults {
    loss: f64,
    delay: Duration,
    blackholed: bool,
    rng: StdRng,
}

/// What the faults decided for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Blackholed,
    Lost,
    Send { delay: Duration },
}

impl Faults {
    fn new(rng: StdRng) -> Self {
        Faults {
            loss: 0.0,
            delay: Duration::ZERO,
            blackholed: false,
            rng,
        }
    }

    /// Decides the fate of the next datagram. One RNG draw per datagram while loss is on,
    /// so a seed gives the same drops for the same sequence.
    fn verdict(&mut self) -> Verdict {
        if self.blackholed {
            Verdict::Blackholed
        } else if self.loss > 0.0 && self.rng.random_bool(self.loss) {
            Verdict::Lost
        } else {
            Verdict::Send { delay: self.delay }
        }
    }
}

/// The counters of one direction.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    lost: AtomicU64,
    blackholed: AtomicU64,
    overflowed: AtomicU64,
    send_failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DirectionStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            received: read(&self.received),
            forwarded: read(&self.forwarded),
            lost: read(&self.lost),
            blackholed: read(&self.blackholed),
            overflowed: read(&self.overflowed),
            send_failed: read(&self.send_failed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the relay value and its tasks share.
#[derive(Debug)]
struct Shared {
    faults: [Mutex<Faults>; 2],
    counters: [Counters; 2],
    sessions: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    fn faults(&self, way: Way) -> std::sync::MutexGuard<'_, Faults> {
        self.faults[way as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `way`'s faults to a datagram that just arrived and queues it if it survives.
    fn admit(
        &self,
        way: Way,
        bytes: &[u8],
        via: &Arc<Destination>,
        queue: &mpsc::Sender<Outgoing>,
    ) {
        let counters = &self.counters[way as usize];
        bump(&counters.received);
        let verdict = self.faults(way).verdict();
        match verdict {
            Verdict::Blackholed => bump(&counters.blackholed),
            Verdict::Lost => bump(&counters.lost),
            Verdict::Send { delay } => {
                let outgoing = Outgoing {
                    due: Instant::now() + delay,
                    bytes: bytes.to_vec(),
                    via: Arc::clone(via),
                };
                if queue.try_send(outgoing).is_err() {
                    bump(&counters.overflowed);
                }
            }
        }
    }
}

/// A datagram waiting to be sent on.
#[derive(Debug)]
struct Outgoing {
    due: Instant,
    bytes: Vec<u8>,
    via: Arc<Destination>,
}

/// Where a direction's datagrams leave from and go to.
#[derive(Debug)]
enum Destination {
    /// A session's upstream socket, connected to the upstream address.
    Upstream(Arc<UdpSocket>),
    /// The client-facing socket, to one client.
    Client {
        socket: Arc<UdpSocket>,
        client: SocketAddr,
    },
}

impl Destination {
    async fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Destination::Upstream(socket) => socket.send(bytes).await,
            Destination::Client { socket, client } => socket.send_to(bytes, client).await,
        }
    }
}

/// Whether a receive error is the echo of an earlier send (an ICMP "port unreachable" on a
/// connected socket): worth carrying on after, unlike anything else.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// Sends one direction's queue on, each datagram when it is due, until the relay is dropped.
async fn send_loop(
    way: Way,
    mut queue: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) {
    let counters = &shared.counters[way as usize];
    loop {
        let outgoing = tokio::select! {
            _ = stop.changed() => return,
            next = queue.recv() => match next {
                Some(outgoing) => outgoing,
                None => return,
            },
        };
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep_until(outgoing.due) => {}
        }
        match outgoing.via.send(&outgoing.bytes).await {
            Ok(_) => bump(&counters.forwarded),
            Err(_) => bump(&counters.send_failed),
        }
    }
}

/// The client-facing socket's receive loop: opens a session per client address and queues
/// what the clients send.
struct ClientSide {
    socket: Arc<UdpSocket>,
    upstream: SocketAddr,
    max_sessions: usize,
    shared: Arc<Shared>,
    to_upstream: mpsc::Sender<Outgoing>,
    to_client: mpsc::Sender<Outgoing>,
    stop: watch::Receiver<()>,
}

impl ClientSide {
    async fn run(mut self) {
        let mut sessions: HashMap<SocketAddr, Arc<Destination>> = HashMap::new();
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            let received = tokio::select! {
                _ = self.stop.changed() => return,
                received = self.socket.recv_from(&mut buf) => received,
            };
            let (len, client) = match received {
                Ok(received) => received,
                Err(e) if is_transient(&e) => continue,
                Err(e) => {
                    tracing::warn!(relay = %self.socket_addr(), error = %e, "relay stops");
                    return;
                }
            };
            let upstream = match sessions.get(&client) {
                Some(upstream) => Arc::clone(upstream),
                None if sessions.len() >= self.max_sessions => {
                    bump(&self.shared.refused);
                    continue;
                }
                None => match self.open_session(client).await {
                    Ok(upstream) => {
                        sessions.insert(client, Arc::clone(&upstream));
                        upstream
                    }
                    Err(e) => {
                        tracing::warn!(%client, error = %e, "relay cannot open a session");
                        continue;
                    }
                },
            };
            self.shared
                .admit(Way::ToUpstream, &buf[..len], &upstream, &self.to_upstream);
        }
    }

    fn socket_addr(&self) -> String {
        self.socket
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string())
    }

    /// Binds and connects the upstream socket of `client` and starts its receive loop.
    async fn open_session(&self, client: SocketAddr) -> io::Result<Arc<Destination>> {
        let loopback = match self.upstream {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let socket = Arc::new(UdpSocket::bind((loopback, 0)).await?);
        socket.connect(self.upstream).await?;
        bump(&self.shared.sessions);
        let back = Arc::new(Destination::Client {
            socket: Arc::clone(&self.socket),
            client,
        });
        tokio::spawn(upstream_side(
            Arc::clone(&socket),
            back,
            Arc::clone(&self.shared),
            self.to_client.clone(),
            self.stop.clone(),
        ));
        Ok(Arc::new(Destination::Upstream(socket)))
    }
}

/// A session's upstream socket's receive loop: queues what the upstream sends back to the
/// session's client.
async fn upstream_side(
    socket: Arc<UdpSocket>,
    back: Arc<Destination>,
    shared: Arc<Shared>,
    to_client: mpsc::Sender<Outgoing>,
    mut stop: watch::Receiver<()>,
) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = stop.changed() => return,
            received = socket.recv(&mut buf) => received,
        };
        match received {
            Ok(len) => shared.admit(Way::ToClient, &buf[..len], &back, &to_client),
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "relay session stops");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a datagram that should arrive may take.
    const ARRIVAL: Duration = Duration::from_secs(2);
    /// How long to listen for a datagram that should not arrive.
    const SILENCE: Duration = Duration::from_millis(150);

    async fn socket() -> UdpSocket {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind")
    }

    /// A client socket connected to `relay`.
    async fn client_of(relay: &Relay) -> UdpSocket {
        let client = socket().await;
        client.connect(relay.addr()).await.expect("connect");
        client
    }

    /// The next datagram on `socket` and its sender, if one comes within `within`.
    async fn next(socket: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0; MAX_DATAGRAM];
        let (len, from) = tokio::time::timeout(within, socket.recv_from(&mut buf))
            .await
            .ok()?
            .expect("recv");
        buf.truncate(len);
        Some((buf, from))
    }

    /// Waits (bounded) until `relay` has handled `count` datagrams towards the upstream.
    async fn until_received(relay: &Relay, count: u64) {
        tokio::time::timeout(ARRIVAL, async {
            while relay.stats().to_upstream.received < count {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the relay receives what was sent");
    }

    /// Sends `0..count` (as 8-byte numbers) through a relay to `server` with loss `fraction`
    /// and the given seed, in small batches so no socket buffer overflows, and returns the
    /// numbers that arrived.
    async fn survivors(seed: u64, fraction: f64, count: u64) -> Vec<u64> {
        let server = socket().await;
        let relay = Relay::builder(server.local_addr().expect("addr"))
            .seed(seed)
            .start()
            .await
            .expect("relay");
        relay.set_loss(Direction::ToUpstream, fraction);
        let client = client_of(&relay).await;
        let mut arrived = Vec::new();
        for batch in (0..count).collect::<Vec<_>>().chunks(50) {
            for n in batch {
                client.send(&n.to_be_bytes()).await.expect("send");
            }
            until_received(&relay, batch[batch.len() - 1] + 1).await;
            let expected_forwarded =
                relay.stats().to_upstream.received - relay.stats().to_upstream.lost;
            while (arrived.len() as u64) < expected_forwarded {
                let (bytes, _) = next(&server, ARRIVAL).await.expect("a survivor arrives");
                arrived.push(u64::from_be_bytes(bytes.try_into().expect("8 bytes")));
            }
        }
        assert!(
            next(&server, SILENCE).await.is_none(),
            "nothing more arrives"
        );
        arrived
    }

    #[tokio::test]
    async fn datagrams_flow_both_ways_and_each_client_keeps_its_own_upstream_address() {
        let server = socket().await;
        let relay = Relay::start(server.local_addr().expect("addr"))
            .await
            .expect("relay");
        assert_eq!(relay.upstream(), server.local_addr().expect("addr"));
        let (one, two) = (client_of(&relay).await, client_of(&relay).await);

        let mut seen = Vec::new();
        for (client, text) in [(&one, "one"), (&two, "two"), (&one, "one again")] {
            client.send(text.as_bytes()).await.expect("send");
            let (bytes, from) = next(&server, ARRIVAL).await.expect("forwarded");
            assert_eq!(bytes, text.as_bytes());
            server.send_to(b"reply", from).await.expect("reply");
            let (reply, relayed_by) = next(client, ARRIVAL).await.expect("relayed back");
            assert_eq!(reply, b"reply");
            assert_eq!(relayed_by, relay.addr(), "replies come from the relay");
            seen.push(from);
        }
        assert_ne!(
            seen[0], seen[1],
            "each client has an upstream socket of its own"
        );
        assert_eq!(
            seen[0], seen[2],
            "a client's upstream address stays the same"
        );
        assert_eq!(relay.stats().sessions, 2);
        assert_eq!(relay.stats().to_upstream.forwarded, 3);
        assert_eq!(relay.stats().to_client.forwarded, 3);
    }

    #[tokio::test]
    async fn an_ipv6_client_reaches_an_ipv4_upstream_only_through_the_relay() {
        let server = socket().await;
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
        let relay = Relay::builder(server.local_addr().expect("addr"))
            .listen(v6)
            .start()
            .await
            .expect("relay");
        assert!(relay.addr().is_ipv6());
        let client = UdpSocket::bind(v6).await.expect("bind ::1");
        assert!(
            client
                .send_to(b"direct", server.local_addr().expect("addr"))
                .await
                .is_err(),
            "::1 cannot send to 127.0.0.1"
        );
        client.connect(relay.addr()).await.expect("connect");
        client.send(b"relayed").await.expect("send");
        let (bytes, from) = next(&server, ARRIVAL).await.expect("forwarded");
        assert_eq!(bytes, b"relayed");
        server.send_to(b"back", from).await.expect("reply");
        assert_eq!(
            next(&client, ARRIVAL).await.expect("relayed back").0,
            b"back"
        );
    }

    #[tokio::test]
    async fn loss_drops_about_the_fraction_asked_for_and_the_same_seed_drops_the_same() {
        const COUNT: u64 = 1_000;
        let first = survivors(42, 0.2, COUNT).await;
        let lost = COUNT - first.len() as u64;
        assert!((120..=280).contains(&lost), "lost {lost} of {COUNT} at 20%");
        assert!(
            first.windows(2).all(|w| w[0] < w[1]),
            "survivors keep their order"
        );
        assert_eq!(
            survivors(42, 0.2, COUNT).await,
            first,
            "same seed, same drops"
        );
        assert_ne!(
            survivors(43, 0.2, COUNT).await,
            first,
            "another seed, other drops"
        );
    }

    #[tokio::test]
    async fn a_delay_holds_datagrams_per_direction_and_keeps_their_order() {
        const DELAY: Duration = Duration::from_millis(100);
        let server = socket().await;
        let relay = Relay::start(server.local_addr().expect("addr"))
            .await
            .expect("relay");
        let client = client_of(&relay).await;
        relay.set_delay(Direction::ToUpstream, DELAY);
        let sent = Instant::now();
        for n in 0u8..10 {
            client.send(&[n]).await.expect("send");
        }
        let mut from = None;
        for n in 0u8..10 {
            let (bytes, sender) = next(&server, ARRIVAL).await.expect("arrives");
            assert_eq!(bytes, [n], "in order");
            from = Some(sender);
        }
        assert!(sent.elapsed() >= DELAY, "held {:?}", sent.elapsed());

        relay.set_delay(Direction::ToUpstream, Duration::ZERO);
        relay.set_delay(Direction::ToClient, DELAY);
        client.send(b"quick").await.expect("send");
        next(&server, DELAY / 2).await.expect("not held any more");
        let replied = Instant::now();
        server
            .send_to(b"slow", from.expect("a sender"))
            .await
            .expect("reply");
        next(&client, ARRIVAL).await.expect("the reply arrives");
        assert!(replied.elapsed() >= DELAY, "held {:?}", replied.elapsed());
    }

    #[tokio::test]
    async fn a_blackhole_drops_one_direction_or_both_until_healed() {
        let server = socket().await;
        let relay = Relay::start(server.local_addr().expect("addr"))
            .await
            .expect("relay");
        let client = client_of(&relay).await;
        client.send(b"open").await.expect("send");
        let (_, from) = next(&server, ARRIVAL).await.expect("forwarded");

        relay.blackhole(Direction::ToClient);
        client.send(b"up still works").await.expect("send");
        assert!(next(&server, ARRIVAL).await.is_some());
        server.send_to(b"down is cut", from).await.expect("send");
        assert!(next(&client, SILENCE).await.is_none());

        relay.blackhole(Direction::Both);
        client.send(b"up is cut").await.expect("send");
        assert!(next(&server, SILENCE).await.is_none());

        relay.heal();
        client.send(b"healed").await.expect("send");
        assert_eq!(
            next(&server, ARRIVAL).await.expect("forwarded").0,
            b"healed"
        );
        server.send_to(b"healed too", from).await.expect("send");
        assert_eq!(next(&client, ARRIVAL).await.expect("back").0, b"healed too");
        let stats = relay.stats();
        assert_eq!(stats.to_upstream.blackholed, 1);
        assert_eq!(stats.to_client.blackholed, 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_growing() {
        let server = socket().await;
        let relay = Relay::builder(server.local_addr().expect("addr"))
            .queue_capacity(8)
            .start()
            .await
            .expect("relay");
        relay.set_delay(Direction::ToUpstream, Duration::from_millis(300));
        let client = client_of(&relay).await;
        for n in 0u8..20 {
            client.send(&[n]).await.expect("send");
        }
        until_received(&relay, 20).await;
        let stats = relay.stats().to_upstream;
        // The send loop may hold one more, taken off the queue and waiting out its delay.
        assert!((11..=12).contains(&stats.overflowed), "{stats:?}");
        let mut arrived = Vec::new();
        while let Some((bytes, _)) = next(&server, Duration::from_secs(1)).await {
            arrived.extend(bytes);
        }
        assert_eq!(arrived.len() as u64, 20 - stats.overflowed);
        assert!(arrived.windows(2).all(|w| w[0] < w[1]), "{arrived:?}");
    }

    #[tokio::test]
    async fn clients_beyond_the_session_limit_are_refused() {
        let server = socket().await;
        let relay = Relay::builder(server.local_addr().expect("addr"))
            .max_sessions(1)
            .start()
            .await
            .expect("relay");
        let (one, two) = (client_of(&relay).await, client_of(&relay).await);
        one.send(b"first").await.expect("send");
        assert!(next(&server, ARRIVAL).await.is_some());
        two.send(b"second").await.expect("send");
        assert!(next(&server, SILENCE).await.is_none());
        assert_eq!(relay.stats().refused, 1);
        assert_eq!(relay.stats().sessions, 1);
    }

    #[tokio::test]
    async fn dropping_the_relay_ends_its_tasks_and_releases_its_sockets() {
        let server = socket().await;
        let relay = Relay::start(server.local_addr().expect("addr"))
            .await
            .expect("relay");
        let client = client_of(&relay).await;
        client.send(b"open a session").await.expect("send");
        let (_, session) = next(&server, ARRIVAL).await.expect("forwarded");
        let addrs = [relay.addr(), session];
        drop(relay);
        for addr in addrs {
            tokio::time::timeout(ARRIVAL, async {
                while UdpSocket::bind(addr).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{addr} is released"));
        }
    }

    #[tokio::test]
    #[should_panic(expected = "within 0..=1")]
    async fn a_loss_fraction_outside_zero_to_one_is_refused() {
        let relay = Relay::start("127.0.0.1:9".parse().expect("addr"))
            .await
            .expect("relay");
        relay.set_loss(Direction::Both, 1.5);
    }
}
