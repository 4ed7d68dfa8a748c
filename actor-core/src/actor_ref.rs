//! [`ActorRef`]: the handle through which everyone talks to an actor, local or remote.

use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::actor::{Actor, Handler, Message};
use crate::envelope::{AskEnvelope, Told};
use crate::error::{AskError, SendError};
use crate::id::ActorId;
use crate::mailbox::{Mailbox, PushError, Signal};
use crate::pending::PendingReply;
use crate::recipient::Recipient;
use crate::remote::{ErasedMessage, Feeder, MessageRef, RemoteRoute, Sending};

/// A typed handle to an actor.
///
/// Cheap to clone (one reference count), `Send + Sync`, comparable and hashable by the actor's
/// node and id, and printable as `node/name#id`. The same type addresses a local actor (a
/// direct mailbox push, never serialized) or one on another node (through a [`RemoteRoute`]);
/// the calling code does not change.
///
/// A ref stays valid across restarts of its actor: it points at the mailbox, which outlives
/// each instance. Once the actor stops for good, sends fail with `Stopped`.
pub struct ActorRef<A: Actor> {
    route: Route<A>,
}

enum Route<A: Actor> {
    Local(Arc<Mailbox<A>>),
    Remote(Arc<dyn RemoteRoute>),
}

impl<A: Actor> ActorRef<A> {
    pub(crate) fn local(mailbox: Arc<Mailbox<A>>) -> Self {
        Self {
            route: Route::Local(mailbox),
        }
    }

    /// A ref that delivers through `route` (for transport crates; see [`RemoteRoute`]).
    pub fn from_remote(route: Arc<dyn RemoteRoute>) -> Self {
        Self {
            route: Route::Remote(route),
        }
    }

    pub(crate) fn mailbox(&self) -> Option<&Arc<Mailbox<A>>> {
        match &self.route {
            Route::Local(mb) => Some(mb),
            Route::Remote(_) => None,
        }
    }

    /// The actor's id on its node.
    pub fn id(&self) -> ActorId {
        match &self.route {
            Route::Local(mb) => mb.id,
            Route::Remote(r) => r.id(),
        }
    }

    /// The actor's registered name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match &self.route {
            Route::Local(mb) => mb.name.as_deref(),
            Route::Remote(r) => r.name(),
        }
    }

    /// The name of the node the actor lives on.
    pub fn node(&self) -> &str {
        match &self.route {
            Route::Local(mb) => &mb.system.node,
            Route::Remote(r) => r.node(),
        }
    }

    /// Whether the actor lives in this process.
    pub fn is_local(&self) -> bool {
        matches!(self.route, Route::Local(_))
    }

    /// Whether sends may currently succeed: the actor has not stopped for good (and, when
    /// remote, its node is reachable).
    pub fn is_alive(&self) -> bool {
        match &self.route {
            Route::Local(mb) => mb.is_open(),
            Route::Remote(r) => r.is_alive(),
        }
    }

    /// Messages waiting in a local actor's mailbox (queued or taken, not yet handled);
    /// `None` for a remote actor.
    pub fn mailbox_len(&self) -> Option<usize> {
        self.mailbox().map(|mb| mb.len())
    }

    /// A snapshot of a local actor's counters; `None` for a remote actor.
    pub fn stats(&self) -> Option<crate::stats::ActorStats> {
        self.mailbox().map(|mb| mb.stats())
    }

    /// A local actor's mailbox capacity; `None` for a remote actor.
    pub fn mailbox_capacity(&self) -> Option<usize> {
        self.mailbox().map(|mb| mb.capacity())
    }

    /// Asks a local actor to stop as if it had called [`Context::stop`](crate::Context::stop):
    /// the current message finishes, `stopped` runs, and messages still queued stay for a
    /// restarted instance or, if it stops for good, are refused with `Stopped`. Its supervisor
    /// applies the child's restart policy. Returns `false` (and does nothing) for a remote
    /// actor.
    pub fn stop(&self) -> bool {
        match &self.route {
            Route::Local(mb) => {
                mb.signal(Signal::StopSelf);
                true
            }
            Route::Remote(_) => false,
        }
    }

    /// Hands this actor a feeder: a source of its messages, such as a transport's stream,
    /// run by whichever task is free to run it. While the actor waits for messages, the
    /// feeder runs in the actor's own task, so what it delivers is handled with no task in
    /// between (and answers leave from that same task); while the actor is busy, it runs in
    /// a helper task of its own, so it keeps reading and a slow handler never holds it up.
    ///
    /// The feeder delivers through this actor's mailbox as any sender does. It must not wait
    /// for this actor's answers (those are made while it waits). A panic in it drops it (and
    /// is logged) without failing the actor. It survives restarts, as the mailbox does, and
    /// is dropped when the actor stops for good.
    ///
    /// # Errors
    /// The feeder is handed back when the actor is remote or has stopped for good, or when
    /// called outside a Tokio runtime (the helper task needs one).
    pub fn attach_feeder(&self, feeder: Feeder) -> Result<(), Feeder> {
        match &self.route {
            Route::Local(mb) => mb.attach_feeder(feeder),
            Route::Remote(_) => Err(feeder),
        }
    }

    /// Sends `msg` without waiting for a reply, waiting for mailbox room if needed.
    ///
    /// At-most-once; messages from one sender to one receiver arrive in send order.
    ///
    /// # Errors
    /// `Stopped` when the actor has stopped for good, `Unreachable` / `NotRemote` for a remote
    /// actor that cannot take it; the message is handed back in each case.
    pub async fn tell<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Message,
    {
        match &self.route {
            Route::Local(mb) => mb
                .push(Told::new(msg))
                .await
                .map_err(|env| SendError::Stopped(env.into_message())),
            // Encoded before this returns: the message is only borrowed, and nothing is boxed
            // unless the route has to wait for room.
            Route::Remote(r) => match r.tell(MessageRef::new(&msg)) {
                Ok(Sending::Sent) => Ok(()),
                Ok(Sending::Waiting(queued)) => queued.await.map_err(|e| e.map(|()| msg)),
                Err(e) => Err(e.map(|()| msg)),
            },
        }
    }

    /// Sends `msg` if that is possible without waiting.
    ///
    /// # Errors
    /// `Full` when the mailbox is at capacity, `Stopped` when the actor has stopped for good;
    /// the message is handed back.
    pub fn try_tell<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Message,
    {
        match &self.route {
            Route::Local(mb) => mb.try_push(Told::new(msg)).map_err(|(reason, env)| {
                let msg = env.into_message();
                match reason {
                    PushError::Full => SendError::Full(msg),
                    PushError::Closed => SendError::Stopped(msg),
                }
            }),
            Route::Remote(r) => r
                .try_tell(MessageRef::new(&msg))
                .map_err(|e| e.map(|()| msg)),
        }
    }

    /// Sends messages from the front of `msgs`, in order, as many as can go without waiting,
    /// and returns how many went; those are taken out of `msgs`, the rest stay in it.
    ///
    /// For a local actor the messages that fit go into the mailbox as one envelope, with one
    /// lock, one allocation and at most one wake-up of the actor for all of them, where a
    /// `try_tell` per message pays each per message: the way to deliver a burst that arrived
    /// together (a transport's read, say). Each message is still handled on its own (its own
    /// span; a panic loses only that message, and the rest go to the restarted instance).
    /// Ordering is as for `tell`.
    /// `Ok(0)` means the mailbox is full; `tell` the first remaining message to wait for room.
    ///
    /// ```
    /// # use std::collections::VecDeque;
    /// # use actor_core::{Actor, ActorSystem, Context, Handler, Message};
    /// # struct Counter(u64);
    /// # impl Actor for Counter {}
    /// # struct Add(u64);
    /// # impl Message for Add { type Reply = (); }
    /// # struct Get;
    /// # impl Message for Get { type Reply = u64; }
    /// # impl Handler<Add> for Counter {
    /// #     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) { self.0 += msg.0; }
    /// # }
    /// # impl Handler<Get> for Counter {
    /// #     async fn handle(&mut self, _msg: Get, _ctx: &mut Context<Self>) -> u64 { self.0 }
    /// # }
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = ActorSystem::new();
    /// let counter = system.spawn(Counter(0)).await?;
    /// let mut burst: VecDeque<Add> = (1..=3).map(Add).collect();
    /// assert_eq!(counter.try_tell_many(&mut burst)?, 3);
    /// assert!(burst.is_empty());
    /// assert_eq!(counter.ask(Get).await?, 6);
    /// # system.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `Stopped` when the actor has stopped for good, and for a remote actor the error of the
    /// first message (`Unreachable`, `NotRemote`, ...), with nothing taken out of `msgs`. A
    /// remote send that fails after some went returns how many went; the failing message
    /// stays first in `msgs`.
    pub fn try_tell_many<M>(&self, msgs: &mut VecDeque<M>) -> Result<usize, SendError<()>>
    where
        A: Handler<M>,
        M: Message,
    {
        match &self.route {
            Route::Local(mb) => mb.try_push_run(msgs).map_err(|_| SendError::Stopped(())),
            Route::Remote(r) => {
                let mut sent = 0;
                while let Some(msg) = msgs.front() {
                    match r.try_tell(MessageRef::new(msg)) {
                        Ok(()) => sent += 1,
                        Err(SendError::Full(())) => break,
                        Err(e) if sent == 0 => return Err(e),
                        Err(_) => break,
                    }
                    msgs.pop_front();
                }
                Ok(sent)
            }
        }
    }

    /// Sends `msg` and waits for the reply, at most the system's default ask time-out.
    ///
    /// Exactly one outcome: the reply or an [`AskError`], never later than the time-out.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Reply, AskError>
    where
        A: Handler<M>,
        M: Message,
    {
        self.ask_timeout(msg, self.default_ask_timeout()).await
    }

    fn default_ask_timeout(&self) -> Duration {
        match &self.route {
            Route::Local(mb) => mb.system.ask_timeout,
            Route::Remote(r) => r.ask_timeout(),
        }
    }

    /// Sends `msg` and waits for the reply at most `timeout` (waiting for mailbox room
    /// counts against it).
    ///
    /// # Errors
    /// `Timeout` when no reply came in time (the message may still be handled later),
    /// `HandlerPanicked` when handling it panicked, `Stopped` when the actor stopped before
    /// handling it, and the remote errors (`NodeDown`, `UnknownMessage`, ...) for remote actors.
    pub async fn ask_timeout<M>(&self, msg: M, timeout: Duration) -> Result<M::Reply, AskError>
    where
        A: Handler<M>,
        M: Message,
    {
        let deadline = deadline_after(timeout);
        match &self.route {
            Route::Local(mb) => {
                let (env, rx, expiry) = AskEnvelope::open(msg, timeout);
                match mb.try_push(env) {
                    Ok(()) => {}
                    Err((PushError::Closed, _)) => return Err(AskError::Stopped),
                    // Waiting for room counts against the time-out.
                    Err((PushError::Full, env)) => {
                        match tokio::time::timeout_at(deadline, mb.push(env)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return Err(AskError::Stopped),
                            Err(_) => return Err(AskError::Timeout(timeout)),
                        }
                    }
                }
                mb.system.deadlines.watch(deadline, timeout, expiry);
                rx.await
            }
            Route::Remote(r) => {
                let queued =
                    tokio::time::timeout_at(deadline, r.send_ask(ErasedMessage::new(msg), timeout))
                        .await;
                match queued {
                    Ok(Ok(pending)) => PendingReply::<M::Reply>::remote(pending).await,
                    Ok(Err(e)) => Err(AskError::from(e)),
                    Err(_) => Err(AskError::Timeout(timeout)),
                }
            }
        }
    }

    /// Queues an ask (waiting for mailbox room) and returns its [`PendingReply`] without
    /// waiting for the reply, so several asks can be in flight from one task while keeping
    /// their send order. The reply resolves within the default ask time-out of this call.
    ///
    /// # Errors
    /// As [`tell`](Self::tell); the message is handed back.
    pub async fn send_ask<M>(&self, msg: M) -> Result<PendingReply<M::Reply>, SendError<M>>
    where
        A: Handler<M>,
        M: Message,
    {
        let timeout = self.default_ask_timeout();
        let deadline = deadline_after(timeout);
        match &self.route {
            Route::Local(mb) => {
                let (env, rx, expiry) = AskEnvelope::open(msg, timeout);
                let queued = match mb.try_push(env) {
                    Ok(()) => Ok(()),
                    Err((PushError::Closed, env)) => Err(env),
                    Err((PushError::Full, env)) => mb.push(env).await,
                };
                match queued {
                    Ok(()) => {
                        mb.system.deadlines.watch(deadline, timeout, expiry);
                        Ok(PendingReply::local(rx))
                    }
                    Err(env) => Err(SendError::Stopped(env.into_message())),
                }
            }
            Route::Remote(r) => {
                let pending = r
                    .send_ask(ErasedMessage::new(msg), timeout)
                    .await
                    .map_err(|e| e.map(recover::<M>))?;
                Ok(PendingReply::remote(pending))
            }
        }
    }

    /// This ref erased to one message type, for callers that must not know the actor type.
    pub fn recipient<M>(&self) -> Recipient<M>
    where
        A: Handler<M>,
        M: Message,
    {
        Recipient::new(self.clone())
    }
}

/// `now + timeout`, saturating far in the future for huge time-outs.
pub(crate) fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

/// Takes a message back out of an erased one that a route refused.
fn recover<M: 'static>(erased: ErasedMessage) -> M {
    match erased.downcast::<M>() {
        Ok(m) => m,
        // A route hands back what it was given; anything else is a bug in the route.
        Err(e) => unreachable!("route returned a different message type: {}", e.type_name),
    }
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        let route = match &self.route {
            Route::Local(mb) => Route::Local(Arc::clone(mb)),
            Route::Remote(r) => Route::Remote(Arc::clone(r)),
        };
        Self { route }
    }
}

impl<A: Actor> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id() && self.node() == other.node()
    }
}

impl<A: Actor> Eq for ActorRef<A> {}

impl<A: Actor> Hash for ActorRef<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.node().hash(state);
        self.id().hash(state);
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef<{}>({self})", short_type_name::<A>())
    }
}

impl<A: Actor> fmt::Display for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}{}",
            self.node(),
            self.name().unwrap_or(""),
            self.id()
        )
    }
}

/// The last path segment of a type name (`shop::Products` -> `Products`).
pub(crate) fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}
