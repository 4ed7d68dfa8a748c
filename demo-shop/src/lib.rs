//! The demo shop: user, product, order, payment, analytics and notification services behind
//! an HTTP gateway, running as one process or as several nodes with only the deployment
//! file deciding where each service lives.
//!
//! Each service is a named, supervised actor (see [`services`]). Business code finds its
//! peers by name through the actor system and asks them with a time-out; it never learns
//! whether a peer runs in this process or on another node. Events (`user.registered`,
//! `order.created`, `order.failed`) travel through the framework's pub/sub.
//!
//! ```no_run
//! use demo_shop::{Deployment, Shop};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let shop = Shop::start(Deployment::monolith()?).await?;
//! println!("try http://{}/products", shop.http_addr().expect("the monolith has a gateway"));
//! shop.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Parts
//! - [`config`]: the deployment file (which services run here, HTTP, storage, the node).
//! - [`services`]: one module per service, and the [`Service`](services::Service) trait.
//! - [`events`]: the events and their topics.
//! - [`Shop`]: starts the services of a deployment, the gateway and (in a cluster) the node.
//! - [`load`] and [`scenario`]: the `load` command and the end-to-end scenario.

mod call;
mod cluster;
pub mod config;
pub mod events;
mod gateway;
pub mod load;
pub mod local_cluster;
mod metrics;
mod runtime;
pub mod scenario;
pub mod services;
pub mod storage;

pub use config::{Deployment, DeploymentError};
pub use runtime::{MONOLITH_NODE, Shop, StartError};
