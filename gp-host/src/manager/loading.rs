//! Plugins whose load is under way: each one's spec, from its verified `plugin.json` and
//! library, holds its place while its library maps and its `on_load` runs, which happens
//! outside the change lock so that one slow hook holds back no other change.
//!
//! A reservation is made with the change lock held, right after the admission checks passed,
//! and the checks count it from then on (as they count a disabled plugin): a plugin loading
//! keeps its routes, and no other load or upgrade can take them meanwhile. It ends with the
//! change lock held too, in the same critical section that puts the loaded version in its slot
//! (so a check sees the plugin reserved or serving, never neither nor both), or that gives up
//! on a failed load. Subscribers hear of both ends: [`Event::Loading`] when it starts, and
//! [`Event::Loaded`] or [`Event::LoadAbandoned`] when it ends.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::manager::Manager;
use crate::runtime::events::Event;
use crate::runtime::spec::Spec;
use crate::util::lock;

/// The plugins loading now, by name.
#[derive(Default)]
pub(crate) struct Reservations(Mutex<BTreeMap<String, Arc<Spec>>>);

impl Manager {
    /// Stops [`load_plugins`](Self::load_plugins), in this call and every later one, from
    /// starting the load of another folder: the loads under way finish (each `on_load` within
    /// the hook timeout), and those calls then return with the folders they tried. From now
    /// on [`sync`](Self::sync) (the watcher's changes), `install` and uploads refuse with
    /// [`Error::Stopping`](crate::Error::Stopping) too. For a shutdown: once the changes in
    /// progress returned, nothing loads behind an [`unload_all`](Self::unload_all).
    pub fn stop_loading(&self) {
        self.inner
            .loads_stopped
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether [`stop_loading`](Self::stop_loading) was called.
    pub(crate) fn loads_stopped(&self) -> bool {
        self.inner
            .loads_stopped
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The plugins whose load is under way (their library mapping or their `on_load`
    /// running), by name: not serving yet, their routes reserved. A load ends serving
    /// ([`Event::Loaded`]) or not at all ([`Event::LoadAbandoned`], then the failure).
    pub fn loading(&self) -> Vec<Spec> {
        self.loading_specs()
            .iter()
            .map(|spec| Spec::clone(spec))
            .collect()
    }

    /// The plugin called `name`, if its load is under way.
    pub fn loading_plugin(&self, name: &str) -> Option<Spec> {
        self.loading_spec(name).map(|spec| Spec::clone(&spec))
    }

    /// [`loading_plugin`](Self::loading_plugin)'s spec, shared rather than copied.
    pub(crate) fn loading_spec(&self, name: &str) -> Option<Arc<Spec>> {
        lock(&self.inner.loading.0).get(name).cloned()
    }

    /// Whether a plugin is loading, asked without holding the manager (a check the manager
    /// keeps must not keep it alive).
    #[cfg(feature = "http")]
    pub(crate) fn loading_probe(&self) -> impl Fn(&str) -> bool + Send + Sync + 'static {
        let inner = std::sync::Arc::downgrade(&self.inner);
        move |name| {
            inner
                .upgrade()
                .is_some_and(|inner| lock(&inner.loading.0).contains_key(name))
        }
    }

    /// The specs of the plugins loading now, shared, by name.
    pub(crate) fn loading_specs(&self) -> Vec<Arc<Spec>> {
        lock(&self.inner.loading.0).values().cloned().collect()
    }

    /// Reserves `spec`'s place while it loads. `_changes` is the change lock, held: the
    /// admission checks that passed it and this reservation are one step for every other
    /// change.
    pub(crate) fn reserve(&self, spec: &Spec, _changes: &MutexGuard<'_, ()>) {
        lock(&self.inner.loading.0).insert(spec.name().to_owned(), Arc::new(spec.clone()));
    }

    /// Ends `name`'s reservation, with the change lock held: its version is going into its
    /// slot in the same critical section, or its load failed.
    pub(crate) fn release(&self, name: &str, _changes: &MutexGuard<'_, ()>) {
        lock(&self.inner.loading.0).remove(name);
    }

    /// Tells subscribers a load started (after the change lock is released).
    pub(crate) fn announce_loading(&self, spec: &Spec) {
        tracing::debug!(target: "gp", plugin = spec.name(), version = %spec.version(), "plugin loading");
        self.inner.subscribers.emit(&Event::Loading { spec });
    }

    /// Tells subscribers a load that started will not serve: its reservation is gone (after
    /// the change lock is released; the failure itself is reported by whoever asked for the
    /// load, as any other).
    pub(crate) fn announce_abandoned(&self, spec: &Spec) {
        self.inner.subscribers.emit(&Event::LoadAbandoned {
            plugin: spec.name(),
        });
    }
}

/// The order in which `load_plugins`' concurrent loads are admitted: folder by folder, in
/// name order, as when they loaded one after another. So when two folders' routes conflict,
/// the later name is refused on every start, whichever thread got further first. Only
/// admission is in order: the slow part of a load (mapping the library, the pre-flight, the
/// `on_load` hook) runs after it, concurrently.
pub(crate) struct AdmissionOrder {
    /// Which folders passed, and the first that has not.
    passed: Mutex<(usize, Vec<bool>)>,
    changed: Condvar,
}

/// A folder's place in an [`AdmissionOrder`]. It passes (lets the next folder be admitted)
/// when its load reserved its place, or, whatever happened, when dropped.
pub(crate) struct Ticket<'a> {
    order: &'a AdmissionOrder,
    at: usize,
    passed: Cell<bool>,
}

impl AdmissionOrder {
    /// An order for `folders` folders.
    pub(crate) fn new(folders: usize) -> AdmissionOrder {
        AdmissionOrder {
            passed: Mutex::new((0, vec![false; folders])),
            changed: Condvar::new(),
        }
    }

    /// The ticket of folder `at`, once every folder before it passed. Taken holding no lock
    /// and no plugin's turn: a folder before it never waits for one after it.
    pub(crate) fn wait(&self, at: usize) -> Ticket<'_> {
        let mut passed = lock(&self.passed);
        while passed.0 < at {
            passed = self.changed.wait(passed).unwrap_or_else(|p| p.into_inner());
        }
        Ticket {
            order: self,
            at,
            passed: Cell::new(false),
        }
    }
}

impl Ticket<'_> {
    /// Lets the next folder be admitted (once; later calls do nothing).
    pub(crate) fn pass(&self) {
        if self.passed.replace(true) {
            return;
        }
        let mut passed = lock(&self.order.passed);
        let (first, done) = &mut *passed;
        done[self.at] = true;
        while done.get(*first) == Some(&true) {
            *first += 1;
        }
        drop(passed);
        self.order.changed.notify_all();
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.pass();
    }
}
