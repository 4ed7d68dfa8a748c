//! [`Breakers`]: one circuit breaker per (service, node), shared by everyone calling it.

use std::fmt;
use std::sync::Arc;

use dashmap::DashMap;

use super::breaker::{BreakerConfig, BreakerStats, CircuitBreaker};

/// A registry of circuit breakers keyed by (service name, node name).
///
/// Every caller of `payment` on node `n2` should share one breaker, so that failures seen by
/// one caller protect the others: ask the registry with [`for_target`](Self::for_target)
/// instead of creating breakers by hand. Breakers of different keys are independent; a
/// service failing on one node does not open its breaker on another.
///
/// Cheap to clone; every clone is the same registry. Breakers are created on first use with
/// the registry's [`BreakerConfig`] and live as long as the registry.
///
/// ```
/// use actor_core::policy::{BreakerConfig, Breakers};
///
/// let breakers = Breakers::new(BreakerConfig::new().open_after(3));
/// let a = breakers.for_target("payment", "n1");
/// let b = breakers.for_target("payment", "n1");
/// let c = breakers.for_target("payment", "n2");
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// assert!(!std::sync::Arc::ptr_eq(&a, &c));
/// ```
#[derive(Clone, Default)]
pub struct Breakers {
    config: BreakerConfig,
    by_target: Arc<DashMap<(String, String), Arc<CircuitBreaker>>>,
}

impl Breakers {
    /// An empty registry whose breakers use `config`.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            by_target: Arc::default(),
        }
    }

    /// The breaker for `service` on `node`, created closed on first use.
    pub fn for_target(&self, service: &str, node: &str) -> Arc<CircuitBreaker> {
        let key = (service.to_owned(), node.to_owned());
        if let Some(breaker) = self.by_target.get(&key) {
            return Arc::clone(&breaker);
        }
        let entry = self
            .by_target
            .entry(key)
            .or_insert_with(|| Arc::new(CircuitBreaker::new(service, node, self.config)));
        Arc::clone(&entry)
    }

    /// The breaker for `service` on `node`, if one was created.
    pub fn get(&self, service: &str, node: &str) -> Option<Arc<CircuitBreaker>> {
        let key = (service.to_owned(), node.to_owned());
        self.by_target.get(&key).map(|b| Arc::clone(&b))
    }

    /// The configuration new breakers get.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Snapshots of every breaker, sorted by service then node (for a health endpoint).
    pub fn stats(&self) -> Vec<BreakerStats> {
        let mut all: Vec<BreakerStats> = self.by_target.iter().map(|b| b.stats()).collect();
        all.sort_by(|a, b| (&a.service, &a.node).cmp(&(&b.service, &b.node)));
        all
    }
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers")
            .field("config", &self.config)
            .field("breakers", &self.by_target.len())
            .finish()
    }
}
