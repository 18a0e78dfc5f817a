//! Retiring versions that stopped serving: waiting for their calls in flight, then ending
//! them (which runs an in-process version's `on_unload`), without making a caller wait.

use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::runtime::loaded::UnloadHookRun;
use crate::runtime::rcu::Retired;
use crate::runtime::spec::Spec;
use crate::util::lock;

/// Holds versions that stopped serving until their last call returns, then drops them (which
/// runs their `on_unload` hook), on a thread of its own, so that no caller pays for a hook.
pub(crate) struct Reaper {
    retired: Mutex<mpsc::Sender<Retired>>,
}

impl Reaper {
    pub(crate) fn start() -> Reaper {
        let (sender, receiver) = mpsc::channel::<Retired>();
        let spawned = std::thread::Builder::new()
            .name("gp-reaper".into())
            .spawn(move || {
                let mut pending: Vec<Retired> = Vec::new();
                let mut open = true;
                while open || !pending.is_empty() {
                    let received = if pending.is_empty() {
                        receiver
                            .recv()
                            .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                    } else {
                        receiver.recv_timeout(Duration::from_millis(2))
                    };
                    match received {
                        Ok(loaded) => pending.push(loaded),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            if open {
                                open = false;
                            } else {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                        }
                    }
                    // Nobody can start a call on a retired version, so none in flight means
                    // its last call has returned.
                    pending.retain(|retired| retired.calls_in_flight() > 0);
                }
            });
        if let Err(error) = spawned {
            tracing::error!(target: "gp", "cannot start the gp-reaper thread ({error}); a replaced plugin version still running calls will be leaked instead of released");
        }
        Reaper {
            retired: Mutex::new(sender),
        }
    }

    pub(crate) fn retire(&self, loaded: Retired) {
        let sender = lock(&self.retired);
        // Without the thread (it could not start), the version is dropped here: let go if no
        // call runs on it, else leaked and logged rather than freed under a call.
        let _ = sender.send(loaded);
    }
}

/// What [`Manager::unload`](crate::Manager::unload) did.
#[derive(Debug)]
#[non_exhaustive]
pub struct UnloadReport {
    /// The version that was unloaded.
    pub spec: Spec,
    /// How long the unload waited for calls in flight.
    pub waited: Duration,
    /// Calls still running when the wait timed out (0 if all returned). They keep running
    /// to completion on the unloaded version.
    ///
    /// Calls only: threads the plugin started itself are not tracked in process and may keep
    /// running (and writing) after the unload. Only an out-of-process plugin can be stopped
    /// entirely.
    pub still_running: usize,
    /// What became of the plugin's `on_unload` hook.
    pub on_unload: UnloadHook,
}

/// What became of a plugin's `on_unload` hook during an unload.
#[derive(Debug)]
#[non_exhaustive]
pub enum UnloadHook {
    /// The plugin has none.
    Absent,
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed ([`Error::HookFailed`](crate::Error::HookFailed)).
    Failed(Error),
    /// Calls were still running at the timeout: it runs (and logs any error) when the last
    /// of them returns.
    Deferred,
    /// Another instance of the same build is still loaded (the same library loaded again, by
    /// this manager or another): the build's statics are shared, so `on_unload` runs when the
    /// last instance goes, as `on_load` ran when the first came.
    Shared,
}

impl std::fmt::Display for UnloadHook {
    /// `absent`, `succeeded`, `failed: <the error>`, `deferred`, `shared`: the words the
    /// management API and `gp` use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnloadHook::Absent => f.write_str("absent"),
            UnloadHook::Succeeded => f.write_str("succeeded"),
            UnloadHook::Failed(error) => write!(f, "failed: {error}"),
            UnloadHook::Deferred => f.write_str("deferred"),
            UnloadHook::Shared => f.write_str("shared"),
        }
    }
}

/// As its [`Display`](std::fmt::Display) text.
impl serde::Serialize for UnloadHook {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Waits up to `timeout` for the calls in flight on `old`, a version no slot points at any
/// more (they see themselves cancelled: `retiring` is set first), then runs its `on_unload`,
/// or hands it to `reaper` if calls are still running, so that the hook runs after the last.
pub(crate) fn drain(old: Retired, timeout: Duration, reaper: &Reaper) -> UnloadReport {
    old.retiring
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let mut pause = Duration::from_micros(50);
    let still_running = loop {
        let running = old.calls_in_flight();
        if running == 0 || started.elapsed() >= timeout {
            break running;
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    let waited = started.elapsed();
    let spec = Spec::clone(&old.spec);
    let on_unload = if still_running > 0 {
        // Calls still run on it: it goes when the last returns, hook or not.
        reaper.retire(old);
        if spec.has_on_unload {
            UnloadHook::Deferred
        } else {
            UnloadHook::Absent
        }
    } else if !spec.has_on_unload {
        UnloadHook::Absent
    } else {
        match old.run_unload_hook() {
            UnloadHookRun::Ran(Err(error)) => UnloadHook::Failed(error),
            UnloadHookRun::Ran(Ok(())) | UnloadHookRun::Nothing => UnloadHook::Succeeded,
            UnloadHookRun::Shared => UnloadHook::Shared,
        }
    };
    UnloadReport {
        spec,
        waited,
        still_running,
        on_unload,
    }
}
