//! [`Echo`]: the test actor served by every test node, and the remote messages it accepts.
//!
//! | message | kind | what the actor does |
//! | --- | --- | --- |
//! | [`Ping`]`(n)` | ask, replies `u64` | replies `n` |
//! | [`Record`]`(n)` | tell | counts it and checks that `n` is the count before it, i.e. that records from one sender arrive in send order starting at 0 |
//! | [`Summary`] | ask, replies `(u64, bool)` | replies (records counted, all in order) |
//! | [`Slow`]`(ms)` | ask, replies `String` | sleeps `ms` milliseconds, then replies `"done"` |
//! | [`Boom`] | ask | panics with [`BOOM_PANIC`] |
//!
//! A fresh instance summarizes as `(0, true)`: nothing counted, nothing out of order.

use std::time::Duration;

use actor_core::{Actor, Context, Handler, Message};
use actor_remote::{Accepts, RemoteActor, RemoteMessage};
use serde::{Deserialize, Serialize};

/// The panic message of [`Boom`].
pub const BOOM_PANIC: &str = "boom requested";

/// The reply of [`Slow`].
pub const SLOW_REPLY: &str = "done";

/// Echoes, records tells in order, sleeps and panics on request.
#[derive(Debug)]
pub struct Echo {
    received: u64,
    in_order: bool,
}

impl Default for Echo {
    fn default() -> Self {
        Echo {
            received: 0,
            in_order: true,
        }
    }
}

impl Actor for Echo {}

impl RemoteActor for Echo {
    fn accepts(accepts: &mut Accepts<Self>) {
        accepts
            .message::<Ping>()
            .message::<Record>()
            .message::<Summary>()
            .message::<Slow>()
            .message::<Boom>();
    }
}

/// Asks for its own number back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping(pub u64);

impl Message for Ping {
    type Reply = u64;
}

impl RemoteMessage for Ping {
    const TAG: &'static str = "tests.echo.ping.v1";
}

impl Handler<Ping> for Echo {
    async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self>) -> u64 {
        msg.0
    }
}

/// The `n`-th record of one sender, counting from 0 (a tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record(pub u64);

impl Message for Record {
    type Reply = ();
}

impl RemoteMessage for Record {
    const TAG: &'static str = "tests.echo.record.v1";
}

impl Handler<Record> for Echo {
    async fn handle(&mut self, msg: Record, _ctx: &mut Context<Self>) {
        self.in_order &= msg.0 == self.received;
        self.received += 1;
    }
}

/// Asks for (records counted, all in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary;

impl Message for Summary {
    type Reply = (u64, bool);
}

impl RemoteMessage for Summary {
    const TAG: &'static str = "tests.echo.summary.v1";
}

impl Handler<Summary> for Echo {
    async fn handle(&mut self, _msg: Summary, _ctx: &mut Context<Self>) -> (u64, bool) {
        (self.received, self.in_order)
    }
}

/// Asks the actor to sleep this many milliseconds before replying [`SLOW_REPLY`]; the actor
/// handles nothing else meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slow(pub u64);

impl Message for Slow {
    type Reply = String;
}

impl RemoteMessage for Slow {
    const TAG: &'static str = "tests.echo.slow.v1";
}

impl Handler<Slow> for Echo {
    async fn handle(&mut self, msg: Slow, _ctx: &mut Context<Self>) -> String {
        tokio::time::sleep(Duration::from_millis(msg.0)).await;
        SLOW_REPLY.to_string()
    }
}

/// Makes the handler panic with [`BOOM_PANIC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boom;

impl Message for Boom {
    type Reply = ();
}

impl RemoteMessage for Boom {
    const TAG: &'static str = "tests.echo.boom.v1";
}

impl Handler<Boom> for Echo {
    async fn handle(&mut self, _msg: Boom, _ctx: &mut Context<Self>) {
        panic!("{BOOM_PANIC}");
    }
}
