//! The set of plugins a host has loaded and how it changes.
//!
//! [`Manager`] is a thin handle over it; each change has a file of its own: [`sync`] (discover,
//! load, sync a folder or package), [`upgrade`], [`unload`], `install` (feature `install`),
//! with [`report`] holding what they return and [`builder`] the settings. One mutex orders
//! the changes; calls never take it (they go through a slot, in the runtime).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::error::Error;
use crate::metrics::PluginStats;
use crate::runtime::events::{Event, Subscribers, SubscriptionId};
use crate::runtime::executor::Executor;
use crate::runtime::reaper::Reaper;
use crate::runtime::slot::Slot;
use crate::runtime::spec::Spec;
#[cfg(feature = "package")]
use crate::source::package::{Limits, Trust};
use crate::source::Settings;
use crate::util::{lock, read, short_hash, write};

pub(crate) mod admission;
pub(crate) mod builder;
pub(crate) mod disable;
#[cfg(feature = "hub")]
pub(crate) mod follow;
pub(crate) mod gc;
#[cfg(feature = "install")]
pub(crate) mod install;
pub(crate) mod loading;
pub(crate) mod readiness;
#[cfg(feature = "package")]
pub(crate) mod replace;
pub(crate) mod report;
pub(crate) mod serial;
pub(crate) mod sync;
pub(crate) mod unload;
pub(crate) mod upgrade;

pub use admission::AdmissionId;
pub use builder::ManagerBuilder;
pub use disable::{Disabled, DISABLED_DIR, MAX_REASON};
pub use readiness::{Readiness, Refusal};
use report::{Synced, Upgraded};

/// A kept package's size and modification time, and the version it holds, if it verified.
pub(crate) type KeptVersion = (
    (u64, Option<std::time::SystemTime>),
    Option<semver::Version>,
);

/// Discovers, verifies, loads, upgrades, unloads and hands out plugins.
///
/// Plugins live in a base directory, one folder each: `BASE/<folder>/plugin.json` plus the
/// library its `source.path` names, relative to that folder.
///
/// ```no_run
/// use gp_host::{Context, Manager};
///
/// let manager = Manager::new("plugins");
/// let report = manager.load_plugins();
/// for failure in &report.failed {
///     eprintln!("{}", failure.error); // one bad plugin never stops the others
/// }
/// let (spec, executor) = manager.get_plugin("sample")?;
/// println!("plugin '{}' loaded with version '{}'", spec.name(), spec.version());
/// let mut ctx = Context::new();
/// ctx.set("sample", "hello gp");
/// executor.execute(&mut ctx)?;
/// # Ok::<(), gp_host::Error>(())
/// ```
///
/// # Loading, upgrading, unloading
///
/// - A library is never opened where it lies: the manager copies it to
///   `runtime_dir/<file stem>-<sha256 prefix><suffix>` and loads the copy. The dynamic loader
///   caches libraries by path, so each build needs a path of its own, and a build tool that
///   overwrites the original in place cannot corrupt the running code. The copy is deleted
///   once loaded (the loaded code stays mapped).
/// - [`upgrade`](Self::upgrade) verifies the new version completely (file, manifest, name,
///   version, layout, `on_load`) before it swaps it in atomically. Calls already running
///   finish on the old version; every call that starts after the swap runs the new one. The
///   old version's `on_unload` runs when its last call has returned.
/// - [`unload`](Self::unload) removes the plugin at once, cancels its calls in flight
///   (`ctx.is_cancelled()` turns true in the plugin), waits for them, then runs `on_unload`.
///
/// Loaded code is never unmapped: abi_stable never closes a library, because values and
/// vtables a plugin created may still be referenced. An unloaded or replaced version stops
/// being callable, but its code and statics stay in memory until the process exits, and
/// loading the very same build again reuses them (its statics keep their values). The
/// original go-plugin has the same limit.
///
/// A `Manager` is a handle: clones share the same plugins.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The settings it was built with.
    pub(crate) config: ManagerBuilder,
    /// `config.runtime_dir`, or its default.
    pub(crate) runtime_dir: PathBuf,
    pub(crate) slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    pub(crate) subscribers: Arc<Subscribers>,
    /// Held by every change to the set of plugins (load, upgrade, unload), never by calls.
    pub(crate) changes: Mutex<()>,
    /// Held by [`Manager::install`] from download to load: installs run one at a time,
    /// downloads included. (What keeps one plugin's files from being swapped by two changes
    /// is its turn, [`Manager::turn`]; this lock only keeps installs from downloading at once.)
    #[cfg_attr(not(feature = "install"), allow(dead_code))]
    pub(crate) installs: Mutex<()>,
    /// One change at a time per plugin.
    pub(crate) turns: serial::Turns,
    /// Where each plugin was last loaded from, kept after it unloads: a change to an unloaded
    /// plugin (an upgrade, a load) writes and reads there, as it would if it were loaded.
    pub(crate) origins: Mutex<std::collections::HashMap<String, PathBuf>>,
    /// The version each kept package holds (what a roll-back would load), by its size and
    /// modification time when it was read: verifying a package on every look is too slow.
    #[cfg_attr(not(feature = "package"), allow(dead_code))]
    pub(crate) kept_versions: Mutex<std::collections::HashMap<PathBuf, KeptVersion>>,
    pub(crate) reaper: Reaper,
    /// Checks the application registered with [`Manager::admit`].
    pub(crate) admissions: admission::Admissions,
    /// The plugins loading now, their places reserved.
    pub(crate) loading: loading::Reservations,
    /// Set by [`Manager::stop_loading`]: `load_plugins` starts no further folder.
    pub(crate) loads_stopped: std::sync::atomic::AtomicBool,
    /// Set when [`Manager::load_plugins`] first returns (see `readiness`).
    pub(crate) first_load_done: std::sync::atomic::AtomicBool,
    /// What the followers started here refuse (see `readiness`).
    pub(crate) refusals: readiness::Refusals,
}

impl Manager {
    /// The plugin base directory.
    pub fn base_dir(&self) -> &Path {
        &self.inner.config.base_dir
    }

    /// Where the private copies of loaded libraries go.
    pub fn runtime_dir(&self) -> &Path {
        &self.inner.runtime_dir
    }

    /// The package signatures this manager accepts.
    #[cfg(feature = "package")]
    pub fn trust(&self) -> &Trust {
        &self.inner.config.trust
    }

    /// How large a package this manager accepts.
    #[cfg(feature = "package")]
    pub fn package_limits(&self) -> Limits {
        self.inner.config.limits
    }

    /// How sources are resolved for this manager.
    pub(crate) fn settings(&self) -> Settings<'_> {
        let config = &self.inner.config;
        Settings {
            runtime_dir: &self.inner.runtime_dir,
            #[cfg(feature = "package")]
            trust: &config.trust,
            #[cfg(feature = "package")]
            limits: &config.limits,
            git_build: config.remote_git.then_some(&config.git_build),
        }
    }

    /// The plugin called `name`: the spec of the version serving now and an executor to call
    /// it with.
    pub fn get_plugin(&self, name: &str) -> Result<(Spec, Executor), Error> {
        let slot = self.existing_slot(name);
        let spec = slot.as_ref().and_then(|s| s.spec());
        match (slot, spec) {
            (Some(slot), Some(spec)) => Ok((Spec::clone(&spec), Executor::new(slot))),
            _ => Err(Error::NotFound {
                plugin: name.to_owned(),
            }),
        }
    }

    /// The executor of the plugin called `name`.
    pub fn executor(&self, name: &str) -> Result<Executor, Error> {
        self.get_plugin(name).map(|(_, executor)| executor)
    }

    /// The specs of the versions serving now, shared rather than copied, by name.
    pub(crate) fn serving_specs(&self) -> Vec<Arc<Spec>> {
        read(&self.inner.slots)
            .values()
            .filter_map(|slot| slot.spec())
            .collect()
    }

    /// The specs of every loaded plugin, by name.
    pub fn list(&self) -> Vec<Spec> {
        self.serving_specs()
            .iter()
            .map(|spec| Spec::clone(spec))
            .collect()
    }

    /// Calls `handler` with every event: lifecycle events (loaded, load failed, upgraded,
    /// upgrade refused, unloaded) and, on every call of every plugin, [`Event::BeforeCall`]
    /// and [`Event::AfterCall`], in the calling thread. While any such subscription exists,
    /// calls take a slower path; [`subscribe_lifecycle`](Self::subscribe_lifecycle) does not.
    ///
    /// A handler that panics is logged and skipped.
    pub fn subscribe(
        &self,
        handler: impl Fn(&Event<'_>) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.inner.subscribers.subscribe(true, Arc::new(handler))
    }

    /// Calls `handler` with lifecycle events only (not call events): no cost on calls.
    pub fn subscribe_lifecycle(
        &self,
        handler: impl Fn(&Event<'_>) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.inner.subscribers.subscribe(false, Arc::new(handler))
    }

    /// Ends a subscription; `false` if it had ended already.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.inner.subscribers.unsubscribe(id)
    }

    /// A snapshot of every plugin's metrics (plugins unloaded included), by name.
    pub fn stats(&self) -> Vec<PluginStats> {
        let slots: Vec<Arc<Slot>> = read(&self.inner.slots).values().cloned().collect();
        slots
            .iter()
            .map(|slot| {
                let spec = slot.spec();
                let version = spec.as_ref().map(|s| s.version().clone());
                let build = spec.map(|s| s.sha256.clone());
                slot.metrics.snapshot(&slot.name, version, build)
            })
            .collect()
    }

    /// Registers this manager's metrics in a `prometheus_client` registry (feature
    /// `metrics`), so that an application exposes them with its own: each plugin's, named
    /// `gp_plugin_…` with a `plugin` label, and the readiness, `gp_ready`,
    /// `gp_required_missing{plugin}` and `gp_follow_refusing{plugin,target,digest}`.
    #[cfg(feature = "metrics")]
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let manager = Arc::downgrade(&self.inner);
        let stats = Arc::new(move || {
            manager
                .upgrade()
                .map(|inner| Manager { inner }.stats())
                .unwrap_or_default()
        });
        registry
            .sub_registry_with_prefix("gp_plugin")
            .register_collector(Box::new(crate::metrics::prometheus::ManagerCollector {
                stats,
            }));
        self.register_readiness(registry);
    }

    /// This manager's metrics in the Prometheus text exposition format (OpenMetrics;
    /// feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn prometheus(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.register_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Logs a load or an upgrade and sends it to subscribers, once the change lock is released
    /// (so that a subscriber may change the plugins itself).
    pub(crate) fn announce(&self, synced: &Synced) {
        match synced {
            Synced::Loaded(spec) => {
                self.remember_origin(spec);
                tracing::info!(target: "gp", plugin = spec.name(), version = %spec.version(), build = short_hash(&spec.sha256), dir = %spec.dir.display(), "plugin loaded");
                self.inner.subscribers.emit(&Event::Loaded { spec });
            }
            Synced::Upgraded(Upgraded { from, to }) => {
                self.remember_origin(to);
                tracing::info!(target: "gp", plugin = to.name(), from = %from.version(), to = %to.version(), from_build = short_hash(&from.sha256), to_build = short_hash(&to.sha256), "plugin upgraded");
                self.inner.subscribers.emit(&Event::Upgraded { from, to });
            }
            Synced::Unchanged(_) | Synced::Unloaded | Synced::Nothing => {}
        }
    }

    /// Logs a failure and sends it to subscribers.
    pub(crate) fn report_failure(&self, path: &Path, error: &Error) {
        match error {
            Error::UpgradeRefused { plugin, .. } => {
                self.inner
                    .subscribers
                    .emit(&Event::UpgradeRefused { plugin, error });
            }
            _ => {
                tracing::warn!(target: "gp", path = %path.display(), "plugin not loaded: {error}");
                self.inner
                    .subscribers
                    .emit(&Event::LoadFailed { path, error });
            }
        }
    }

    pub(crate) fn reported(&self, path: &Path, error: Error) -> Error {
        if matches!(error, Error::UpgradeRefused { .. }) {
            self.report_failure(path, &error);
        }
        error
    }

    /// The plugin loaded from the folder or package `origin`, if any.
    pub(crate) fn name_loaded_from(&self, origin: &Path) -> Option<String> {
        let slots = read(&self.inner.slots);
        slots
            .values()
            .find(|slot| slot.spec().is_some_and(|s| s.origin == origin))
            .map(|slot| slot.name.clone())
    }

    pub(crate) fn existing_slot(&self, name: &str) -> Option<Arc<Slot>> {
        let slots = read(&self.inner.slots);
        slots.get(name).cloned()
    }

    /// The slot for `name`, created empty if there is none yet.
    pub(crate) fn slot(&self, name: &str) -> Arc<Slot> {
        if let Some(slot) = self.existing_slot(name) {
            return slot;
        }
        let mut slots = write(&self.inner.slots);
        Arc::clone(slots.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Slot::new(
                name.to_owned(),
                self.inner.config.metrics,
                self.inner.config.latency_sampling,
                Arc::clone(&self.inner.subscribers),
            ))
        }))
    }

    pub(crate) fn lock_changes(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.changes)
    }

    /// Waits for plugin `name`'s turn: one change at a time per plugin (see [`serial`]).
    /// Taken before the change lock, never while holding it.
    pub(crate) fn turn(&self, name: &str) -> serial::Turn<'_> {
        self.inner.turns.take(name)
    }

    /// Where plugin `name` lives: the folder or package it serves from, the one its disabled
    /// marker names, or the one it was last loaded from if it was unloaded since. `None` for
    /// a plugin this manager never loaded, or whose place now holds another plugin or is gone.
    pub fn origin_of(&self, name: &str) -> Option<PathBuf> {
        if let Ok((spec, _)) = self.get_plugin(name) {
            return Some(spec.origin);
        }
        if let Some(disabled) = self.disabled_plugin(name) {
            return Some(disabled.origin);
        }
        let origin = lock(&self.inner.origins).get(name).cloned()?;
        let taken = self
            .name_loaded_from(&origin)
            .is_some_and(|other| other != name);
        (origin.exists() && !taken).then_some(origin)
    }

    /// Remembers where plugin `name` was loaded from (see [`origin_of`](Self::origin_of)).
    pub(crate) fn remember_origin(&self, spec: &Spec) {
        lock(&self.inner.origins).insert(spec.name().to_owned(), spec.origin.clone());
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("base_dir", &self.inner.config.base_dir)
            .field("plugins", &self.list().len())
            .finish()
    }
}
