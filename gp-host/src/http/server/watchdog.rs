//! A thread that keeps the runtime's drivers turning while an inline call holds a worker.
//!
//! tokio's IO and timer drivers are turned by a worker that parks on them; a worker with
//! nothing to do while another holds them sleeps until told of work. A worker that took the
//! drivers' events and then runs an inline call that does not return leaves them unturned:
//! the other worker sleeps on, and no socket is read and no timer fires (no accept, no
//! `/-/healthz`, no 504) until the call returns. The fast-then-stuck test with keep-alive
//! clients stalled so for the stuck call's whole 10 s in 4 of 67 runs (0 of 60 with this
//! thread). So a thread looks at
//! the inline calls every [`TICK`]: if one has run for a whole tick with none starting
//! meanwhile, it spawns an empty task on the runtime. Spawned from outside the runtime, the
//! task wakes a sleeping worker, which runs it, then parks on the drivers and turns them.
//! When no inline call has run for a while, the thread looks only every [`IDLE_TICK`].

use std::time::Duration;

/// How often the thread looks while inline calls run.
const TICK: Duration = Duration::from_millis(10);
/// How often it looks once no inline call ran for [`IDLE_AFTER`] ticks.
const IDLE_TICK: Duration = Duration::from_millis(50);
const IDLE_AFTER: u32 = 100;

/// Starts the thread for the current runtime. `activity` says how many inline calls run now
/// and how many ever started, or `None` once there is nothing to watch (the thread ends).
pub(super) fn start(activity: impl Fn() -> Option<(usize, u64)> + Send + 'static) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("gp-inline-watch".into())
        .spawn(move || watch(&activity, &runtime));
    if let Err(error) = spawned {
        tracing::warn!(target: "gp::http", "no thread to watch inline calls ({error}): a stuck inline call may hold the server until it returns");
    }
}

fn watch(activity: &dyn Fn() -> Option<(usize, u64)>, runtime: &tokio::runtime::Handle) {
    let mut seen: Option<u64> = None;
    let mut idle = 0u32;
    loop {
        std::thread::sleep(if idle >= IDLE_AFTER { IDLE_TICK } else { TICK });
        let Some((running, started)) = activity() else {
            return;
        };
        if running == 0 {
            idle = idle.saturating_add(1);
            seen = None;
            continue;
        }
        idle = 0;
        if seen == Some(started) {
            // The same inline call for a whole tick: wake a worker to turn the drivers.
            drop(runtime.spawn(async {}));
        }
        seen = Some(started);
    }
}
