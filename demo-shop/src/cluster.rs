//! What a node does beyond a monolith: carry the shop's message types and topics, and offer
//! its services to the other nodes.
//!
//! Joining happens in `Node::start` (through the seeds in the node's config); finding the
//! services hosted elsewhere happens in `ActorSystem::lookup_wait`, which the node extends
//! across the cluster. The services themselves do not change.

use actor_remote::{Node, ServeError};

use crate::events;
use crate::services::{
    Analytics, Notifications, Orders, Payments, Products, Service, ServiceKind, Users,
};

/// Teaches the node every service's remote messages (so refs to any of them found on peers
/// can encode them) and makes the shop's topics cluster-wide. Call before the services
/// start, so their subscriptions are announced.
pub(crate) fn prepare(node: &Node) {
    node.register::<Users>();
    node.register::<Products>();
    node.register::<Payments>();
    node.register::<Analytics>();
    node.register::<Notifications>();
    node.register::<Orders>();
    node.register_topic(&events::user_registered());
    node.register_topic(&events::order_created());
    node.register_topic(&events::order_failed());
}

/// Offers the `hosted` services (already started) to the other nodes.
pub(crate) fn serve(node: &Node, hosted: &[ServiceKind]) -> Result<(), ServeError> {
    fn serve<A: Service>(node: &Node) -> Result<(), ServeError> {
        match node.system().lookup::<A>(A::NAME) {
            Ok(service) => node.serve(&service),
            Err(_) => Err(ServeError::NotNamedLocal),
        }
    }
    for kind in hosted {
        match kind {
            ServiceKind::Users => serve::<Users>(node)?,
            ServiceKind::Products => serve::<Products>(node)?,
            ServiceKind::Payments => serve::<Payments>(node)?,
            ServiceKind::Analytics => serve::<Analytics>(node)?,
            ServiceKind::Notifications => serve::<Notifications>(node)?,
            ServiceKind::Orders => serve::<Orders>(node)?,
        }
    }
    Ok(())
}
