//! Local typed pub/sub.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actor_core::{Actor, ActorSystem, Context, Handler, Message, Topic};

#[derive(Clone, Debug, PartialEq)]
struct OrderCreated(u32);
impl Message for OrderCreated {
    type Reply = ();
}

struct Listener {
    got: Arc<Mutex<Vec<u32>>>,
}
impl Actor for Listener {}
impl Handler<OrderCreated> for Listener {
    async fn handle(&mut self, msg: OrderCreated, _ctx: &mut Context<Self>) {
        self.got.lock().expect("got").push(msg.0);
    }
}

struct Flush;
impl Message for Flush {
    type Reply = ();
}
impl Handler<Flush> for Listener {
    async fn handle(&mut self, _msg: Flush, _ctx: &mut Context<Self>) {}
}

#[tokio::test]
async fn publish_delivers_to_every_subscriber() {
    let system = ActorSystem::new();
    let topic = Topic::<OrderCreated>::new("order.created");
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let got = Arc::new(Mutex::new(Vec::new()));
        let l = system
            .spawn(Listener { got: got.clone() })
            .await
            .expect("spawn");
        assert!(system.pubsub().subscribe(&topic, l.recipient()));
        listeners.push((l, got));
    }
    assert_eq!(system.pubsub().publish(&topic, OrderCreated(1)).await, 3);
    assert_eq!(system.pubsub().publish(&topic, OrderCreated(2)).await, 3);
    for (l, got) in &listeners {
        l.ask(Flush).await.expect("flush");
        assert_eq!(*got.lock().expect("got"), vec![1, 2]);
    }
    system.shutdown().await;
}

#[tokio::test]
async fn a_stopped_subscriber_stops_receiving_and_is_dropped() {
    let system = ActorSystem::new();
    let topic = Topic::<OrderCreated>::new("order.created");
    let got_a = Arc::new(Mutex::new(Vec::new()));
    let got_b = Arc::new(Mutex::new(Vec::new()));
    let a = system
        .spawn(Listener { got: got_a.clone() })
        .await
        .expect("spawn");
    let b = system
        .spawn(Listener { got: got_b.clone() })
        .await
        .expect("spawn");
    system.pubsub().subscribe(&topic, a.recipient());
    system.pubsub().subscribe(&topic, b.recipient());
    assert_eq!(system.pubsub().publish(&topic, OrderCreated(1)).await, 2);
    b.ask(Flush).await.expect("flush");
    b.stop();
    tokio::time::timeout(Duration::from_secs(5), async {
        while b.is_alive() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("b stops");
    assert_eq!(system.pubsub().publish(&topic, OrderCreated(2)).await, 1);
    assert_eq!(system.pubsub().subscribers(&topic).len(), 1);
    a.ask(Flush).await.expect("flush");
    assert_eq!(*got_a.lock().expect("got"), vec![1, 2]);
    assert_eq!(*got_b.lock().expect("got"), vec![1]);
    system.shutdown().await;
}

#[tokio::test]
async fn subscribing_twice_delivers_once_and_a_name_keeps_its_type() {
    #[derive(Clone)]
    struct Other;
    impl Message for Other {
        type Reply = ();
    }
    impl Handler<Other> for Listener {
        async fn handle(&mut self, _msg: Other, _ctx: &mut Context<Self>) {}
    }
    let system = ActorSystem::new();
    let topic = Topic::<OrderCreated>::new("t");
    let got = Arc::new(Mutex::new(Vec::new()));
    let l = system
        .spawn(Listener { got: got.clone() })
        .await
        .expect("spawn");
    assert!(system.pubsub().subscribe(&topic, l.recipient()));
    assert!(system.pubsub().subscribe(&topic, l.recipient()));
    assert_eq!(system.pubsub().publish(&topic, OrderCreated(5)).await, 1);
    let clash = Topic::<Other>::new("t");
    assert!(!system.pubsub().subscribe(&clash, l.recipient()));
    system.shutdown().await;
}
