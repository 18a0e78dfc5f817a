//! Retiring versions that stopped serving: waiting for their calls in flight, then ending
//! them (which runs an in-process version's `on_unload`), without making a caller wait.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::runtime::loaded::UnloadHookRun;
use crate::runtime::rcu::Retired;
use crate::runtime::spec::Spec;
use crate::util::lock;

/// Holds versions that stopped serving until their last call returns, then drops them (which
/// runs their `on_unload` hook), on a thread of its own, so that no caller pays for a hook.
pub(crate) struct Reaper {
    /// The versions waiting for their last call, shared with the thread, so that a shutdown
    /// can name them ([`Reaper::still_running`]).
    pending: Arc<Mutex<Vec<Retired>>>,
    /// Wakes the thread when a version arrives: it sleeps while none waits.
    wake: Mutex<mpsc::Sender<()>>,
    /// Whether the thread started.
    running: bool,
}

impl Reaper {
    pub(crate) fn start() -> Reaper {
        let (wake, woken) = mpsc::channel::<()>();
        let pending: Arc<Mutex<Vec<Retired>>> = Arc::default();
        let shared = Arc::clone(&pending);
        let spawned = std::thread::Builder::new()
            .name("gp-reaper".into())
            .spawn(move || {
                // Until the manager is gone and the last version waiting has gone too.
                let mut open = true;
                loop {
                    let waiting = !lock(&shared).is_empty();
                    if !open && !waiting {
                        return;
                    }
                    if !open {
                        std::thread::sleep(Duration::from_millis(2));
                    } else if waiting {
                        let received = woken.recv_timeout(Duration::from_millis(2));
                        open = received != Err(mpsc::RecvTimeoutError::Disconnected);
                    } else {
                        open = woken.recv().is_ok();
                    }
                    // Nobody can start a call on a retired version, so none in flight means
                    // its last call has returned. Dropped (hooks run) outside the lock.
                    let done: Vec<Retired> = {
                        let mut pending = lock(&shared);
                        let (done, waiting) = std::mem::take(&mut *pending)
                            .into_iter()
                            .partition(|retired| retired.calls_in_flight() == 0);
                        *pending = waiting;
                        done
                    };
                    drop(done);
                }
            });
        if let Err(error) = &spawned {
            tracing::error!(target: "gp", "cannot start the gp-reaper thread ({error}); a replaced plugin version still running calls will be leaked instead of released");
        }
        Reaper {
            pending,
            wake: Mutex::new(wake),
            running: spawned.is_ok(),
        }
    }

    pub(crate) fn retire(&self, loaded: Retired) {
        if !self.running {
            // Without the thread, the version is dropped here: let go if no call runs on it,
            // else leaked and logged rather than freed under a call.
            drop(loaded);
            return;
        }
        lock(&self.pending).push(loaded);
        let _ = lock(&self.wake).send(());
    }

    /// The versions waiting for calls still running on them, oldest first.
    pub(crate) fn still_running(&self) -> Vec<StillRunning> {
        lock(&self.pending)
            .iter()
            .filter_map(|retired| {
                let calls = retired.calls_in_flight();
                (calls > 0).then(|| StillRunning {
                    spec: Spec::clone(&retired.spec),
                    calls,
                })
            })
            .collect()
    }
}

/// A version that stopped serving (unloaded, or replaced by an upgrade) while calls still ran
/// on it: see [`Manager::still_running`](crate::Manager::still_running).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StillRunning {
    /// The version.
    pub spec: Spec,
    /// How many calls still run on it.
    pub calls: usize,
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
