//! [`Where`]: an actor that says which node it runs on, served by `test-node --serve NAME`.

use std::time::Duration;

use actor_core::{Actor, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

/// Answers [`WhereAreYou`] and [`Stall`] with the name of the node it runs on, so a caller
/// sees which instance of a name (or of a group) handled its ask.
#[derive(Debug, Clone)]
pub struct Where {
    node: String,
}

impl Where {
    /// An instance that answers `node`.
    pub fn new(node: impl Into<String>) -> Self {
        Where { node: node.into() }
    }
}

impl Actor for Where {}

impl RemoteActor for Where {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts.message::<WhereAreYou>().message::<Stall>();
    }
}

/// Asks for the name of the node the actor runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhereAreYou;

impl Message for WhereAreYou {
    type Reply = String;
}

impl RemoteMessage for WhereAreYou {
    const TAG: &'static str = "tests.cluster.where_are_you.v1";
}

impl Handler<WhereAreYou> for Where {
    async fn handle(&mut self, _msg: WhereAreYou, _ctx: &mut Context<Self>) -> String {
        self.node.clone()
    }
}

/// Asks the actor to sleep this many milliseconds, then answer like [`WhereAreYou`]; the
/// actor handles nothing else meanwhile. Keeps asks in flight for as long as a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall(pub u64);

impl Message for Stall {
    type Reply = String;
}

impl RemoteMessage for Stall {
    const TAG: &'static str = "tests.cluster.stall.v1";
}

impl Handler<Stall> for Where {
    async fn handle(&mut self, msg: Stall, _ctx: &mut Context<Self>) -> String {
        tokio::time::sleep(Duration::from_millis(msg.0)).await;
        self.node.clone()
    }
}
