//! One thread for the whole process that looks at every isolated call in flight every
//! [`POLL`]: past its deadline, cancelled, or its plugin unloading, a call's runner gets
//! `Cancel`; `grace` later, if the call has not returned, the runner is killed. It parks when
//! no call has been in flight for a second, so steady traffic never has to wake it.
//!
//! A call waits for its answer in a plain blocking read, with no timer (arming one for every
//! call cost about 7 microseconds on a VM): this thread is what ends a read that would
//! otherwise wait for ever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::process::{RunnerProcess, POLL};
use super::protocol::ToRunner;
use crate::runtime::context::CancelToken;
use crate::util::{lock, wait};

/// A call in flight, as the watchdog sees it.
pub(super) struct Watched {
    pub(super) deadline: Option<Instant>,
    pub(super) cancel: CancelToken,
    pub(super) retiring: Arc<AtomicBool>,
    pub(super) runner: Arc<RunnerProcess>,
    pub(super) conn: u32,
    /// The call's sequence number: a `Cancel` names it, so a late one cannot cancel the next
    /// call on the same connection.
    pub(super) seq: u64,
    pub(super) grace: Duration,
    watch: Mutex<WatchState>,
    /// Set before the watchdog kills the runner: the call's read ends then, and the call
    /// reports its deadline or cancellation rather than a crash.
    killed: AtomicBool,
}

/// What the watchdog did to a call, and whether the call is over.
#[derive(Default)]
struct WatchState {
    /// When `Cancel` went to the runner.
    cancel_sent: Option<Instant>,
    /// The call has its answer (or lost its runner): nothing more is done to it.
    finished: bool,
}

impl Watched {
    /// A call to watch on connection `conn` of `runner`.
    #[allow(clippy::too_many_arguments)] // one call's facts, named where they are made
    pub(super) fn new(
        deadline: Option<Instant>,
        cancel: CancelToken,
        retiring: Arc<AtomicBool>,
        runner: Arc<RunnerProcess>,
        conn: u32,
        seq: u64,
        grace: Duration,
    ) -> Watched {
        Watched {
            deadline,
            cancel,
            retiring,
            runner,
            conn,
            seq,
            grace,
            watch: Mutex::default(),
            killed: AtomicBool::new(false),
        }
    }

    /// The call has its answer: from now on the watchdog leaves it alone, even if it already
    /// saw it due.
    pub(super) fn finish(&self) {
        lock(&self.watch).finished = true;
    }

    /// Whether the watchdog killed the runner under this call.
    pub(super) fn killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    fn due(&self, now: Instant) -> bool {
        self.cancel.is_cancelled()
            || self.retiring.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|d| now >= d)
    }

    /// Cancels the call in its runner, or kills the runner once the grace period is over.
    fn act(&self, now: Instant) {
        let mut watch = lock(&self.watch);
        if watch.finished {
            return;
        }
        match watch.cancel_sent {
            None => {
                watch.cancel_sent = Some(now);
                self.runner.control(&ToRunner::Cancel {
                    conn: self.conn,
                    seq: self.seq,
                });
            }
            Some(at) if now >= at + self.grace && !self.killed.load(Ordering::Relaxed) => {
                self.killed.store(true, Ordering::Release);
                // Not a crash: other calls in flight on it fail, the breaker ignores it.
                self.runner.not_a_crash();
                self.runner.signal_kill();
            }
            Some(_) => {}
        }
    }
}

struct Shared {
    calls: Mutex<Calls>,
    wake: Condvar,
}

#[derive(Default)]
struct Calls {
    next: u64,
    watched: Vec<(u64, Arc<Watched>)>,
    parked: bool,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let shared = Shared {
            calls: Mutex::new(Calls {
                parked: true,
                ..Calls::default()
            }),
            wake: Condvar::new(),
        };
        let spawned = std::thread::Builder::new()
            .name("gp-isolation-watchdog".into())
            .spawn(run);
        if let Err(error) = spawned {
            tracing::error!(target: "gp", "cannot start the isolation watchdog: {error}; isolated calls ignore their deadlines");
        }
        shared
    })
}

/// Watches `call` until the guard is dropped.
pub(super) fn watch(call: &Arc<Watched>) -> Guard {
    let shared = shared();
    let mut calls = lock(&shared.calls);
    calls.next += 1;
    let id = calls.next;
    calls.watched.push((id, Arc::clone(call)));
    if calls.parked {
        calls.parked = false;
        shared.wake.notify_one();
    }
    Guard { id }
}

/// Keeps a call watched; dropping it stops watching.
pub(super) struct Guard {
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut calls = lock(&shared().calls);
        if let Some(at) = calls.watched.iter().position(|(id, _)| *id == self.id) {
            calls.watched.swap_remove(at);
        }
    }
}

fn run() {
    let shared = shared();
    let mut idle_since: Option<Instant> = None;
    loop {
        let due: Vec<Arc<Watched>> = {
            let mut calls = lock(&shared.calls);
            if calls.watched.is_empty() {
                let idle = *idle_since.get_or_insert_with(Instant::now);
                if idle.elapsed() > Duration::from_secs(1) {
                    calls.parked = true;
                    while calls.parked {
                        calls = wait(&shared.wake, calls);
                    }
                    idle_since = None;
                }
            } else {
                idle_since = None;
            }
            let now = Instant::now();
            calls
                .watched
                .iter()
                .filter(|(_, call)| call.due(now))
                .map(|(_, call)| Arc::clone(call))
                .collect()
        };
        for call in due {
            call.act(Instant::now());
        }
        std::thread::sleep(POLL);
    }
}
