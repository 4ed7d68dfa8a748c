//! Membership and failure detection: SWIM (with Lifeguard's suspicion) from `foca`, driven
//! over the authenticated QUIC transport.
//!
//! `foca` is the pure state machine: it is handed bytes and timer events and says what to
//! send, when to wake it, and what changed. This module is its thin driver: one task owns the
//! `Foca` value, membership packets travel as control frames on the links (so nobody outside
//! the cluster can inject members), timers are Tokio sleeps that feed events back, and
//! changes become [`MemberEvent`]s.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use foca::{
    AccumulatingRuntime, BincodeCodec, Codec, Config, Foca, Identity, Message, OwnedNotification,
    Timer,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::config::MembershipTiming;

/// A member's identity in the gossip: its node name, the address it is dialed at, and an
/// incarnation (a newer start of the same name wins).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct ClusterId {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
}

impl Identity for ClusterId {
    type Addr = String;

    /// Declared down by mistake (a pause, a partition): rejoin at once as a newer incarnation.
    fn renew(&self) -> Option<Self> {
        Some(ClusterId {
            incarnation: self.incarnation + 1,
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.name.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.incarnation > adversary.incarnation
    }
}

/// How a member is seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed probes; declared down unless it refutes in time.
    Suspect,
    /// Declared down by the cluster.
    Down,
    /// Left gracefully.
    Left,
}

/// A member of the cluster, as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's name.
    pub name: String,
    /// The address it is dialed at.
    pub addr: SocketAddr,
    /// Its state.
    pub state: MemberState,
    /// Whether this is the local node.
    pub is_self: bool,
}

/// A change in the membership, published to subscribers of
/// [`MEMBER_EVENTS`](crate::MEMBER_EVENTS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A node joined (or rejoined as a new incarnation).
    Joined {
        /// Its name.
        node: String,
    },
    /// A node missed probes and is suspected.
    Suspect {
        /// Its name.
        node: String,
    },
    /// A node was declared down: its names are gone, asks in flight to it failed.
    Down {
        /// Its name.
        node: String,
    },
    /// A node left gracefully.
    Left {
        /// Its name.
        node: String,
    },
}

impl actor_core::Message for MemberEvent {
    type Reply = ();
}

/// What the driver needs from the node: sending membership packets, and hearing the news.
pub(crate) trait MembershipHost: Send + Sync + 'static {
    /// Sends a membership packet to `to`, dialing it first if needed.
    fn send_membership(&self, to: &ClusterId, packet: Bytes);
    /// Reports a change (after the member table is updated).
    fn member_event(&self, event: MemberEvent);
}

enum Input {
    Data(Bytes),
    Timer(Timer<ClusterId>),
    Announce(ClusterId),
    Leave(oneshot::Sender<()>),
}

/// Handle to the membership driver task.
pub(crate) struct Membership {
    tx: mpsc::Sender<Input>,
    table: Arc<Mutex<HashMap<String, Member>>>,
    /// Nodes that announced a graceful leave: their `down` is reported as `left`.
    leaving: Arc<Mutex<HashSet<String>>>,
}

/// Membership packets waiting for the driver; beyond this they are dropped (SWIM tolerates
/// loss; a flood cannot grow memory).
const INPUT_CAPACITY: usize = 4096;

impl Membership {
    /// Starts the driver for this node's identity `me`.
    pub(crate) fn start(
        me: ClusterId,
        timing: &MembershipTiming,
        host: Arc<dyn MembershipHost>,
    ) -> Membership {
        let mut config = Config::new_lan(NonZeroU32::MIN.saturating_add(7));
        config.probe_period = Duration::from_millis(timing.probe_period_ms);
        config.probe_rtt = Duration::from_millis(timing.probe_rtt_ms);
        config.suspect_to_down_after = Duration::from_millis(timing.suspect_to_down_ms);
        config.max_packet_size = NonZeroUsize::MIN.saturating_add(64 * 1024 - 1);
        // A node declared down is told so (`TurnUndead`), renews its identity and rejoins at
        // once. Without it, the two sides of a healed partition would ignore each other's
        // packets as coming from down members until foca forgets them (`remove_down_after`,
        // 24 h). foca also sends it after refuted suspicions; `drain` drops those.
        config.notify_down_members = true;
        // Each update is gossiped this many times. The LAN preset's few transmissions could
        // all go to the reachable side of a short partition, so a suspect never heard of its
        // suspicion, never refuted it, and was declared down.
        config.max_transmissions = std::num::NonZeroU8::MIN.saturating_add(9);
        let foca = Foca::new(me.clone(), config, StdRng::from_os_rng(), wire_codec());
        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let table = Arc::new(Mutex::new(HashMap::from([(
            me.name.clone(),
            Member {
                name: me.name.clone(),
                addr: me.addr,
                state: MemberState::Alive,
                is_self: true,
            },
        )])));
        let leaving = Arc::new(Mutex::new(HashSet::new()));
        let driver = Driver {
            foca,
            codec: wire_codec(),
            runtime: AccumulatingRuntime::new(),
            tx: tx.clone(),
            host,
            table: Arc::clone(&table),
            leaving: Arc::clone(&leaving),
            suspected: HashSet::new(),
            left: false,
        };
        tokio::spawn(driver.run(rx));
        Membership { tx, table, leaving }
    }

    /// A membership packet from a peer.
    pub(crate) fn handle_data(&self, packet: Vec<u8>) {
        if self.tx.try_send(Input::Data(Bytes::from(packet))).is_err() {
            tracing::debug!("membership input full; packet dropped");
        }
    }

    /// Asks `peer` to let us join.
    pub(crate) fn announce(&self, peer: ClusterId) {
        let _ = self.tx.try_send(Input::Announce(peer));
    }

    /// Notes that `node` said it is leaving.
    pub(crate) fn mark_leaving(&self, node: &str) {
        self.leaving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node.to_string());
    }

    /// Declares this node as leaving to the cluster and waits until that went out.
    pub(crate) async fn leave(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Input::Leave(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), wait).await;
        }
    }

    /// The members known now, sorted by name.
    pub(crate) fn members(&self) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
    }
}

type WireCodec = BincodeCodec<bincode::config::Configuration>;

type Swim = Foca<ClusterId, WireCodec, StdRng, foca::NoCustomBroadcast>;

/// How foca's packets are encoded (the driver decodes the headers of its own packets too).
fn wire_codec() -> WireCodec {
    BincodeCodec(bincode::config::standard())
}

struct Driver {
    foca: Swim,
    /// Reads the headers of outgoing packets (see [`Driver::tells_a_live_member_it_is_down`]).
    codec: WireCodec,
    runtime: AccumulatingRuntime<ClusterId>,
    tx: mpsc::Sender<Input>,
    host: Arc<dyn MembershipHost>,
    table: Arc<Mutex<HashMap<String, Member>>>,
    leaving: Arc<Mutex<HashSet<String>>>,
    suspected: HashSet<String>,
    /// This node is leaving: foca then reports itself defunct and alone, as it should.
    left: bool,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        while let Some(input) = rx.recv().await {
            let outcome = match input {
                Input::Data(packet) => self.foca.handle_data(&packet, &mut self.runtime),
                Input::Timer(timer) => self.foca.handle_timer(timer, &mut self.runtime),
                Input::Announce(peer) => self.foca.announce(peer, &mut self.runtime),
                Input::Leave(done) => {
                    self.left = true;
                    let left = self.foca.leave_cluster(&mut self.runtime);
                    self.drain();
                    let _ = done.send(());
                    if let Err(e) = left {
                        tracing::debug!(error = %e, "leaving the cluster");
                    }
                    return;
                }
            };
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "membership input rejected");
            }
            self.drain();
        }
    }

    /// Carries out what foca asked for: sends, timers, notifications.
    fn drain(&mut self) {
        while let Some((to, packet)) = self.runtime.to_send() {
            if self.tells_a_live_member_it_is_down(&to, &packet) {
                tracing::debug!(member = %to.name, "dropped a TurnUndead to a live member");
                continue;
            }
            self.host.send_membership(&to, packet);
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(Input::Timer(timer)).await;
            });
        }
        while let Some(notification) = self.runtime.to_notify() {
            self.notified(notification);
        }
        self.track_suspects();
    }

    /// Whether `packet` is a `TurnUndead` ("you were declared down") for a node this foca
    /// holds as alive or suspect, which must not go out.
    ///
    /// foca 1.0 (and 2.0) sends one whenever a suspect-to-down timer fires, even if the
    /// suspect refuted the suspicion in the meantime: in `Foca::handle_timer`,
    /// `Timer::ChangeSuspectToDown` sends it whenever `Members::apply_existing_if` returns
    /// `Some`, and that returns `Some` for a known member whether or not its
    /// "still the suspected incarnation" condition held. The receiver does not check that the
    /// packet was meant for its current identity: it renews its identity and rejoins, so every
    /// refuted suspicion became a rejoin, and its registrations and links were churned.
    ///
    /// The check is by name, so a `TurnUndead` for an older incarnation of a node whose newer
    /// one is live is dropped too. A member this foca holds as down (or does not know) still
    /// gets its `TurnUndead`, which is what heals a partition (see `notify_down_members` in
    /// [`Membership::start`]). The price is decoding the header of every outgoing packet, two
    /// identities and a tag; if our view is wrong and the node is down elsewhere, the nodes
    /// that hold it as down tell it.
    fn tells_a_live_member_it_is_down(&mut self, to: &ClusterId, packet: &[u8]) -> bool {
        let turn_undead = Codec::<ClusterId>::decode_header(&mut self.codec, packet)
            .is_ok_and(|header| matches!(header.message, Message::TurnUndead));
        turn_undead && self.foca.iter_members().any(|m| m.id().name == to.name)
    }

    fn notified(&mut self, notification: OwnedNotification<ClusterId>) {
        match notification {
            OwnedNotification::MemberUp(id) => {
                self.set(&id, MemberState::Alive);
                self.host
                    .member_event(MemberEvent::Joined { node: id.name });
            }
            OwnedNotification::MemberDown(id) => {
                let left = self
                    .leaving
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id.name);
                let (state, event) = if left {
                    (
                        MemberState::Left,
                        MemberEvent::Left {
                            node: id.name.clone(),
                        },
                    )
                } else {
                    (
                        MemberState::Down,
                        MemberEvent::Down {
                            node: id.name.clone(),
                        },
                    )
                };
                self.set(&id, state);
                self.suspected.remove(&id.name);
                self.host.member_event(event);
            }
            OwnedNotification::Rename(old, new) => {
                // A restart seen before the old life was declared down: a rejoin.
                let was_up = self
                    .table
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&old.name)
                    .is_some_and(|m| matches!(m.state, MemberState::Alive | MemberState::Suspect));
                self.set(&new, MemberState::Alive);
                if was_up && new.incarnation != old.incarnation {
                    self.host
                        .member_event(MemberEvent::Joined { node: new.name });
                }
            }
            OwnedNotification::Active => tracing::info!("joined the cluster"),
            OwnedNotification::Idle | OwnedNotification::Defunct if self.left => {
                tracing::debug!("membership ended: this node left");
            }
            OwnedNotification::Idle => tracing::warn!("no other live member known"),
            OwnedNotification::Defunct => tracing::warn!("declared down by the cluster"),
            OwnedNotification::Rejoin(id) => {
                tracing::warn!(
                    incarnation = id.incarnation,
                    "rejoined the cluster after being declared down"
                );
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    fn set(&self, id: &ClusterId, state: MemberState) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let member = table.entry(id.name.clone()).or_insert_with(|| Member {
            name: id.name.clone(),
            addr: id.addr,
            state,
            is_self: false,
        });
        member.addr = id.addr;
        member.state = state;
    }

    /// foca does not notify suspicion; read it off the member list.
    fn track_suspects(&mut self) {
        let now: HashSet<String> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() == foca::State::Suspect)
            .map(|m| m.id().name.clone())
            .collect();
        for name in now.difference(&self.suspected) {
            if let Some(m) = self
                .table
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(name)
            {
                m.state = MemberState::Suspect;
            }
            self.host
                .member_event(MemberEvent::Suspect { node: name.clone() });
        }
        for name in self.suspected.difference(&now) {
            let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(m) = table.get_mut(name) {
                if m.state == MemberState::Suspect {
                    m.state = MemberState::Alive;
                }
            }
        }
        self.suspected = now;
    }
}

#[cfg(test)]
mod tests;
