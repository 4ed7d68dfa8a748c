//! The shop's services, one module each, each a named actor under its own supervisor.
//!
//! | service | name | what it does |
//! | --- | --- | --- |
//! | [`user`] | `users` | registers customers (valid, unique e-mail), finds and validates them |
//! | [`product`] | `products` | the catalog: prices and stock; quotes, reserves and releases stock per order |
//! | [`payment`] | `payments` | charges and refunds per order, idempotently; declines by simple rules |
//! | [`order`] | `orders` | the saga that places an order, and the orders themselves |
//! | [`analytics`] | `analytics` | counts the shop's events |
//! | [`notification`] | `notifications` | records the e-mails the shop would send |
//!
//! A service finds the others by name, through the shop's call policies, and never knows
//! where they run. Each keeps its state in its own SQLite database ([`crate::storage`]).

pub mod analytics;
pub mod notification;
pub mod order;
pub mod payment;
pub mod product;
pub mod user;

use std::fmt;
use std::time::Duration;

use actor_core::{ActorSystem, Backoff, ChildSpec, SpawnError, Supervisor, SupervisorRef};
use actor_remote::RemoteActor;
use serde::{Deserialize, Serialize};

use crate::call::Calls;
use crate::storage::Storage;

pub use analytics::Analytics;
pub use notification::Notifications;
pub use order::Orders;
pub use payment::Payments;
pub use product::Products;
pub use user::Users;

/// A shop service: an actor type with the name it is registered and found under.
pub trait Service: RemoteActor {
    /// The registered name (`"products"`).
    const NAME: &'static str;

    /// A fresh instance; called at the first start and at every restart.
    fn new(env: &Env) -> Self;
}

/// What services are made with: where they keep data, and how they call each other (the
/// call policies and circuit breakers this process shares). Made by [`Shop`](crate::Shop).
#[derive(Debug, Clone)]
pub struct Env {
    pub(crate) storage: Storage,
    pub(crate) calls: Calls,
}

/// Names one of the six services, as written in a deployment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// [`Users`].
    Users,
    /// [`Products`].
    Products,
    /// [`Payments`].
    Payments,
    /// [`Analytics`].
    Analytics,
    /// [`Notifications`].
    Notifications,
    /// [`Orders`].
    Orders,
}

/// Where a service was found, as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The node it runs on.
    pub node: String,
    /// Whether that is this process.
    pub local: bool,
    /// Whether sends to it may succeed now.
    pub alive: bool,
}

impl ServiceKind {
    /// All services, in start order: each starts after the services it calls.
    pub const ALL: [ServiceKind; 6] = [
        ServiceKind::Users,
        ServiceKind::Products,
        ServiceKind::Payments,
        ServiceKind::Analytics,
        ServiceKind::Notifications,
        ServiceKind::Orders,
    ];

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Users => Users::NAME,
            ServiceKind::Products => Products::NAME,
            ServiceKind::Payments => Payments::NAME,
            ServiceKind::Analytics => Analytics::NAME,
            ServiceKind::Notifications => Notifications::NAME,
            ServiceKind::Orders => Orders::NAME,
        }
    }

    /// Starts the service under a supervisor of its own, registered under its name.
    pub(crate) async fn spawn(
        self,
        system: &ActorSystem,
        env: &Env,
    ) -> Result<SupervisorRef, SpawnError> {
        match self {
            ServiceKind::Users => supervise::<Users>(system, env).await,
            ServiceKind::Products => supervise::<Products>(system, env).await,
            ServiceKind::Payments => supervise::<Payments>(system, env).await,
            ServiceKind::Analytics => supervise::<Analytics>(system, env).await,
            ServiceKind::Notifications => supervise::<Notifications>(system, env).await,
            ServiceKind::Orders => supervise::<Orders>(system, env).await,
        }
    }

    /// Where the service runs, if this node can find it now.
    pub fn locate(self, system: &ActorSystem) -> Option<Location> {
        match self {
            ServiceKind::Users => locate::<Users>(system),
            ServiceKind::Products => locate::<Products>(system),
            ServiceKind::Payments => locate::<Payments>(system),
            ServiceKind::Analytics => locate::<Analytics>(system),
            ServiceKind::Notifications => locate::<Notifications>(system),
            ServiceKind::Orders => locate::<Orders>(system),
        }
    }

    /// Messages waiting in the service's mailbox, if it runs here.
    pub fn mailbox_len(self, system: &ActorSystem) -> Option<usize> {
        fn len<A: Service>(system: &ActorSystem) -> Option<usize> {
            system.lookup::<A>(A::NAME).ok()?.mailbox_len()
        }
        match self {
            ServiceKind::Users => len::<Users>(system),
            ServiceKind::Products => len::<Products>(system),
            ServiceKind::Payments => len::<Payments>(system),
            ServiceKind::Analytics => len::<Analytics>(system),
            ServiceKind::Notifications => len::<Notifications>(system),
            ServiceKind::Orders => len::<Orders>(system),
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// At most this many restarts of one service within [`RESTART_WINDOW`] before its
/// supervisor gives up on it.
const MAX_RESTARTS: u32 = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(10);

async fn supervise<A: Service>(
    system: &ActorSystem,
    env: &Env,
) -> Result<SupervisorRef, SpawnError> {
    let env = env.clone();
    system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .named(A::NAME)
                .max_restarts(MAX_RESTARTS, RESTART_WINDOW)
                .backoff(Backoff::exponential(
                    Duration::from_millis(50),
                    Duration::from_secs(2),
                ))
                .child(ChildSpec::new(A::NAME, move || A::new(&env))),
        )
        .await
}

fn locate<A: Service>(system: &ActorSystem) -> Option<Location> {
    let found = system.lookup::<A>(A::NAME).ok()?;
    Some(Location {
        node: found.node().to_owned(),
        local: found.is_local(),
        alive: found.is_alive(),
    })
}

/// `1245` cents -> `"12.45"`.
pub(crate) fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
