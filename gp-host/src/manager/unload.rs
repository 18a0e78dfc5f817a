//! Unloading a plugin: it leaves the manager at once, its calls in flight drain, and its
//! `on_unload` runs after the last of them.

use std::time::Duration;

use crate::error::Error;
use crate::manager::Manager;
use crate::runtime::events::Event;
use crate::runtime::rcu::Retired;
use crate::runtime::reaper::{self, UnloadReport};

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
