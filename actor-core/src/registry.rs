//! The local name registry: names to typed refs.
//!
//! A name is taken when its actor is spawned and freed when that actor stops for good, so a
//! restart keeps it. Look-ups are typed: a name registered for another actor type is a
//! [`LookupError::WrongType`], not a ref that fails later.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::sync::Notify;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, short_type_name};
use crate::error::{LookupError, SpawnError};
use crate::id::ActorId;
use crate::stats::ActorStats;

struct Entry {
    id: ActorId,
    type_id: TypeId,
    type_name: &'static str,
    actor: Box<dyn Any + Send + Sync>,
    stats: Option<Arc<dyn StatsSource>>,
}

/// Reads an actor's counters without knowing its type.
pub(crate) trait StatsSource: Send + Sync {
    fn stats(&self) -> ActorStats;
}

impl<A: Actor> StatsSource for crate::mailbox::Mailbox<A> {
    fn stats(&self) -> ActorStats {
        crate::mailbox::Mailbox::stats(self)
    }
}

/// Names of the live actors of one system.
#[derive(Default)]
pub(crate) struct Registry {
    names: DashMap<Arc<str>, Entry>,
    /// Woken on every registration, for `lookup_wait`.
    registered: Notify,
}

impl Registry {
    /// Takes `name` for `actor`, or says it is taken.
    pub(crate) fn register<A: Actor>(
        &self,
        name: &Arc<str>,
        actor: &ActorRef<A>,
    ) -> Result<(), SpawnError> {
        let stats = actor
            .mailbox()
            .map(|mb| Arc::clone(mb) as Arc<dyn StatsSource>);
        self.insert(
            name,
            Entry {
                id: actor.id(),
                type_id: TypeId::of::<A>(),
                type_name: short_type_name::<A>(),
                actor: Box::new(actor.clone()),
                stats,
            },
        )
    }

    fn insert(&self, name: &Arc<str>, entry: Entry) -> Result<(), SpawnError> {
        match self.names.entry(Arc::clone(name)) {
            MapEntry::Occupied(_) => Err(SpawnError::NameTaken(name.to_string())),
            MapEntry::Vacant(v) => {
                v.insert(entry);
                self.registered.notify_waiters();
                Ok(())
            }
        }
    }

    /// Counters of every registered actor, sorted by name.
    pub(crate) fn stats(&self) -> Vec<ActorStats> {
        let mut all: Vec<ActorStats> = self
            .names
            .iter()
            .filter_map(|e| e.stats.as_ref().map(|s| s.stats()))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Frees `name` if it still belongs to actor `id`.
    pub(crate) fn unregister(&self, name: &str, id: ActorId) {
        self.names.remove_if(name, |_, e| e.id == id);
    }

    /// The ref registered under `name`, typed.
    pub(crate) fn lookup<T: Clone + 'static>(&self, name: &str) -> Result<T, LookupError> {
        let entry = self
            .names
            .get(name)
            .ok_or_else(|| LookupError::NotFound(name.to_string()))?;
        entry
            .actor
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| LookupError::WrongType {
                name: name.to_string(),
                expected: short_type_name::<T>(),
                actual: entry.type_name,
            })
    }

    /// Whether `name` is registered for a value of type `type_id`.
    pub(crate) fn has(&self, name: &str, type_id: TypeId) -> bool {
        self.names.get(name).is_some_and(|e| e.type_id == type_id)
    }

    /// Names currently registered, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.names.iter().map(|e| e.key().to_string()).collect();
        names.sort();
        names
    }

    /// Waits up to `timeout` for `name` to be registered.
    pub(crate) async fn wait_for(&self, name: &str, timeout: Duration) -> Result<(), LookupError> {
        let wait = async {
            loop {
                let notified = self.registered.notified();
                if self.names.contains_key(name) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| LookupError::Timeout {
                name: name.to_string(),
                timeout,
            })
    }
}
