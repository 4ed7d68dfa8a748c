//! [`NodeArgs`]: the command line of the `test-node` binary.
//!
//! The same value configures a child node process (through [`NodeArgs::to_args`]) and the
//! test process's own node (through [`NodeArgs::config`]), so both ends of a test run with
//! the same short time-outs and the same membership timing.
//!
//! ```text
//! test-node --name NAME --secret SECRET [--listen 127.0.0.1:0]
//!           [--seed HOST:PORT]... [--connect ADDR]...
//!           [--serve NAME]... [--subscribe TOPIC]... [--register-topic TOPIC]... [--tally]
//!           [--idle-timeout-ms 1500] [--keep-alive-ms 250] [--reconnect-backoff-max-ms 500]
//!           [--probe-period-ms 100] [--probe-rtt-ms 50] [--suspect-to-down-ms 500]
//! ```
//!
//! `--seed` joins a cluster the way a deployed node does (the node keeps retrying until a
//! seed answers); `--connect` dials one peer directly. `--serve`, `--subscribe`,
//! `--register-topic` and `--tally` say what the node offers the cluster: see
//! [`crate::cluster`].

use std::net::{Ipv4Addr, SocketAddr};

use actor_remote::config::{AuthConfig, NodeConfig};
use clap::Parser;

/// Default `--idle-timeout-ms`: a silent peer is taken for down after 1.5 s.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 1_500;
/// The environment variable a parent passes a child node's secret in.
pub const SECRET_ENV: &str = "TEST_NODE_SECRET";
/// Default `--keep-alive-ms`: well below the idle time-out, so a live peer is never idle.
pub const DEFAULT_KEEP_ALIVE_MS: u64 = 250;
/// Default `--reconnect-backoff-max-ms`: a restarted peer is redialed within half a second.
pub const DEFAULT_RECONNECT_BACKOFF_MAX_MS: u64 = 500;
/// The first redial delay of test nodes (not a flag).
pub const RECONNECT_BACKOFF_MIN_MS: u64 = 20;
/// Default `--probe-period-ms`: one member probed every 100 ms (production default: 500).
pub const DEFAULT_PROBE_PERIOD_MS: u64 = 100;
/// Default `--probe-rtt-ms`: a direct probe waits 50 ms for its ack (production: 200).
pub const DEFAULT_PROBE_RTT_MS: u64 = 50;
/// Default `--suspect-to-down-ms`: a suspect is down after 500 ms (production: 1,000).
pub const DEFAULT_SUSPECT_TO_DOWN_MS: u64 = 500;

/// How to start a test node. The secret is passed on the command line: fine for tests
/// only.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "test-node",
    about = "Runs a test node (echo, --serve, --subscribe, its inspector) until stdin closes."
)]
pub struct NodeArgs {
    /// This node's name.
    #[arg(long)]
    pub name: String,
    /// The shared cluster secret. A parent passes it in the environment
    /// ([`SECRET_ENV`]), where other users cannot read it, rather than on the command line.
    #[arg(long, env = SECRET_ENV, hide_env_values = true)]
    pub secret: String,
    /// The UDP address to listen on (port 0: any free port).
    #[arg(long, default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))]
    pub listen: SocketAddr,
    /// A seed to join the cluster through, `host:port` (repeatable; goes to
    /// `config.seeds`).
    #[arg(long = "seed", value_name = "HOST:PORT")]
    pub seeds: Vec<String>,
    /// A peer to dial at start (repeatable).
    #[arg(long = "connect", value_name = "ADDR")]
    pub connect: Vec<SocketAddr>,
    /// Serve a `Where` actor under this name (repeatable).
    #[arg(long = "serve", value_name = "NAME")]
    pub serve: Vec<String>,
    /// Subscribe an ear to this `OrderCreated` topic (repeatable; once more subscribes one
    /// more ear). The topic is made cluster-wide.
    #[arg(long = "subscribe", value_name = "TOPIC")]
    pub subscribe: Vec<String>,
    /// Make this `OrderCreated` topic cluster-wide without subscribing (repeatable).
    #[arg(long = "register-topic", value_name = "TOPIC")]
    pub register_topics: Vec<String>,
    /// Serve a `Tally` as `tally@<name>`, subscribed to the tally topic (cluster-wide).
    #[arg(long)]
    pub tally: bool,
    /// A connection silent for this long is closed, and its peer taken for down.
    #[arg(long, default_value_t = DEFAULT_IDLE_TIMEOUT_MS)]
    pub idle_timeout_ms: u64,
    /// Keep-alive interval of quiet connections; below the idle time-out.
    #[arg(long, default_value_t = DEFAULT_KEEP_ALIVE_MS)]
    pub keep_alive_ms: u64,
    /// Largest delay between redials of a lost peer.
    #[arg(long, default_value_t = DEFAULT_RECONNECT_BACKOFF_MAX_MS)]
    pub reconnect_backoff_max_ms: u64,
    /// SWIM: one member is probed per period.
    #[arg(long, default_value_t = DEFAULT_PROBE_PERIOD_MS)]
    pub probe_period_ms: u64,
    /// SWIM: how long a direct probe waits for its ack; below the probe period.
    #[arg(long, default_value_t = DEFAULT_PROBE_RTT_MS)]
    pub probe_rtt_ms: u64,
    /// SWIM: a suspect that does not refute for this long is declared down.
    #[arg(long, default_value_t = DEFAULT_SUSPECT_TO_DOWN_MS)]
    pub suspect_to_down_ms: u64,
}

impl NodeArgs {
    /// A node named `name` with `secret`, on `127.0.0.1` with an OS-assigned port, with no
    /// seeds, dialing nobody, serving only `echo`, with the default test time-outs and
    /// membership timing.
    pub fn new(name: impl Into<String>, secret: impl Into<String>) -> Self {
        NodeArgs {
            name: name.into(),
            secret: secret.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seeds: Vec::new(),
            connect: Vec::new(),
            serve: Vec::new(),
            subscribe: Vec::new(),
            register_topics: Vec::new(),
            tally: false,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            keep_alive_ms: DEFAULT_KEEP_ALIVE_MS,
            reconnect_backoff_max_ms: DEFAULT_RECONNECT_BACKOFF_MAX_MS,
            probe_period_ms: DEFAULT_PROBE_PERIOD_MS,
            probe_rtt_ms: DEFAULT_PROBE_RTT_MS,
            suspect_to_down_ms: DEFAULT_SUSPECT_TO_DOWN_MS,
        }
    }

    /// Listens on `addr` instead.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Also dials `addr` at start.
    pub fn connect(mut self, addr: SocketAddr) -> Self {
        self.connect.push(addr);
        self
    }

    /// Also joins the cluster through `seed` (`host:port`).
    pub fn seed(mut self, seed: impl ToString) -> Self {
        self.seeds.push(seed.to_string());
        self
    }

    /// Also serves a `Where` actor named `name`.
    pub fn serve(mut self, name: impl Into<String>) -> Self {
        self.serve.push(name.into());
        self
    }

    /// Also subscribes one more ear to `topic`.
    pub fn subscribe(mut self, topic: impl Into<String>) -> Self {
        self.subscribe.push(topic.into());
        self
    }

    /// Also makes `topic` cluster-wide without subscribing to it.
    pub fn register_topic(mut self, topic: impl Into<String>) -> Self {
        self.register_topics.push(topic.into());
        self
    }

    /// Also serves a `Tally` as `tally@<name>`.
    pub fn tally(mut self) -> Self {
        self.tally = true;
        self
    }

    /// Uses this membership timing (all in milliseconds).
    pub fn membership_timing(
        mut self,
        probe_period_ms: u64,
        probe_rtt_ms: u64,
        suspect_to_down_ms: u64,
    ) -> Self {
        self.probe_period_ms = probe_period_ms;
        self.probe_rtt_ms = probe_rtt_ms;
        self.suspect_to_down_ms = suspect_to_down_ms;
        self
    }

    /// The command-line arguments (without the program name) that, with the secret in
    /// [`SECRET_ENV`], parse back to `self`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--name".to_string(),
            self.name.clone(),
            "--listen".to_string(),
            self.listen.to_string(),
            "--idle-timeout-ms".to_string(),
            self.idle_timeout_ms.to_string(),
            "--keep-alive-ms".to_string(),
            self.keep_alive_ms.to_string(),
            "--reconnect-backoff-max-ms".to_string(),
            self.reconnect_backoff_max_ms.to_string(),
            "--probe-period-ms".to_string(),
            self.probe_period_ms.to_string(),
            "--probe-rtt-ms".to_string(),
            self.probe_rtt_ms.to_string(),
            "--suspect-to-down-ms".to_string(),
            self.suspect_to_down_ms.to_string(),
        ];
        if self.tally {
            args.push("--tally".to_string());
        }
        let connect = self.connect.iter().map(SocketAddr::to_string);
        let repeated = [
            ("--seed", self.seeds.clone()),
            ("--connect", connect.collect()),
            ("--serve", self.serve.clone()),
            ("--subscribe", self.subscribe.clone()),
            ("--register-topic", self.register_topics.clone()),
        ];
        for (flag, values) in repeated {
            for value in values {
                args.push(flag.to_string());
                args.push(value);
            }
        }
        args
    }

    /// The node configuration these arguments describe, seeds and membership timing
    /// included (the peers to dial and what to serve are not part of it: dial them with
    /// `Node::connect`, serve with `Node::serve`).
    pub fn config(&self) -> NodeConfig {
        let mut config = NodeConfig::new(
            self.name.clone(),
            AuthConfig::Secret(self.secret.clone().into()),
        );
        config.listen = self.listen;
        config.limits.idle_timeout_ms = self.idle_timeout_ms;
        config.limits.keep_alive_ms = self.keep_alive_ms;
        config.limits.reconnect_backoff_min_ms =
            RECONNECT_BACKOFF_MIN_MS.min(self.reconnect_backoff_max_ms);
        config.limits.reconnect_backoff_max_ms = self.reconnect_backoff_max_ms;
        config.seeds = self.seeds.clone();
        config.membership.probe_period_ms = self.probe_period_ms;
        config.membership.probe_rtt_ms = self.probe_rtt_ms;
        config.membership.suspect_to_down_ms = self.suspect_to_down_ms;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_back_to_the_same_value() {
        let args = NodeArgs::new("child", "s3cret")
            .listen("127.0.0.1:7100".parse().expect("addr"))
            .seed("127.0.0.1:7099")
            .seed("seed.invalid:7098")
            .connect("127.0.0.1:7101".parse().expect("addr"))
            .connect("127.0.0.1:7102".parse().expect("addr"))
            .serve("svc")
            .serve("other")
            .subscribe("order.created")
            .subscribe("order.created")
            .register_topic("order.failed")
            .tally()
            .membership_timing(200, 80, 900);
        let secret = ["--secret".to_string(), args.secret.clone()];
        let parsed = NodeArgs::try_parse_from(
            std::iter::once("test-node".to_string())
                .chain(args.to_args())
                .chain(secret),
        )
        .expect("valid arguments");
        assert_eq!(parsed, args);
    }

    #[test]
    fn omitted_flags_take_the_same_defaults_as_new() {
        let parsed = NodeArgs::try_parse_from(["test-node", "--name", "a", "--secret", "s"])
            .expect("valid arguments");
        assert_eq!(parsed, NodeArgs::new("a", "s"));
    }

    #[test]
    fn the_config_is_valid_and_carries_the_time_outs() {
        let config = NodeArgs::new("a", "s").config();
        config.validate().expect("valid config");
        assert_eq!(config.limits.idle_timeout_ms, DEFAULT_IDLE_TIMEOUT_MS);
        assert_eq!(config.limits.keep_alive_ms, DEFAULT_KEEP_ALIVE_MS);
        assert_eq!(config.membership.probe_period_ms, DEFAULT_PROBE_PERIOD_MS);
        assert_eq!(config.membership.probe_rtt_ms, DEFAULT_PROBE_RTT_MS);
        assert_eq!(
            config.membership.suspect_to_down_ms,
            DEFAULT_SUSPECT_TO_DOWN_MS
        );
    }

    #[test]
    fn the_config_carries_the_seeds_and_the_membership_timing() {
        let config = NodeArgs::new("b", "s")
            .seed("127.0.0.1:7100")
            .membership_timing(300, 100, 1_000)
            .config();
        config.validate().expect("valid config");
        assert_eq!(config.seeds, ["127.0.0.1:7100"]);
        assert_eq!(config.membership.probe_period_ms, 300);
        assert_eq!(config.membership.probe_rtt_ms, 100);
        assert_eq!(config.membership.suspect_to_down_ms, 1_000);
    }
}
