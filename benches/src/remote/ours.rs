//! Ours: two [`Node`]s in this process, node B serving a [`Sink`] actor, node A holding a
//! plain [`ActorRef`] to it found by [`Node::lookup`].
//!
//! Everything a remote send costs is in the timed part: erasing and encoding the message,
//! the lane queue, the writer's batching, QUIC, the reader's decoding and dispatch by tag, and
//! delivery into the actor's mailbox.

use std::time::{Duration, Instant};

use actor_core::{Actor, ActorRef, Context, Handler, Message};
use actor_remote::config::{AuthConfig, NodeConfig};
use actor_remote::{Accepts, Node, NodeStats, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

use super::{PAYLOAD_LEN, TellRun, check_delivered, payload};
use crate::BenchResult;

/// The name node B serves the [`Sink`] under.
pub const SINK_NAME: &str = "bench.sink";

/// How long node A waits for the sink's name to reach it through the cluster registry.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Counts the [`Blob64`]s it is told, hands the count out on [`TakeCount`], echoes
/// [`Echo64`].
#[derive(Debug, Default)]
pub struct Sink {
    count: u64,
}

impl Actor for Sink {}

/// A 64-byte payload, told. Serialized as bytes (`serde_bytes`): bincode writes a one-byte
/// length and copies the 64 bytes, as a user sending a binary payload would have it, rather
/// than serde's element-by-element tuple encoding of arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob64 {
    #[serde(with = "serde_bytes")]
    bytes: [u8; PAYLOAD_LEN],
}

impl Blob64 {
    /// The payload of message `i`, the same bytes the baseline sends.
    pub fn new(i: u64) -> Self {
        Blob64 { bytes: payload(i) }
    }
}

impl Message for Blob64 {
    type Reply = ();
}

impl RemoteMessage for Blob64 {
    const TAG: &'static str = "bench.sink.blob64.v1";
}

/// Asks for the number of [`Blob64`]s received since the last `TakeCount`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TakeCount;

impl Message for TakeCount {
    type Reply = u64;
}

impl RemoteMessage for TakeCount {
    const TAG: &'static str = "bench.sink.take_count.v1";
}

/// Asks for its 64-byte payload back.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Echo64(pub Blob64);

impl Message for Echo64 {
    type Reply = Blob64;
}

impl RemoteMessage for Echo64 {
    const TAG: &'static str = "bench.sink.echo64.v1";
}

impl Handler<Blob64> for Sink {
    async fn handle(&mut self, msg: Blob64, _ctx: &mut Context<Self>) {
        std::hint::black_box(msg);
        self.count += 1;
    }
}

impl Handler<TakeCount> for Sink {
    async fn handle(&mut self, _msg: TakeCount, _ctx: &mut Context<Self>) -> u64 {
        std::mem::take(&mut self.count)
    }
}

impl Handler<Echo64> for Sink {
    async fn handle(&mut self, msg: Echo64, _ctx: &mut Context<Self>) -> Blob64 {
        msg.0
    }
}

impl RemoteActor for Sink {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<Blob64>()
            .message::<TakeCount>()
            .message::<Echo64>();
    }
}

/// The secret of the bench nodes (loopback only; a child serving node uses the same).
const SECRET: &str = "bench secret, loopback only";

/// Starts node B on 127.0.0.1 (any port) with default limits, serving a [`Sink`] as
/// [`SINK_NAME`]; it runs beside node A ([`NodePair::start`]) or in a process of its own
/// ([`NodePair::connect`]).
///
/// # Errors
/// When the node cannot start or the sink cannot be served.
pub async fn serve_sink() -> BenchResult<Node> {
    let b = Node::start(NodeConfig::new("b", AuthConfig::Secret(SECRET.into()))).await?;
    let served = b.system().spawn_named(SINK_NAME, Sink::default()).await?;
    b.serve(&served)?;
    Ok(b)
}

/// Node A, connected to node B, which serves a [`Sink`] as [`SINK_NAME`].
#[derive(Debug)]
pub struct NodePair {
    a: Node,
    /// Node B when it runs in this process.
    b: Option<Node>,
    sink: ActorRef<Sink>,
}

impl NodePair {
    /// Starts both nodes on 127.0.0.1 (any port) with default limits, serves the sink on B,
    /// connects A to B and looks the sink up from A (waiting for the name to reach A).
    ///
    /// # Errors
    /// When a node cannot start, the connection or the look-up fails.
    pub async fn start() -> BenchResult<Self> {
        let b = serve_sink().await?;
        let mut pair = Self::connect(b.local_addr()).await?;
        pair.b = Some(b);
        Ok(pair)
    }

    /// Starts node A, connects it to the node B (see [`serve_sink`]) at `addr` and looks the
    /// sink up.
    ///
    /// # Errors
    /// When the node cannot start, the connection or the look-up fails.
    pub async fn connect(addr: std::net::SocketAddr) -> BenchResult<Self> {
        let a = Node::start(NodeConfig::new("a", AuthConfig::Secret(SECRET.into()))).await?;
        a.connect(addr).await?;
        let sink = a.lookup_wait::<Sink>(SINK_NAME, LOOKUP_TIMEOUT).await?;
        Ok(Self { a, b: None, sink })
    }

    /// Node A's ref to the sink on node B.
    pub fn sink(&self) -> &ActorRef<Sink> {
        &self.sink
    }

    /// Node A's transport counters (the sending side).
    pub fn sender_stats(&self) -> NodeStats {
        self.a.stats()
    }

    /// Node B's transport counters (the receiving side), when B runs in this process.
    pub fn receiver_stats(&self) -> Option<NodeStats> {
        self.b.as_ref().map(Node::stats)
    }

    /// One sender: times `n` tells of a [`Blob64`] and one [`TakeCount`] ask.
    ///
    /// # Errors
    /// When a send fails or the sink counted a different number.
    pub async fn tell(&self, n: u64) -> BenchResult<TellRun> {
        let start = Instant::now();
        for i in 0..n {
            self.sink.tell(Blob64::new(i)).await?;
        }
        let delivered = self.sink.ask(TakeCount).await?;
        let elapsed = start.elapsed();
        check_delivered(delivered, n)?;
        Ok(TellRun { elapsed, delivered })
    }

    /// Several senders: `senders` tasks each tell `per_sender` [`Blob64`]s to the same sink;
    /// once all are done, one [`TakeCount`] ask. Times all of it.
    ///
    /// # Errors
    /// When a send fails or the sink counted a different number.
    pub async fn tell_concurrent(&self, senders: usize, per_sender: u64) -> BenchResult<TellRun> {
        let sent = per_sender * senders as u64;
        let start = Instant::now();
        let tasks: Vec<_> = (0..senders)
            .map(|_| {
                let sink = self.sink.clone();
                tokio::spawn(async move {
                    for i in 0..per_sender {
                        sink.tell(Blob64::new(i)).await?;
                    }
                    BenchResult::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let delivered = self.sink.ask(TakeCount).await?;
        let elapsed = start.elapsed();
        check_delivered(delivered, sent)?;
        Ok(TellRun { elapsed, delivered })
    }

    /// One ask of an [`Echo64`], checking the payload came back.
    ///
    /// # Errors
    /// When the ask fails or the payload differs.
    pub async fn round_trip(&self, i: u64) -> BenchResult<()> {
        let blob = Blob64::new(i);
        if self.sink.ask(Echo64(blob)).await? == blob {
            Ok(())
        } else {
            Err("echo differs from the request".into())
        }
    }

    /// Times each of `n` sequential round trips.
    ///
    /// # Errors
    /// The first failed round trip.
    pub async fn latencies(&self, n: u64) -> BenchResult<Vec<Duration>> {
        let mut out = Vec::with_capacity(usize::try_from(n)?);
        for i in 0..n {
            let start = Instant::now();
            self.round_trip(i).await?;
            out.push(start.elapsed());
        }
        Ok(out)
    }

    /// Shuts node A down, and node B if it runs here.
    pub async fn shutdown(self) {
        self.a.shutdown().await;
        if let Some(b) = self.b {
            b.shutdown().await;
        }
    }
}
