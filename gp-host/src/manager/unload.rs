//! Unloading a plugin: it leaves the manager at once, its calls in flight drain, and its
//! `on_unload` runs after the last of them. Unloading them all, in parallel, for a shutdown.

use std::time::Duration;

use crate::error::Error;
use crate::manager::Manager;
use crate::runtime::events::Event;
use crate::runtime::rcu::Retired;
use crate::runtime::reaper::{self, StillRunning, UnloadReport};

impl Manager {
    /// Unloads plugin `name`, waiting up to the manager's drain timeout for its calls in
    /// flight. See [`unload_with_timeout`](Self::unload_with_timeout).
    pub fn unload(&self, name: &str) -> Result<UnloadReport, Error> {
        self.unload_with_timeout(name, self.inner.config.drain_timeout)
    }

    /// Unloads plugin `name`: it leaves the manager at once (new calls get
    /// [`Error::NotFound`]), its calls in flight are cancelled (the plugin sees
    /// `ctx.is_cancelled()`; a call that stops for it returns [`Error::Unloaded`]), the
    /// unload waits up to `timeout` for them to return, then runs the plugin's `on_unload`.
    ///
    /// Calls still running at the timeout are reported in
    /// [`UnloadReport::still_running`]; they run to completion, and `on_unload` runs after
    /// the last of them. The code stays mapped (see the type's documentation).
    pub fn unload_with_timeout(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<UnloadReport, Error> {
        let _turn = self.turn(name);
        let old = {
            let _changes = self.lock_changes();
            self.take_out(name)
        }
        .ok_or_else(|| Error::NotFound {
            plugin: name.to_owned(),
        })?;
        Ok(self.drain_unloaded(name, old, timeout))
    }

    /// Unloads every plugin with the manager's drain timeout. See
    /// [`unload_all_with_timeout`](Self::unload_all_with_timeout).
    pub fn unload_all(&self) -> Vec<UnloadReport> {
        self.unload_all_with_timeout(self.inner.config.drain_timeout)
    }

    /// Unloads every plugin loaded now, in parallel: each as
    /// [`unload_with_timeout`](Self::unload_with_timeout) does, on a thread of its own, so
    /// that the whole takes at most about `timeout` plus the manager's
    /// [hook timeout](crate::ManagerBuilder::hook_timeout) (the longest `on_unload`), however
    /// many plugins there are and however long their calls run. A plugin in the middle of
    /// another change (an upgrade, an install) is unloaded once that change is done.
    ///
    /// Returns one report per plugin, in name order. A version whose calls did not all return
    /// within `timeout` has [`UnloadReport::still_running`] above 0, and its `on_unload` has
    /// not run ([`UnloadHook::Deferred`](crate::UnloadHook::Deferred) if it has one): it runs
    /// when the last of those calls returns, if the process lives that long. A process that
    /// exits after this (a server shutting down) should name those versions: their calls end
    /// with it, and their `on_unload` never runs. [`still_running`](Self::still_running) names
    /// them, and the versions replaced earlier whose calls still run.
    ///
    /// ```no_run
    /// let manager = gp_host::Manager::new("plugins");
    /// manager.load_plugins();
    /// // ... serve, then shut down:
    /// for report in manager.unload_all_with_timeout(std::time::Duration::from_secs(5)) {
    ///     if report.still_running > 0 {
    ///         eprintln!("plugin `{}` {} is still running {} call(s)", report.spec.name(), report.spec.version(), report.still_running);
    ///     }
    /// }
    /// ```
    pub fn unload_all_with_timeout(&self, timeout: Duration) -> Vec<UnloadReport> {
        let names: Vec<String> = self.list().iter().map(|s| s.name().to_owned()).collect();
        std::thread::scope(|scope| {
            let unloads: Vec<_> = names
                .iter()
                .map(|name| {
                    let unload = move || self.unload_with_timeout(name, timeout);
                    std::thread::Builder::new()
                        .name("gp-unload".into())
                        .spawn_scoped(scope, unload)
                        // No thread to spare: this one unloads it, after the others started.
                        .map_err(|_| unload)
                })
                .collect();
            unloads
                .into_iter()
                .filter_map(|unload| {
                    let unloaded = match unload {
                        Ok(thread) => thread
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                        Err(unload) => unload(),
                    };
                    // Unloaded meanwhile by someone else: nothing left to report.
                    unloaded.ok()
                })
                .collect()
        })
    }

    /// The versions that stopped serving (unloaded, or replaced by an upgrade) while calls
    /// still ran on them, and still run some, oldest first: each runs its `on_unload` when its
    /// last call returns. What a process that exits now leaves behind: their calls end with
    /// it, and their `on_unload` never runs (see [`unload_all`](Self::unload_all)).
    pub fn still_running(&self) -> Vec<StillRunning> {
        self.inner.reaper.still_running()
    }

    /// Takes plugin `name`'s version out of the manager: new calls get [`Error::NotFound`].
    /// Called with the change lock held; `None` if no version of it is loaded.
    pub(crate) fn take_out(&self, name: &str) -> Option<Retired> {
        self.existing_slot(name).and_then(|slot| {
            let old = slot.current.swap(None)?;
            slot.metrics.unloaded();
            Some(old)
        })
    }

    /// Drains a version [`take_out`](Self::take_out) took out, up to `timeout`, and reports
    /// its unload. Called without the change lock: the drain waits for calls.
    pub(crate) fn drain_unloaded(
        &self,
        name: &str,
        old: Retired,
        timeout: Duration,
    ) -> UnloadReport {
        let report = reaper::drain(old, timeout, &self.inner.reaper);
        let still_running = report.still_running;
        if still_running > 0 {
            tracing::warn!(target: "gp", plugin = name, "plugin unloaded with {still_running} call(s) still running after {timeout:?}; they run to completion");
        } else {
            tracing::info!(target: "gp", plugin = name, "plugin unloaded");
        }
        self.inner
            .subscribers
            .emit(&Event::Unloaded { report: &report });
        report
    }
}
