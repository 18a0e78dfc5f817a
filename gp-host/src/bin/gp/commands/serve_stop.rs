//! How `gp serve` ends: once nothing serves any more, followers and the watcher stop, every
//! plugin unloads at once (each within --drain-timeout, then its on_unload within
//! --hook-timeout), and the runtime goes; a version still in a call is named, exit code 3.

use std::time::{Duration, Instant};

use gp_host::Manager;

/// The exit code of a shutdown that left calls running: a version still in a call after
/// `--drain-timeout` was unloaded without its `on_unload`, and its calls end with the process.
pub const STUCK_EXIT_CODE: u8 = 3;

/// How long a shutdown waits for the runtime's last tasks once every plugin is unloaded (its
/// calls have returned by then; what is left is gp's own work, quick).
const SETTLE: Duration = Duration::from_secs(1);

/// Once everything stopped serving (and `Manager::stop_loading` was called, so that nothing
/// loads or installs from here on): the followers and the watcher stop, together within
/// `load_wait` (a load under way then, its on_load within the hook timeout); one still busy
/// after it is left to end with the process, named. Then every plugin unloads at once, so
/// that their on_unload run (the whole within `drain_timeout` + the hook timeout + 1 s, else
/// named and abandoned), and the runtime goes. `true` if a version still ran calls after
/// `drain_timeout`, or the unload did not end in time.
pub fn shut_down(
    manager: &Manager,
    following: Vec<gp_host::Following>,
    watcher: Option<gp_host::Watcher>,
    runtime: tokio::runtime::Runtime,
    (drain_timeout, hook_timeout, load_wait): (Duration, Duration, Duration),
) -> bool {
    following.iter().for_each(gp_host::Following::stop);
    let deadline = Instant::now() + load_wait;
    // The watcher finishes the change it is in (the next ones are refused: loads stopped),
    // waited for until the deadline like the followers, which run on meanwhile.
    if let Some(watcher) = watcher {
        if !watcher.stop_within(deadline.saturating_duration_since(Instant::now())) {
            crate::log::warning(format_args!(
                "the watcher was still applying a change at the shutdown, {} later: left to end with the process",
                humantime::format_duration(load_wait)
            ));
        }
    }
    for follower in following {
        let name = follower.target().to_owned();
        if !follower.stop_within(deadline.saturating_duration_since(Instant::now())) {
            crate::log::warning(format_args!(
                "the follower of {name} was still busy at the shutdown (a download, or a load that outlasted {}): left to end with the process",
                humantime::format_duration(load_wait)
            ));
        }
    }
    let stuck = unload_all(manager, drain_timeout, hook_timeout);
    // A call that ignores cancellation holds its blocking-pool thread for as long as it runs,
    // and dropping the runtime would wait for it: left behind, it ends with the process.
    runtime.shutdown_timeout(if stuck { Duration::ZERO } else { SETTLE });
    stuck
}

/// Unloads every plugin in parallel, each waiting up to `drain_timeout` for its calls; names
/// each `on_unload` that failed, and each version that still runs calls (one just unloaded,
/// or one an upgrade replaced earlier). `true` if there is such a version.
fn unload_all(manager: &Manager, drain_timeout: Duration, hook_timeout: Duration) -> bool {
    // On a thread of its own, waited for within its own bound: a plugin in the middle of a
    // change left behind above (a load that outlasted its wait) holds its turn, and the
    // unload would wait for it.
    let (done, reports) = std::sync::mpsc::channel();
    let unloading = manager.clone();
    let spawned = std::thread::Builder::new()
        .name("gp-unload-all".into())
        .spawn(move || {
            let _ = done.send(unloading.unload_all());
        });
    let limit = drain_timeout + hook_timeout + SETTLE;
    let reports = match spawned.map(|_| reports.recv_timeout(limit)) {
        Ok(Ok(reports)) => reports,
        _ => {
            crate::log::error(format_args!(
                "unloading did not end within {} (--drain-timeout + --hook-timeout + 1 s): exiting; plugins still loaded: {}",
                humantime::format_duration(limit),
                manager.list().iter().map(|s| s.name().to_owned()).collect::<Vec<_>>().join(", ")
            ));
            return true;
        }
    };
    for report in reports {
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
