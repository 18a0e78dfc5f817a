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
    drain_timeout: Duration,
) -> bool {
    following.iter().for_each(gp_host::Following::stop);
    drop(following);
    drop(watcher);
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
            eprintln!("error: {error}");
        }
    }
    let stuck = manager.still_running();
    for version in &stuck {
        let hook = if version.spec.has_on_unload {
            ", and without running its on_unload"
        } else {
            ""
        };
        eprintln!(
            "error: plugin `{}` {} still runs {} call(s) at the end of --drain-timeout ({}): exiting without waiting for them{hook}",
            version.spec.name(),
            version.spec.version(),
            version.calls,
            humantime::format_duration(drain_timeout),
        );
    }
    !stuck.is_empty()
}
