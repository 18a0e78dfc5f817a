//! How `gp serve` ends: once nothing serves any more, followers and the watcher stop, every
//! plugin unloads at once (each within --drain-timeout, then its on_unload within
//! --hook-timeout), and the runtime goes; a version still in a call is named, exit code 3.

use std::time::Duration;

use gp_host::Manager;

/// The exit code of a shutdown that left calls running: a version still in a call after
/// `--drain-timeout` was unloaded without its `on_unload`, and its calls end with the process.
pub const STUCK_EXIT_CODE: u8 = 3;

/// How long a shutdown waits for the runtime's last tasks once every plugin is unloaded (its
/// calls have returned by then; what is left is gp's own work, quick).
const SETTLE: Duration = Duration::from_secs(1);

/// Once everything stopped serving: nothing may load or install from here on (a follower
/// finishes the check it is in, bounded by the registry client's timeouts; the watcher the
/// change it is handling), then every plugin unloads at once, so that their on_unload run,
/// and the runtime goes. `true` if a version still ran calls after `drain_timeout`.
pub fn shut_down(
    manager: &Manager,
    following: Vec<gp_host::Following>,
    watcher: Option<gp_host::Watcher>,
    runtime: tokio::runtime::Runtime,
    (drain_timeout, load_wait): (Duration, Duration),
) -> bool {
    // All told to stop at once, then waited for together: a follower in the middle of an
    // install gets `load_wait` (its on_load within the hook timeout); one still downloading
    // then is left behind (it installs nothing: `stop_loading` was called).
    following.iter().for_each(gp_host::Following::stop);
    let deadline = std::time::Instant::now() + load_wait;
    drop(watcher);
    for follower in following {
        let name = follower.target().to_owned();
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if !follower.stop_within(left) {
            crate::log::warning(format_args!("the follower of {name} was still busy (a download) at the shutdown; it installs nothing more and ends with the process"));
        }
    }
    let stuck = unload_all(manager, drain_timeout);
    // A call that ignores cancellation holds its blocking-pool thread for as long as it runs,
    // and dropping the runtime would wait for it: left behind, it ends with the process.
    runtime.shutdown_timeout(if stuck { Duration::ZERO } else { SETTLE });
    stuck
}

/// Unloads every plugin in parallel, each waiting up to `drain_timeout` for its calls; names
/// each `on_unload` that failed, and each version that still runs calls (one just unloaded,
/// or one an upgrade replaced earlier). `true` if there is such a version.
fn unload_all(manager: &Manager, drain_timeout: Duration) -> bool {
    for report in manager.unload_all() {
        if let gp_host::UnloadHook::Failed(error) = &report.on_unload {
            // Failed, or did not return within --hook-timeout.
            crate::log::error(format_args!("{error}"));
        }
    }
    let stuck = manager.still_running();
    for version in &stuck {
        let hook = if version.spec.has_on_unload {
            ", and without running its on_unload"
        } else {
            ""
        };
        crate::log::error(format_args!(
            "plugin `{}` {} still runs {} call(s) at the end of --drain-timeout ({}): exiting without waiting for them{hook}",
            version.spec.name(),
            version.spec.version(),
            version.calls,
            humantime::format_duration(drain_timeout),
        ));
    }
    !stuck.is_empty()
}
