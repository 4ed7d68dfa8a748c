//! [`Shop`]: starts one process's part of the shop from its [`Deployment`], and stops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actor_core::{ActorSystem, SpawnError, SupervisorRef};
use actor_remote::{Node, NodeError, ServeError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::call::Calls;
use crate::config::Deployment;
use crate::services::{Env, ServiceKind};
use crate::{cluster, gateway, metrics};

/// The node name of a monolith's actor system (shown in refs, `/health` and `/cluster`).
pub const MONOLITH_NODE: &str = "monolith";

/// How long shutdown waits for HTTP requests in flight.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Why the shop could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The node could not start (configuration, certificates, address in use).
    #[error("cannot start the node: {0}")]
    Node(#[from] NodeError),
    /// A service failed to start (its database could not be opened, for example).
    #[error("cannot start the {service} service: {source}")]
    Spawn {
        /// The service.
        service: ServiceKind,
        /// The cause.
        #[source]
        source: SpawnError,
    },
    /// A service could not be offered to peers.
    #[error("cannot serve a service to peers: {0}")]
    Serve(#[from] ServeError),
    /// The HTTP address could not be bound.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What runs in this process: its actor system, its node in a cluster, its services.
pub(crate) struct Process {
    pub(crate) system: ActorSystem,
    pub(crate) node: Option<Node>,
    pub(crate) hosted: Vec<(ServiceKind, SupervisorRef)>,
    pub(crate) calls: Calls,
}

/// One process's part of the shop, running.
pub struct Shop {
    process: Arc<Process>,
    http: Option<Http>,
}

struct Http {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Shop {
    /// Starts, in this order: binds the gateway's address (so an address in use fails
    /// before anything runs); in a cluster, the node, which joins its seeds in the
    /// background; the services of `deployment`, each under its own supervisor, in start
    /// order; in a cluster, offers them to the other nodes; the gateway.
    ///
    /// # Errors
    /// [`StartError`]; whatever had started is stopped again.
    pub async fn start(deployment: Deployment) -> Result<Shop, StartError> {
        metrics::install();
        let listener = match &deployment.gateway {
            Some(config) => {
                let addr = config.listen;
                let bound = TcpListener::bind(addr).await;
                Some(bound.map_err(|source| StartError::Bind { addr, source })?)
            }
            None => None,
        };
        let node = match &deployment.node {
            Some(config) => Some(Node::start(config.clone()).await?),
            None => None,
        };
        let system = match &node {
            Some(node) => node.system().clone(),
            None => ActorSystem::builder().node_name(MONOLITH_NODE).build(),
        };
        let env = Env {
            storage: deployment.storage.storage(),
            calls: Calls::default(),
        };
        let hosted = match start_services(&deployment, node.as_ref(), &system, &env).await {
            Ok(hosted) => hosted,
            Err(e) => {
                stop_all(node.as_ref(), &system).await;
                return Err(e);
            }
        };
        let process = Arc::new(Process {
            system,
            node,
            hosted,
            calls: env.calls,
        });
        let http = listener.zip(deployment.gateway).map(|(listener, config)| {
            let addr = listener.local_addr().unwrap_or(config.listen);
            let (stop, stopped) = oneshot::channel();
            let router = gateway::router(Arc::clone(&process), config.max_body_bytes);
            let task = tokio::spawn(gateway::serve(listener, router, stopped));
            Http { addr, stop, task }
        });
        tracing::info!(
            node = process.system.node_name(),
            services = ?process.hosted.iter().map(|(s, _)| s.name()).collect::<Vec<_>>(),
            http = ?http.as_ref().map(|h| h.addr),
            "shop started"
        );
        Ok(Shop { process, http })
    }

    /// The actor system the services run in.
    pub fn system(&self) -> &ActorSystem {
        &self.process.system
    }

    /// This process's node, in a cluster.
    pub fn node(&self) -> Option<&Node> {
        self.process.node.as_ref()
    }

    /// The address the gateway listens on, if this process runs one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// `http://ADDR`, if this process runs a gateway.
    pub fn base_url(&self) -> Option<String> {
        self.http_addr().map(|addr| format!("http://{addr}"))
    }

    /// The supervisor of a service running here (to watch its restarts, or stop it).
    pub fn supervisor(&self, service: ServiceKind) -> Option<&SupervisorRef> {
        self.process
            .hosted
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, supervisor)| supervisor)
    }

    /// Stops the gateway (requests in flight get up to 5 s), leaves the cluster, and stops
    /// the services in reverse start order.
    pub async fn shutdown(self) {
        if let Some(http) = self.http {
            let _ = http.stop.send(());
            let abort = http.task.abort_handle();
            if tokio::time::timeout(HTTP_DRAIN, http.task).await.is_err() {
                abort.abort();
            }
        }
        stop_all(self.process.node.as_ref(), &self.process.system).await;
        tracing::info!(node = self.process.system.node_name(), "shop stopped");
    }
}

/// Starts the services in start order and, in a cluster, offers them to the other nodes.
async fn start_services(
    deployment: &Deployment,
    node: Option<&Node>,
    system: &ActorSystem,
    env: &Env,
) -> Result<Vec<(ServiceKind, SupervisorRef)>, StartError> {
    if let Some(node) = node {
        cluster::prepare(node);
    }
    let mut hosted = Vec::new();
    for service in deployment.services_in_start_order() {
        let supervisor = service
            .spawn(system, env)
            .await
            .map_err(|source| StartError::Spawn { service, source })?;
        hosted.push((service, supervisor));
    }
    if let Some(node) = node {
        let services: Vec<ServiceKind> = hosted.iter().map(|(s, _)| *s).collect();
        cluster::serve(node, &services)?;
    }
    Ok(hosted)
}

/// Stops the node (which stops its system) or, in a monolith, the system.
async fn stop_all(node: Option<&Node>, system: &ActorSystem) {
    match node {
        Some(node) => node.shutdown().await,
        None => system.shutdown().await,
    }
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("node", &self.process.system.node_name())
            .field("http", &self.http_addr())
            .finish()
    }
}
