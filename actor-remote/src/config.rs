//! The node configuration: the TOML file a user writes to start a node.
//!
//! Every field but `name` and `auth` has a default, stated next to it below. Unknown fields are
//! errors (a typo must not silently fall back to a default), and a parse error names the line and
//! field it is about. A parsed configuration is validated before it is returned.
//!
//! ```toml
//! name = "products-1"            # this node's name, unique in the cluster (required)
//! listen = "0.0.0.0:7100"        # UDP address to listen on        (default "127.0.0.1:0")
//! cluster = "shop"               # nodes only join their own cluster (default "default")
//! seeds = ["10.0.0.5:7100", "shop-seed.internal:7100"]  # host:port to join by (default [])
//!
//! [auth]                         # required: either a shared secret (development) ...
//! secret = "a long random string"
//! # ... or mutual TLS against a cluster CA (production), paths relative to the working directory:
//! # [auth.mtls]
//! # cert = "/etc/shop/node.pem"
//! # key = "/etc/shop/node.key"
//! # ca = "/etc/shop/ca.pem"
//!
//! [limits]                       # every key optional
//! max_frame_len = 4194304        # largest frame accepted, bytes (4 MiB; 1 KiB to 64 MiB)
//! max_asks_in_flight_per_peer = 10000
//! handshake_timeout_ms = 5000    # connection + proof of membership
//! idle_timeout_ms = 10000        # a silent connection is closed after this
//! keep_alive_ms = 2000           # keep-alive interval, below idle_timeout_ms
//! ask_timeout_ms = 5000          # default time-out of an ask
//! reconnect_backoff_min_ms = 50  # first reconnect delay, doubled up to ...
//! reconnect_backoff_max_ms = 5000
//!
//! [membership]                   # failure detection (SWIM); every key optional
//! probe_period_ms = 500          # one member probed per period
//! probe_rtt_ms = 200             # wait for a direct ack, below probe_period_ms
//! suspect_to_down_ms = 1000      # a suspect not refuting for this long is down
//! ```
//!
//! ```
//! use actor_remote::config::NodeConfig;
//!
//! let config = NodeConfig::from_toml_str(r#"
//!     name = "node-a"
//!     [auth]
//!     secret = "a long random string"
//! "#)?;
//! assert_eq!(config.cluster, "default");
//! assert_eq!(config.limits.max_frame_len, 4 * 1024 * 1024);
//! # Ok::<(), actor_remote::config::ConfigError>(())
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{ClusterSecret, MAX_NAME_LEN};
use crate::codec::{DEFAULT_MAX_FRAME_LEN, FRAME_LEN_CEILING};
use crate::tls::{Credentials, TransportLimits};

/// The smallest `limits.max_frame_len` accepted: room for any control frame.
pub const MIN_MAX_FRAME_LEN: usize = 1024;

/// Everything a node needs to start: who it is, where it listens, whom it joins, how it proves
/// membership, and its limits. See the module docs for the file format and defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name, unique in the cluster. Required; 1 to 255 bytes.
    pub name: String,
    /// The UDP address to listen on. Default: `127.0.0.1:0` (loopback, any free port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The cluster to join; nodes refuse peers of another cluster. Default: `"default"`.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Nodes to join through, as `host:port` (an IP address or a DNS name). Default: none (the
    /// node starts a cluster of its own and waits to be joined).
    #[serde(default)]
    pub seeds: Vec<String>,
    /// How nodes prove they belong. Required.
    pub auth: AuthConfig,
    /// Sizes, counts and time-outs. Default: see [`Limits`].
    #[serde(default)]
    pub limits: Limits,
    /// Failure-detection timing. Default: see [`MembershipTiming`].
    #[serde(default)]
    pub membership: MembershipTiming,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn default_cluster() -> String {
    "default".to_owned()
}

/// How nodes prove they belong to the cluster (`[auth]` in the file: exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AuthTable")]
pub enum AuthConfig {
    /// `secret = "..."`: a shared secret, for development. Never shown by `Debug`.
    Secret(ClusterSecret),
    /// `[auth.mtls]`: mutual TLS against a cluster CA, for production.
    Mtls {
        /// PEM file with this node's certificate chain.
        cert: PathBuf,
        /// PEM file with this node's private key.
        key: PathBuf,
        /// PEM file with the cluster CA certificate.
        ca: PathBuf,
    },
}

/// `[auth]` as written, so that setting both modes or neither gets a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthTable {
    secret: Option<ClusterSecret>,
    mtls: Option<MtlsTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MtlsTable {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl TryFrom<AuthTable> for AuthConfig {
    type Error = &'static str;

    fn try_from(table: AuthTable) -> Result<Self, Self::Error> {
        match (table.secret, table.mtls) {
            (Some(secret), None) => Ok(AuthConfig::Secret(secret)),
            (None, Some(MtlsTable { cert, key, ca })) => Ok(AuthConfig::Mtls { cert, key, ca }),
            _ => Err("[auth] needs exactly one of `secret = \"...\"` or an `[auth.mtls]` table"),
        }
    }
}

impl AuthConfig {
    /// The TLS credentials this configuration describes.
    pub fn credentials(&self) -> Credentials {
        match self {
            AuthConfig::Secret(secret) => Credentials::SharedSecret {
                secret: secret.clone(),
            },
            AuthConfig::Mtls { cert, key, ca } => Credentials::MutualTls {
                cert_path: cert.clone(),
                key_path: key.clone(),
                ca_path: ca.clone(),
            },
        }
    }
}

/// Sizes, counts and time-outs (`[limits]` in the file). All must be greater than zero.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame accepted from a peer, in bytes; a peer sending a larger one is disconnected.
    /// Default: 4 MiB. Between [`MIN_MAX_FRAME_LEN`] and [`FRAME_LEN_CEILING`].
    pub max_frame_len: usize,
    /// Asks to one peer awaiting a reply at once; more fail at once. Default: 10,000.
    pub max_asks_in_flight_per_peer: usize,
    /// Time for a new connection to finish TLS and the proof of membership. Default: 5,000 ms.
    pub handshake_timeout_ms: u64,
    /// A connection with no traffic for this long is closed. Default: 10,000 ms.
    pub idle_timeout_ms: u64,
    /// Keep-alive interval on a quiet connection; less than `idle_timeout_ms`. Default: 2,000 ms.
    pub keep_alive_ms: u64,
    /// Time-out of an ask that does not set its own. Default: 5,000 ms.
    pub ask_timeout_ms: u64,
    /// First delay before redialing a lost peer; doubles on each failure. Default: 50 ms.
    pub reconnect_backoff_min_ms: u64,
    /// Largest delay between redials; at least the minimum. Default: 5,000 ms.
    pub reconnect_backoff_max_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_asks_in_flight_per_peer: 10_000,
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 10_000,
            keep_alive_ms: 2_000,
            ask_timeout_ms: 5_000,
            reconnect_backoff_min_ms: 50,
            reconnect_backoff_max_ms: 5_000,
        }
    }
}

impl Limits {
    /// The QUIC transport settings these limits imply (stream counts keep their defaults).
    pub fn transport(&self) -> TransportLimits {
        TransportLimits {
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            keep_alive_interval: Duration::from_millis(self.keep_alive_ms),
            ..TransportLimits::default()
        }
    }
}

/// Failure-detection timing (`[membership]` in the file), handed to the SWIM implementation.
/// All must be greater than zero.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MembershipTiming {
    /// One member is probed per period. Default: 500 ms.
    pub probe_period_ms: u64,
    /// How long a direct probe waits for its ack before asking others to probe indirectly; less
    /// than `probe_period_ms`. Default: 200 ms.
    pub probe_rtt_ms: u64,
    /// A suspect member that does not refute the suspicion for this long is declared down.
    /// Default: 1,000 ms (with the other defaults, a killed node is marked down within about 2 s).
    pub suspect_to_down_ms: u64,
}

impl Default for MembershipTiming {
    fn default() -> Self {
        MembershipTiming {
            probe_period_ms: 500,
            probe_rtt_ms: 200,
            suspect_to_down_ms: 1_000,
        }
    }
}

/// Why a configuration could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read node config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid configuration: bad TOML, an unknown or missing field, or a value
    /// of the wrong type. The message shows the line and field.
    #[error("invalid node config {origin}: {source}")]
    Parse {
        /// The file, or `<string>`.
        origin: String,
        /// The cause, with its location.
        #[source]
        source: toml::de::Error,
    },
    /// A name that must not be empty is.
    #[error("{field} must not be empty")]
    Empty {
        /// The field, as written in the file.
        field: &'static str,
    },
    /// A name is longer than a peer accepts.
    #[error("{field} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The field, as written in the file.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A seed is not `host:port`.
    #[error("seed {seed:?} is not host:port: {reason}")]
    InvalidSeed {
        /// The seed as written.
        seed: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A limit or timing is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field, as written in the file.
        field: &'static str,
    },
    /// A value is outside its allowed range.
    #[error("{field} is {value}; it must be between {min} and {max}")]
    OutOfRange {
        /// The field, as written in the file.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The smallest allowed.
        min: usize,
        /// The largest allowed.
        max: usize,
    },
    /// Two related values are in the wrong order.
    #[error("{smaller} ({smaller_value}) must be less than {larger} ({larger_value})")]
    Order {
        /// The field that must be smaller.
        smaller: &'static str,
        /// Its value.
        smaller_value: u64,
        /// The field that must be larger.
        larger: &'static str,
        /// Its value.
        larger_value: u64,
    },
}

impl NodeConfig {
    /// A configuration with every default, for a node built in code.
    pub fn new(name: impl Into<String>, auth: AuthConfig) -> Self {
        NodeConfig {
            name: name.into(),
            listen: default_listen(),
            cluster: default_cluster(),
            seeds: Vec::new(),
            auth,
            limits: Limits::default(),
            membership: MembershipTiming::default(),
        }
    }

    /// Parses and validates a configuration from TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for text that is not a configuration, and the validation errors of
    /// [`NodeConfig::validate`].
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "<string>")
    }

    /// Reads, parses and validates a configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if the file cannot be read, otherwise as
    /// [`NodeConfig::from_toml_str`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin.to_owned(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot: names, seeds, ranges and the order of related values.
    ///
    /// # Errors
    /// The first problem found, naming the field as written in the file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("name", &self.name)?;
        check_name("cluster", &self.cluster)?;
        for seed in &self.seeds {
            check_seed(seed)?;
        }
        if let AuthConfig::Secret(secret) = &self.auth {
            if secret.is_empty() {
                return Err(ConfigError::Empty {
                    field: "auth.secret",
                });
            }
        }
        self.limits.validate()?;
        self.membership.validate()
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        let l = self;
        check_nonzero(
            "limits.max_asks_in_flight_per_peer",
            l.max_asks_in_flight_per_peer as u64,
        )?;
        check_nonzero("limits.handshake_timeout_ms", l.handshake_timeout_ms)?;
        check_nonzero("limits.idle_timeout_ms", l.idle_timeout_ms)?;
        check_nonzero("limits.keep_alive_ms", l.keep_alive_ms)?;
        check_nonzero("limits.ask_timeout_ms", l.ask_timeout_ms)?;
        check_nonzero(
            "limits.reconnect_backoff_min_ms",
            l.reconnect_backoff_min_ms,
        )?;
        check_nonzero(
            "limits.reconnect_backoff_max_ms",
            l.reconnect_backoff_max_ms,
        )?;
        if !(MIN_MAX_FRAME_LEN..=FRAME_LEN_CEILING).contains(&l.max_frame_len) {
            return Err(ConfigError::OutOfRange {
                field: "limits.max_frame_len",
                value: l.max_frame_len,
                min: MIN_MAX_FRAME_LEN,
                max: FRAME_LEN_CEILING,
            });
        }
        check_less(
            ("limits.keep_alive_ms", l.keep_alive_ms),
            ("limits.idle_timeout_ms", l.idle_timeout_ms),
        )?;
        // Equal bounds are fine (a constant delay), hence the +1.
        check_less(
            (
                "limits.reconnect_backoff_min_ms",
                l.reconnect_backoff_min_ms,
            ),
            (
                "limits.reconnect_backoff_max_ms",
                l.reconnect_backoff_max_ms.saturating_add(1),
            ),
        )
    }
}

impl MembershipTiming {
    fn validate(&self) -> Result<(), ConfigError> {
        check_nonzero("membership.probe_period_ms", self.probe_period_ms)?;
        check_nonzero("membership.probe_rtt_ms", self.probe_rtt_ms)?;
        check_nonzero("membership.suspect_to_down_ms", self.suspect_to_down_ms)?;
        check_less(
            ("membership.probe_rtt_ms", self.probe_rtt_ms),
            ("membership.probe_period_ms", self.probe_period_ms),
        )
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Empty { field });
    }
    if value.len() > MAX_NAME_LEN {
        return Err(ConfigError::TooLong {
            field,
            len: value.len(),
            max: MAX_NAME_LEN,
        });
    }
    Ok(())
}

fn check_seed(seed: &str) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::InvalidSeed {
        seed: seed.to_owned(),
        reason,
    };
    let (host, port) = seed.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(invalid("whitespace in host"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(invalid("port 0")),
        Ok(_) => Ok(()),
        Err(_) => Err(invalid("port is not a number from 1 to 65535")),
    }
}

fn check_nonzero(field: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero { field });
    }
    Ok(())
}

fn check_less(
    (smaller, smaller_value): (&'static str, u64),
    (larger, larger_value): (&'static str, u64),
) -> Result<(), ConfigError> {
    if smaller_value >= larger_value {
        return Err(ConfigError::Order {
            smaller,
            smaller_value,
            larger,
            larger_value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "node-a"
[auth]
secret = "do-not-print-me"
"#;

    fn parse_err(text: &str) -> String {
        NodeConfig::from_toml_str(text)
            .expect_err("invalid config")
            .to_string()
    }

    #[test]
    fn full_file_parses() {
        let config = NodeConfig::from_toml_str(
            r#"
name = "products-1"
listen = "0.0.0.0:7100"
cluster = "shop"
seeds = ["10.0.0.5:7100", "shop-seed.internal:7100", "[::1]:7100"]

[auth.mtls]
cert = "/etc/shop/node.pem"
key = "/etc/shop/node.key"
ca = "/etc/shop/ca.pem"

[limits]
max_frame_len = 1048576
max_asks_in_flight_per_peer = 100
handshake_timeout_ms = 1000
idle_timeout_ms = 3000
keep_alive_ms = 500
ask_timeout_ms = 250
reconnect_backoff_min_ms = 10
reconnect_backoff_max_ms = 10

[membership]
probe_period_ms = 300
probe_rtt_ms = 100
suspect_to_down_ms = 900
"#,
        )
        .expect("valid config");
        assert_eq!(
            config,
            NodeConfig {
                name: "products-1".into(),
                listen: "0.0.0.0:7100".parse().expect("addr"),
                cluster: "shop".into(),
                seeds: vec![
                    "10.0.0.5:7100".into(),
                    "shop-seed.internal:7100".into(),
                    "[::1]:7100".into()
                ],
                auth: AuthConfig::Mtls {
                    cert: "/etc/shop/node.pem".into(),
                    key: "/etc/shop/node.key".into(),
                    ca: "/etc/shop/ca.pem".into(),
                },
                limits: Limits {
                    max_frame_len: 1_048_576,
                    max_asks_in_flight_per_peer: 100,
                    handshake_timeout_ms: 1000,
                    idle_timeout_ms: 3000,
                    keep_alive_ms: 500,
                    ask_timeout_ms: 250,
                    reconnect_backoff_min_ms: 10,
                    reconnect_backoff_max_ms: 10,
                },
                membership: MembershipTiming {
                    probe_period_ms: 300,
                    probe_rtt_ms: 100,
                    suspect_to_down_ms: 900,
                },
            }
        );
    }

    #[test]
    fn defaults_fill_everything_but_name_and_auth() {
        let config = NodeConfig::from_toml_str(MINIMAL).expect("valid config");
        assert_eq!(
            config,
            NodeConfig::new("node-a", AuthConfig::Secret("do-not-print-me".into()))
        );
        assert_eq!(config.listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(config.cluster, "default");
        assert_eq!(config.limits.max_frame_len, 4 * 1024 * 1024);
        assert_eq!(config.limits.max_asks_in_flight_per_peer, 10_000);
        assert_eq!(config.membership.suspect_to_down_ms, 1_000);
    }

    #[test]
    fn a_partial_limits_table_keeps_the_other_defaults() {
        let config =
            NodeConfig::from_toml_str(&format!("{MINIMAL}[limits]\nask_timeout_ms = 100\n"))
                .expect("valid config");
        assert_eq!(config.limits.ask_timeout_ms, 100);
        assert_eq!(config.limits.idle_timeout_ms, 10_000);
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name_and_line() {
        let message =
            parse_err("name = \"a\"\nlisten_addr = \"127.0.0.1:1\"\n[auth]\nsecret = \"s\"\n");
        assert!(message.contains("unknown field `listen_addr`"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(
            message.contains("`listen`"),
            "lists the valid fields: {message}"
        );
    }

    #[test]
    fn unknown_field_in_a_section_is_rejected() {
        let message = parse_err(&format!("{MINIMAL}[limits]\nask_timeout = 5\n"));
        assert!(message.contains("unknown field `ask_timeout`"), "{message}");
    }

    #[test]
    fn missing_name_or_auth_is_rejected() {
        assert!(parse_err("[auth]\nsecret = \"s\"\n").contains("missing field `name`"));
        assert!(parse_err("name = \"a\"\n").contains("missing field `auth`"));
    }

    #[test]
    fn unknown_auth_mode_is_rejected() {
        let message = parse_err("name = \"a\"\n[auth]\npassword = \"s\"\n");
        assert!(message.contains("unknown field `password`"), "{message}");
    }

    #[test]
    fn both_or_neither_auth_mode_is_rejected_with_a_clear_message() {
        let both = "name = \"a\"\n[auth]\nsecret = \"s\"\n[auth.mtls]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n";
        let neither = "name = \"a\"\n[auth]\n";
        for text in [both, neither] {
            let message = parse_err(text);
            assert!(message.contains("needs exactly one of"), "{message}");
            assert!(message.contains("line 2"), "{message}");
        }
    }

    #[test]
    fn incomplete_mtls_paths_are_rejected() {
        let message = parse_err("name = \"a\"\n[auth.mtls]\ncert = \"c\"\nkey = \"k\"\n");
        assert!(message.contains("missing field `ca`"), "{message}");
    }

    #[test]
    fn bad_listen_address_is_rejected_at_its_line() {
        let message = parse_err("name = \"a\"\nlisten = \"localhost\"\n[auth]\nsecret = \"s\"\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("invalid socket address"), "{message}");
    }

    #[test]
    fn bad_seeds_are_rejected() {
        for (seed, reason) in [
            ("node-b", "no port"),
            (":7100", "no host"),
            ("node-b:http", "port is not a number"),
            ("node-b:0", "port 0"),
        ] {
            let mut config = NodeConfig::new("a", AuthConfig::Secret("s".into()));
            config.seeds = vec![seed.into()];
            let message = config.validate().expect_err("bad seed").to_string();
            assert!(
                message.contains(seed) && message.contains(reason),
                "{message}"
            );
        }
    }

    #[test]
    fn empty_node_name_cluster_or_secret_is_rejected() {
        let secret = || AuthConfig::Secret("s".into());
        assert!(matches!(
            NodeConfig::new("", secret()).validate(),
            Err(ConfigError::Empty { field: "name" })
        ));
        let mut config = NodeConfig::new("a", secret());
        config.cluster.clear();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Empty { field: "cluster" })
        ));
        assert!(matches!(
            NodeConfig::new("a", AuthConfig::Secret("".into())).validate(),
            Err(ConfigError::Empty {
                field: "auth.secret"
            })
        ));
    }

    #[test]
    fn over_long_node_name_is_rejected() {
        let config = NodeConfig::new("n".repeat(256), AuthConfig::Secret("s".into()));
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLong { field: "name", .. })
        ));
    }

    #[test]
    fn zero_limits_are_rejected_by_name() {
        let message = parse_err(&format!("{MINIMAL}[limits]\nhandshake_timeout_ms = 0\n"));
        assert_eq!(
            message,
            "limits.handshake_timeout_ms must be greater than zero"
        );
        let message = parse_err(&format!("{MINIMAL}[membership]\nsuspect_to_down_ms = 0\n"));
        assert_eq!(
            message,
            "membership.suspect_to_down_ms must be greater than zero"
        );
    }

    #[test]
    fn frame_limit_outside_its_range_is_rejected() {
        for value in [0, 1023, FRAME_LEN_CEILING + 1] {
            let message = parse_err(&format!("{MINIMAL}[limits]\nmax_frame_len = {value}\n"));
            assert!(message.starts_with("limits.max_frame_len"), "{message}");
        }
    }

    #[test]
    fn related_timings_in_the_wrong_order_are_rejected() {
        let message = parse_err(&format!(
            "{MINIMAL}[limits]\nkeep_alive_ms = 10000\nidle_timeout_ms = 10000\n"
        ));
        assert!(
            message.contains("limits.keep_alive_ms (10000) must be less than"),
            "{message}"
        );
        let message = parse_err(&format!(
            "{MINIMAL}[limits]\nreconnect_backoff_min_ms = 20\nreconnect_backoff_max_ms = 10\n"
        ));
        assert!(
            message.starts_with("limits.reconnect_backoff_min_ms"),
            "{message}"
        );
        let message = parse_err(&format!("{MINIMAL}[membership]\nprobe_rtt_ms = 500\n"));
        assert!(message.starts_with("membership.probe_rtt_ms"), "{message}");
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let config = NodeConfig::from_toml_str(MINIMAL).expect("valid config");
        let shown = format!("{config:?}");
        assert!(!shown.contains("do-not-print-me"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn from_file_reads_and_names_a_missing_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, MINIMAL).expect("write");
        assert_eq!(NodeConfig::from_file(&path).expect("valid").name, "node-a");
        let missing = dir.path().join("missing.toml");
        let message = NodeConfig::from_file(&missing)
            .expect_err("missing file")
            .to_string();
        assert!(message.contains("missing.toml"), "{message}");
    }

    #[test]
    fn parse_error_from_a_file_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "name = \n").expect("write");
        let message = NodeConfig::from_file(&path)
            .expect_err("bad toml")
            .to_string();
        assert!(
            message.contains("node.toml") && message.contains("line 1"),
            "{message}"
        );
    }

    #[test]
    fn config_converts_to_credentials_and_transport_limits() {
        let config = NodeConfig::from_toml_str(MINIMAL).expect("valid config");
        assert_eq!(
            config.auth.credentials(),
            Credentials::SharedSecret {
                secret: "do-not-print-me".into()
            }
        );
        let transport = config.limits.transport();
        assert_eq!(transport.idle_timeout, Duration::from_secs(10));
        assert_eq!(transport.keep_alive_interval, Duration::from_secs(2));
    }
}
