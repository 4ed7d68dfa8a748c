//! The driver on virtual time: three nodes in one process whose membership packets go
//! straight into each other's drivers, through a switch that can cut one node off. Tokio's
//! paused clock runs foca's timers, so a partition of a few hundred milliseconds costs none.

use super::*;

/// The short timing of the network-fault tests: a cut of [`SUSPECTED_CUT`] raises
/// suspicions and ends well before suspect-to-down.
const TIMING: MembershipTiming = MembershipTiming {
    probe_period_ms: 100,
    probe_rtt_ms: 50,
    suspect_to_down_ms: 500,
};
const SUSPECTED_CUT: Duration = Duration::from_millis(250);
/// Longer than suspect-to-down plus a few probe periods.
const SETTLE: Duration = Duration::from_millis(1_500);

/// Delivers packets between the drivers, except to or from the node that is cut off.
#[derive(Default)]
struct Switch {
    drivers: Mutex<HashMap<String, mpsc::Sender<Input>>>,
    cut_off: Mutex<Option<String>>,
    events: Mutex<Vec<(String, MemberEvent)>>,
}

/// One node's side of the [`Switch`].
struct Port {
    node: String,
    switch: Arc<Switch>,
}

impl MembershipHost for Port {
    fn send_membership(&self, to: &ClusterId, packet: Bytes) {
        let cut_off = self
            .switch
            .cut_off
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cut_off
            .as_ref()
            .is_some_and(|n| *n == self.node || *n == to.name)
        {
            return;
        }
        let drivers = self
            .switch
            .drivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(driver) = drivers.get(&to.name) {
            let _ = driver.try_send(Input::Data(packet));
        }
    }

    fn member_event(&self, event: MemberEvent) {
        self.switch
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.node.clone(), event));
    }
}

/// `a`, `b` and `c`, each with its driver, connected through one [`Switch`].
struct Cluster {
    switch: Arc<Switch>,
    nodes: Vec<(ClusterId, Membership)>,
}

impl Cluster {
    /// Starts `a`, `b` and `c`; `b` and `c` announce themselves to `a`. Returns once every
    /// node sees every node alive.
    async fn start() -> Cluster {
        let switch = Arc::new(Switch::default());
        let nodes: Vec<(ClusterId, Membership)> = [("a", 1), ("b", 2), ("c", 3)]
            .into_iter()
            .map(|(name, port)| {
                let me = ClusterId {
                    name: name.to_string(),
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    incarnation: 1,
                };
                let port = Arc::new(Port {
                    node: name.to_string(),
                    switch: Arc::clone(&switch),
                });
                let membership = Membership::start(me.clone(), &TIMING, port);
                switch
                    .drivers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_string(), membership.tx.clone());
                (me, membership)
            })
            .collect();
        let cluster = Cluster { switch, nodes };
        cluster.membership("b").announce(cluster.id("a"));
        cluster.membership("c").announce(cluster.id("a"));
        cluster.until_all_alive().await;
        cluster
    }

    fn node(&self, name: &str) -> &(ClusterId, Membership) {
        self.nodes
            .iter()
            .find(|(id, _)| id.name == name)
            .expect("a node of the cluster")
    }

    fn id(&self, name: &str) -> ClusterId {
        self.node(name).0.clone()
    }

    fn membership(&self, name: &str) -> &Membership {
        &self.node(name).1
    }

    /// How `observer` sees `member`.
    fn state_of(&self, observer: &str, member: &str) -> Option<MemberState> {
        self.membership(observer)
            .members()
            .into_iter()
            .find(|m| m.name == member)
            .map(|m| m.state)
    }

    /// Drops every packet to or from `name` until [`Cluster::heal`].
    fn cut_off(&self, name: &str) {
        *self
            .switch
            .cut_off
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(name.to_string());
    }

    fn heal(&self) {
        *self
            .switch
            .cut_off
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Waits (on virtual time) until every node sees every node alive.
    async fn until_all_alive(&self) {
        for _ in 0..100 {
            let whole = self.nodes.iter().all(|(_, m)| {
                m.members()
                    .iter()
                    .filter(|m| m.state == MemberState::Alive)
                    .count()
                    == 3
            });
            if whole {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the cluster did not become whole in 10 s");
    }

    /// Takes the events seen so far, as `(observer, event)`.
    fn take_events(&self) -> Vec<(String, MemberEvent)> {
        std::mem::take(
            &mut *self
                .switch
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

#[tokio::test(start_paused = true)]
async fn a_refuted_suspicion_does_not_make_the_suspect_rejoin() {
    let cluster = Cluster::start().await;
    cluster.take_events();
    cluster.cut_off("a");
    tokio::time::sleep(SUSPECTED_CUT).await;
    cluster.heal();
    tokio::time::sleep(SETTLE).await;
    let events = cluster.take_events();
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, MemberEvent::Suspect { .. })),
        "the cut raised a suspicion: {events:?}"
    );
    let departures_and_rejoins: Vec<_> = events
        .iter()
        .filter(|(_, e)| !matches!(e, MemberEvent::Suspect { .. }))
        .collect();
    assert_eq!(
        departures_and_rejoins,
        Vec::<&(String, MemberEvent)>::new(),
        "every suspicion was refuted in time, so nobody rejoined"
    );
}

/// The other side of the trade-off: `TurnUndead` to a node that really was declared down
/// still goes out, so it rejoins once it is reachable again.
#[tokio::test(start_paused = true)]
async fn a_node_declared_down_rejoins_once_the_partition_heals() {
    let cluster = Cluster::start().await;
    cluster.take_events();
    cluster.cut_off("a");
    tokio::time::sleep(SETTLE).await;
    for observer in ["b", "c"] {
        assert_eq!(
            cluster.state_of(observer, "a"),
            Some(MemberState::Down),
            "{observer} declared a down"
        );
    }
    cluster.heal();
    // What a node does when it connects to a peer again (`Node::connect`).
    cluster.membership("a").announce(cluster.id("b"));
    cluster.until_all_alive().await;
    let events = cluster.take_events();
    for observer in ["b", "c"] {
        assert!(
            events.contains(&(
                observer.to_string(),
                MemberEvent::Joined { node: "a".into() }
            )),
            "{observer} saw a rejoin: {events:?}"
        );
    }
}
