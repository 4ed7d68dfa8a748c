//! [`NodeArgs`]: the command line of the `test-node` binary.
//!
//! The same value configures a child node process (through [`NodeArgs::to_args`]) and the
//! test process's own node (through [`NodeArgs::config`]), so both ends of a test run with
//! the same short time-outs.
//!
//! ```text
//! test-node --name NAME --secret SECRET [--listen 127.0.0.1:0] [--connect ADDR]...
//!           [--idle-timeout-ms 1500] [--keep-alive-ms 250] [--reconnect-backoff-max-ms 500]
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use actor_remote::config::{AuthConfig, NodeConfig};
use clap::Parser;

/// Default `--idle-timeout-ms`: a silent peer is taken for down after 1.5 s.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 1_500;
/// Default `--keep-alive-ms`: well below the idle time-out, so a live peer is never idle.
pub const DEFAULT_KEEP_ALIVE_MS: u64 = 250;
/// Default `--reconnect-backoff-max-ms`: a restarted peer is redialed within half a second.
pub const DEFAULT_RECONNECT_BACKOFF_MAX_MS: u64 = 500;
/// The first redial delay of test nodes (not a flag).
pub const RECONNECT_BACKOFF_MIN_MS: u64 = 20;

/// How to start a test node. The secret is passed on the command line: fine for tests
/// only.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "test-node",
    about = "Runs a node serving the `echo` test actor until stdin closes."
)]
pub struct NodeArgs {
    /// This node's name.
    #[arg(long)]
    pub name: String,
    /// The shared cluster secret.
    #[arg(long)]
    pub secret: String,
    /// The UDP address to listen on (port 0: any free port).
    #[arg(long, default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))]
    pub listen: SocketAddr,
    /// A peer to dial at start (repeatable).
    #[arg(long = "connect", value_name = "ADDR")]
    pub connect: Vec<SocketAddr>,
    /// A connection silent for this long is closed, and its peer taken for down.
    #[arg(long, default_value_t = DEFAULT_IDLE_TIMEOUT_MS)]
    pub idle_timeout_ms: u64,
    /// Keep-alive interval of quiet connections; below the idle time-out.
    #[arg(long, default_value_t = DEFAULT_KEEP_ALIVE_MS)]
    pub keep_alive_ms: u64,
    /// Largest delay between redials of a lost peer.
    #[arg(long, default_value_t = DEFAULT_RECONNECT_BACKOFF_MAX_MS)]
    pub reconnect_backoff_max_ms: u64,
}

impl NodeArgs {
    /// A node named `name` with `secret`, on `127.0.0.1` with an OS-assigned port, dialing
    /// nobody, with the default test time-outs.
    pub fn new(name: impl Into<String>, secret: impl Into<String>) -> Self {
        NodeArgs {
            name: name.into(),
            secret: secret.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            connect: Vec::new(),
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            keep_alive_ms: DEFAULT_KEEP_ALIVE_MS,
            reconnect_backoff_max_ms: DEFAULT_RECONNECT_BACKOFF_MAX_MS,
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

    /// The command-line arguments (without the program name) that parse back to `self`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--name".to_string(),
            self.name.clone(),
            "--secret".to_string(),
            self.secret.clone(),
            "--listen".to_string(),
            self.listen.to_string(),
            "--idle-timeout-ms".to_string(),
            self.idle_timeout_ms.to_string(),
            "--keep-alive-ms".to_string(),
            self.keep_alive_ms.to_string(),
            "--reconnect-backoff-max-ms".to_string(),
            self.reconnect_backoff_max_ms.to_string(),
        ];
        for addr in &self.connect {
            args.push("--connect".to_string());
            args.push(addr.to_string());
        }
        args
    }

    /// The node configuration these arguments describe (the peers to dial are not part of
    /// it: dial them with `Node::connect`).
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
            .connect("127.0.0.1:7101".parse().expect("addr"))
            .connect("127.0.0.1:7102".parse().expect("addr"));
        let parsed = NodeArgs::try_parse_from(
            std::iter::once("test-node".to_string()).chain(args.to_args()),
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
    }
}
