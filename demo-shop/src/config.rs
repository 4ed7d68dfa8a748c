//! The deployment file: which services run in this process, its HTTP gateway, where data is
//! kept, and (in a cluster) its node.
//!
//! Every key is optional; the defaults are stated next to each. Unknown keys are errors, so a
//! typo never falls back to a default silently, and a parse error names its line and column.
//!
//! ```toml
//! # The services this process runs, any of: users, products, payments, analytics,
//! # notifications, orders.                                  (default: all six)
//! services = ["users", "products", "payments", "analytics", "notifications", "orders"]
//!
//! [gateway]                  # the HTTP gateway; leave the table out to run none
//! listen = "127.0.0.1:8080"  # address of the HTTP API                     (default "127.0.0.1:8080")
//! max_body_bytes = 65536     # larger request bodies are refused with 413  (default 65536)
//!
//! [storage]
//! data_dir = "./data"        # one SQLite file per service, created if missing  (default "./data")
//! in_memory = false          # keep everything in memory instead, lost on exit  (default false)
//!
//! [node]                     # leave out for a monolith: no network transport at all
//! name = "node-a"            # the rest as documented in actor_remote::config
//! listen = "127.0.0.1:7101"
//! seeds = ["127.0.0.1:7102"]
//! [node.auth]
//! secret = "a long random string"
//! ```
//!
//! A process without `[node]` is a monolith and must run every service. The files under
//! `deploy/` are built into the binary: [`Deployment::monolith`] and [`Deployment::embedded`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use actor_remote::config::{ConfigError, NodeConfig};
use serde::Deserialize;

use crate::services::ServiceKind;
use crate::storage::Storage;

/// `deploy/monolith.toml`.
pub const MONOLITH: &str = include_str!("../deploy/monolith.toml");
/// The local three-node cluster: `deploy/cluster/node-{a,b,c}.toml`, by node name.
pub const CLUSTER: [(&str, &str); 3] = [
    ("node-a", include_str!("../deploy/cluster/node-a.toml")),
    ("node-b", include_str!("../deploy/cluster/node-b.toml")),
    ("node-c", include_str!("../deploy/cluster/node-c.toml")),
];

/// One process's part of the shop. See the module docs for the file format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The services this process runs. Default: all six.
    #[serde(default = "all_services")]
    pub services: Vec<ServiceKind>,
    /// The HTTP gateway, if this process runs one. Default: none.
    #[serde(default)]
    pub gateway: Option<GatewayConfig>,
    /// Where the services keep their data. Default: see [`StorageConfig`].
    #[serde(default)]
    pub storage: StorageConfig,
    /// This process's node in a cluster; `None` for a monolith. Default: none.
    #[serde(default)]
    pub node: Option<NodeConfig>,
}

/// The HTTP gateway (`[gateway]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address of the HTTP API. Default: `127.0.0.1:8080`.
    #[serde(default = "default_http")]
    pub listen: SocketAddr,
    /// Request bodies larger than this are refused with 413. Default: 65,536 (64 KiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

/// Where services keep their data (`[storage]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the SQLite files, one per service; created if missing. Default: `./data`.
    pub data_dir: PathBuf,
    /// Keep everything in memory instead (lost when the process exits). Default: `false`.
    pub in_memory: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: default_http(),
            max_body_bytes: default_max_body(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./data"),
            in_memory: false,
        }
    }
}

impl StorageConfig {
    /// The storage this describes.
    pub fn storage(&self) -> Storage {
        if self.in_memory {
            Storage::in_memory()
        } else {
            Storage::dir(&self.data_dir)
        }
    }
}

fn all_services() -> Vec<ServiceKind> {
    ServiceKind::ALL.to_vec()
}

fn default_http() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))
}

fn default_max_body() -> usize {
    64 * 1024
}

/// Why a deployment could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeploymentError {
    /// The file could not be read.
    #[error("cannot read deployment {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type; the cause shows the
    /// line, the column and the key.
    #[error("invalid deployment {origin}: {source}")]
    Parse {
        /// The file, or the embedded deployment's name.
        origin: String,
        /// The cause, with its location.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The `[node]` table is not valid.
    #[error("invalid [node] in deployment {origin}: {source}")]
    Node {
        /// The file, or the embedded deployment's name.
        origin: String,
        /// The cause, naming the key.
        #[source]
        source: Box<ConfigError>,
    },
    /// `services` names one service twice.
    #[error("deployment {origin}: services lists {service:?} twice")]
    DuplicateService {
        /// The file, or the embedded deployment's name.
        origin: String,
        /// The service.
        service: ServiceKind,
    },
    /// A monolith (no `[node]`) does not run every service, so calls to the others would fail.
    #[error(
        "deployment {origin}: without a [node] table every service must run here; missing: {}",
        missing.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
    )]
    MonolithMissing {
        /// The file, or the embedded deployment's name.
        origin: String,
        /// The services not listed.
        missing: Vec<ServiceKind>,
    },
    /// `--embedded` named no built-in deployment.
    #[error("no built-in deployment {0:?}; there are monolith, node-a, node-b and node-c")]
    UnknownEmbedded(String),
}

impl Deployment {
    /// The built-in monolith (`deploy/monolith.toml`).
    ///
    /// # Errors
    /// None in a correct build; see [`Deployment::from_toml_str`].
    pub fn monolith() -> Result<Self, DeploymentError> {
        Self::from_toml_str(MONOLITH, "monolith (built in)")
    }

    /// A built-in deployment by name: `monolith`, `node-a`, `node-b` or `node-c`.
    ///
    /// # Errors
    /// [`DeploymentError::UnknownEmbedded`] for another name.
    pub fn embedded(name: &str) -> Result<Self, DeploymentError> {
        if name == "monolith" {
            return Self::monolith();
        }
        let (_, text) = CLUSTER
            .iter()
            .find(|(node, _)| *node == name)
            .ok_or_else(|| DeploymentError::UnknownEmbedded(name.to_owned()))?;
        Self::from_toml_str(text, &format!("{name} (built in)"))
    }

    /// A monolith for tests: in-memory data, HTTP on `127.0.0.1` at a port the OS picks.
    pub fn in_memory() -> Self {
        Deployment {
            services: all_services(),
            gateway: Some(GatewayConfig {
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                ..GatewayConfig::default()
            }),
            storage: StorageConfig {
                in_memory: true,
                ..StorageConfig::default()
            },
            node: None,
        }
    }

    /// Reads and checks a deployment file.
    ///
    /// # Errors
    /// [`DeploymentError::Read`], and as [`Deployment::from_toml_str`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DeploymentError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and checks a deployment; `origin` names it in errors.
    ///
    /// # Errors
    /// [`DeploymentError::Parse`] for text that is not a deployment, and the errors of
    /// [`Deployment::validate`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, DeploymentError> {
        let deployment: Deployment = toml::from_str(text).map_err(|e| DeploymentError::Parse {
            origin: origin.to_owned(),
            source: Box::new(e),
        })?;
        deployment.validate(origin)?;
        Ok(deployment)
    }

    /// Checks what the types cannot: no service twice, a monolith runs all, a valid node.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self, origin: &str) -> Result<(), DeploymentError> {
        let mut seen = Vec::with_capacity(self.services.len());
        for service in &self.services {
            if seen.contains(service) {
                return Err(DeploymentError::DuplicateService {
                    origin: origin.to_owned(),
                    service: *service,
                });
            }
            seen.push(*service);
        }
        match &self.node {
            Some(node) => node.validate().map_err(|source| DeploymentError::Node {
                origin: origin.to_owned(),
                source: Box::new(source),
            }),
            None => {
                let missing: Vec<ServiceKind> = ServiceKind::ALL
                    .into_iter()
                    .filter(|s| !self.services.contains(s))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(DeploymentError::MonolithMissing {
                        origin: origin.to_owned(),
                        missing,
                    })
                }
            }
        }
    }

    /// The services to start, in start order (each after those it calls).
    pub fn services_in_start_order(&self) -> Vec<ServiceKind> {
        ServiceKind::ALL
            .into_iter()
            .filter(|s| self.services.contains(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_deployment_parses() -> Result<(), DeploymentError> {
        let monolith = Deployment::monolith()?;
        assert!(monolith.node.is_none());
        assert_eq!(monolith.services_in_start_order(), ServiceKind::ALL);
        let mut hosted = Vec::new();
        for (name, _) in CLUSTER {
            let node = Deployment::embedded(name)?;
            assert_eq!(node.node.as_ref().map(|n| n.name.as_str()), Some(name));
            hosted.extend(node.services);
        }
        hosted.sort();
        let mut all = ServiceKind::ALL.to_vec();
        all.sort();
        assert_eq!(hosted, all, "the cluster runs each service exactly once");
        Ok(())
    }

    #[test]
    fn an_empty_file_is_a_monolith_with_defaults_and_no_gateway() -> Result<(), DeploymentError> {
        let d = Deployment::from_toml_str("", "empty")?;
        assert_eq!(d.services, ServiceKind::ALL);
        assert_eq!(d.gateway, None);
        assert_eq!(d.storage, StorageConfig::default());
        let d = Deployment::from_toml_str("[gateway]", "gateway")?;
        assert_eq!(d.gateway, Some(GatewayConfig::default()));
        Ok(())
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = "services = [\"users\"]\n[storage]\ndata_dri = \"./x\"\n";
        let err = Deployment::from_toml_str(text, "typo.toml").map(drop);
        let Err(err @ DeploymentError::Parse { .. }) = err else {
            panic!("expected a parse error, got {err:?}");
        };
        let text = format!("{err}");
        assert!(text.contains("typo.toml"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("data_dri"), "{text}");
    }

    #[test]
    fn an_unknown_service_is_refused() {
        let err = Deployment::from_toml_str("services = [\"usres\"]", "x");
        assert!(matches!(err, Err(DeploymentError::Parse { .. })), "{err:?}");
    }

    #[test]
    fn a_monolith_must_run_every_service() {
        let err = Deployment::from_toml_str("services = [\"users\", \"orders\"]", "m.toml");
        let Err(DeploymentError::MonolithMissing { missing, .. }) = err else {
            panic!("expected MonolithMissing, got {err:?}");
        };
        assert_eq!(missing.len(), 4);
    }

    #[test]
    fn a_service_listed_twice_is_refused() {
        let err = Deployment::from_toml_str("services = [\"users\", \"users\"]", "d.toml");
        assert!(
            matches!(err, Err(DeploymentError::DuplicateService { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn an_invalid_node_is_refused() {
        let text = "services = [\"users\"]\n[node]\nname = \"\"\n[node.auth]\nsecret = \"s\"\n";
        let err = Deployment::from_toml_str(text, "n.toml");
        assert!(matches!(err, Err(DeploymentError::Node { .. })), "{err:?}");
    }
}
