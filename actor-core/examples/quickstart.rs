//! A tour of actor-core: named actors, tell/ask, a supervised actor that crashes and comes
//! back behind the same ref, and typed pub/sub.
//!
//! Run with `cargo run --release -p actor-core --example quickstart`.

use std::time::Duration;

use actor_core::{
    Actor, ActorSystem, AskError, Backoff, ChildSpec, Context, Handler, Message, Supervisor, Topic,
};

/// Keeps a stock count per product.
#[derive(Default)]
struct Inventory {
    stock: std::collections::HashMap<String, u32>,
}
impl Actor for Inventory {}

struct Restock {
    sku: String,
    qty: u32,
}
impl Message for Restock {
    type Reply = ();
}
impl Handler<Restock> for Inventory {
    async fn handle(&mut self, msg: Restock, _ctx: &mut Context<Self>) {
        *self.stock.entry(msg.sku).or_default() += msg.qty;
    }
}

struct StockOf(String);
impl Message for StockOf {
    type Reply = u32;
}
impl Handler<StockOf> for Inventory {
    async fn handle(&mut self, msg: StockOf, _ctx: &mut Context<Self>) -> u32 {
        self.stock.get(&msg.0).copied().unwrap_or(0)
    }
}

/// Panics on request, to show a restart.
struct Fragile {
    generation: u32,
}
impl Actor for Fragile {}

struct Poke {
    explode: bool,
}
impl Message for Poke {
    type Reply = u32;
}
impl Handler<Poke> for Fragile {
    async fn handle(&mut self, msg: Poke, _ctx: &mut Context<Self>) -> u32 {
        assert!(!msg.explode, "poked too hard");
        self.generation += 1;
        self.generation
    }
}

#[derive(Clone)]
struct Restocked(String);
impl Message for Restocked {
    type Reply = ();
}
impl Handler<Restocked> for Inventory {
    async fn handle(&mut self, msg: Restocked, _ctx: &mut Context<Self>) {
        println!("  inventory heard: {} was restocked", msg.0);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One line per panic instead of a backtrace: the panic below is on purpose.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("  (panic caught by the actor: {info})")
    }));
    let system = ActorSystem::new();

    let inventory = system
        .spawn_named("inventory", Inventory::default())
        .await?;
    inventory
        .tell(Restock {
            sku: "tea".into(),
            qty: 3,
        })
        .await?;
    inventory
        .tell(Restock {
            sku: "tea".into(),
            qty: 2,
        })
        .await?;
    println!(
        "tea in stock: {}",
        inventory.ask(StockOf("tea".into())).await?
    );

    let _tree = system
        .spawn_supervisor(
            Supervisor::one_for_one()
                .max_restarts(3, Duration::from_secs(5))
                .backoff(Backoff::exponential(
                    Duration::from_millis(10),
                    Duration::from_secs(1),
                ))
                .child(ChildSpec::new("fragile", || Fragile { generation: 0 })),
        )
        .await?;
    let fragile = system.lookup::<Fragile>("fragile")?;
    println!(
        "fragile says {}",
        fragile.ask(Poke { explode: false }).await?
    );
    match fragile.ask(Poke { explode: true }).await {
        Err(AskError::HandlerPanicked { .. }) => {
            println!("fragile panicked; its supervisor restarts it")
        }
        other => println!("unexpected: {other:?}"),
    }
    println!(
        "same ref, fresh instance says {}",
        fragile.ask(Poke { explode: false }).await?
    );

    let topic = Topic::<Restocked>::new("stock.restocked");
    system.pubsub().subscribe(&topic, inventory.recipient());
    let delivered = system
        .pubsub()
        .publish(&topic, Restocked("tea".into()))
        .await;
    println!("published to {delivered} subscriber(s)");

    system.shutdown().await;
    println!("shut down cleanly");
    Ok(())
}
