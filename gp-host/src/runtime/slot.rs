//! A plugin's place in its manager: the version serving now, swapped atomically by upgrades
//! and unloads, and the plugin's metrics and event subscribers, which outlive versions.

use std::sync::Arc;

use crate::metrics::PluginMetrics;
use crate::runtime::events::Subscribers;
use crate::runtime::rcu::{self, VersionCell};
use crate::runtime::spec::Spec;

/// A plugin's place in its manager: the version serving now (none once unloaded), and the
/// plugin's metrics across versions. [`Executor`](crate::Executor)s point here, so an upgrade reaches them all.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) current: VersionCell,
    pub(crate) metrics: PluginMetrics,
    /// Whether calls are counted and timed.
    pub(crate) record_calls: bool,
    pub(crate) subscribers: Arc<Subscribers>,
}

impl Slot {
    pub(crate) fn new(
        name: String,
        record_calls: bool,
        sample: u32,
        subscribers: Arc<Subscribers>,
    ) -> Slot {
        Slot {
            name,
            current: VersionCell::empty(),
            metrics: PluginMetrics::new(sample),
            record_calls,
            subscribers,
        }
    }

    /// The spec of the version serving now.
    pub(crate) fn spec(&self) -> Option<Arc<Spec>> {
        self.current
            .with(rcu::thread(), |l| l.map(|l| Arc::clone(&l.spec)))
    }
}
