//! A plugin's lane through the server: its concurrency slots, the bounded queue in front of
//! them, and where its calls run.
//!
//! **Where calls run.** A call on tokio's blocking pool costs two thread hand-offs (worker →
//! pool thread → worker), which on a fast plugin is most of a request's time. So a plugin
//! whose recent calls were all fast runs its calls as tasks of their own on the async
//! workers ("inline": a spawn, no hand-off to another thread), and every other plugin on the
//! pool. The rules, which keep every serving guarantee:
//!
//! - a plugin starts on the pool; after [`PROMOTE_AFTER`] calls in a row each within the
//!   budget ([`DEFAULT_INLINE_BUDGET`], 50 µs by default) it runs inline;
//! - it goes back to the pool (and its streak starts again) when calls over the budget become
//!   more than about one in [`STRIKE`] (a leaky bucket: a thread preempted mid-call now and
//!   then is not a slow plugin), or at a second call over [`HARD_FACTOR`] × the budget soon
//!   after a first (one such call alone is what an inline call preempted by the kernel for a
//!   time slice looks like; demoting on it sent 64 calls to the pool each time, 3–6 % of calls
//!   on a busy 1-CPU server);
//! - at most `workers − 1` calls run inline at once across the server, so a plugin that was
//!   fast and then hangs can hold at most all workers but one: that one keeps accepting,
//!   answering `/-/healthz`, other plugins (which then go to the pool) and the 504s;
//! - a promoted plugin's call that finds the inline places taken, or an inline call of its
//!   plugin running past [`HARD_FACTOR`] × the budget, waits up to that long (in its own
//!   task, never the request's) for an inline call to end, then goes to the pool. With more
//!   workers than CPUs (two workers on one CPU, say) the call in the way has usually been
//!   preempted, not stuck: it ends as soon as its thread runs again, and sending every call
//!   that meanwhile arrives to the pool cost two thread hand-offs each (3 % of the calls, and
//!   eight times bare axum's context switches, at 32 connections on one CPU). A call that
//!   is really stuck costs the calls behind it that wait, and no more;
//! - whoever answers the request's 504 is not the task running its call, so the 504 goes out
//!   at the deadline even while the call is stuck. Usually the call runs in a task of its own
//!   and the request's task answers. On a connection that can answer for it (plain HTTP/1,
//!   nothing of hyper's unsent, its watcher waking before the deadline: `listen::rescue`)
//!   the call runs in the request's own task, with no spawn and no timer, and at the deadline
//!   the connection's watcher, a task of its own, cancels the call, writes the 504 and closes
//!   the connection. A current-thread runtime (one worker) never runs a call inline;
//! - a thread (`watchdog`) wakes a sleeping worker when one inline call has held its worker
//!   for 10 ms with none starting meanwhile: the worker that runs it may be the one that last
//!   turned tokio's IO and timer drivers, and the others sleep until told of work, so without
//!   it no socket is read and no timer fires until the call returns.
//!
//! **Queue, then refuse.** A request that finds all of its plugin's slots taken waits for
//! one, in a queue of at most [`DEFAULT_QUEUE`] requests per plugin for at most
//! [`DEFAULT_QUEUE_WAIT`] (or its deadline, if sooner); past either, 503 with `Retry-After`.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How many requests may wait for one plugin's slots unless configured otherwise.
pub const DEFAULT_QUEUE: usize = 1024;
/// How long a request waits for a slot unless configured otherwise (its deadline, if sooner).
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// The longest a call may take and still count as fast, unless configured otherwise.
pub const DEFAULT_INLINE_BUDGET: Duration = Duration::from_micros(50);
/// How many fast calls in a row move a plugin's calls onto the async workers.
pub const PROMOTE_AFTER: u32 = 64;
/// A call over this many times the budget counts as [`HARD_STRIKES`] slow calls.
pub(crate) const HARD_FACTOR: u32 = 20;
/// What a call over [`HARD_FACTOR`] × the budget adds, in strikes: two in a row demote.
const HARD_STRIKES: u32 = 2 * STRIKE;
/// A call over the budget adds this many strikes, a call within it takes one away; past
/// [`STRIKES_OUT`] the plugin goes back to the pool.
pub(crate) const STRIKE: u32 = 16;
const STRIKES_OUT: u32 = 3 * STRIKE;

/// One plugin's lane.
pub(crate) struct Lane {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Fast calls in a row (up to [`PROMOTE_AFTER`]).
    streak: AtomicU32,
    /// Slow calls lately (see [`STRIKE`]).
    strikes: AtomicU32,
    /// When the inline call started last (ns since [`anchor`], `+ 1`; 0: none running).
    inline_since: AtomicU64,
    /// The requests of an isolated plugin waiting for a batch.
    #[cfg(feature = "isolate")]
    pub(crate) batches: Arc<super::batch::Batches>,
}

/// Why a request got no slot.
pub(crate) enum NoSlot {
    /// The queue was full, or the wait ran out: 503.
    Busy,
    /// The request's deadline came first: 504.
    Deadline,
}

/// The server-wide count of calls running inline.
pub(crate) struct InlineCalls {
    running: AtomicUsize,
    budget: Option<Duration>,
    /// Calls waiting for an inline call to end ([`InlineCalls::place`]).
    waiting: AtomicUsize,
    /// Told when an inline call ends while calls wait.
    ended: Notify,
    /// How many inline calls ever started (for the watchdog).
    started: AtomicU64,
    /// Whether the watchdog thread runs (see `watchdog`).
    watched: OnceLock<()>,
}

/// One inline call, counted until dropped.
pub(crate) struct InlineGuard {
    calls: Arc<InlineCalls>,
    lane: Arc<Lane>,
    since: u64,
    started: Instant,
}

impl InlineCalls {
    /// A count with calls within `budget` running inline (`None`: never).
    pub(crate) fn new(budget: Option<Duration>) -> InlineCalls {
        InlineCalls {
            running: AtomicUsize::new(0),
            budget,
            waiting: AtomicUsize::new(0),
            ended: Notify::new(),
            started: AtomicU64::new(0),
            watched: OnceLock::new(),
        }
    }

    /// The budget, if calls may run inline.
    pub(crate) fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// An inline place for a call of `lane` starting now on a worker of the current runtime,
    /// if fewer than all workers but one run one: counted while it runs, not while it waits
    /// to start (under load a spawned call waits behind other tasks, and counting it then
    /// would send every other call to the pool).
    pub(crate) fn enter(self: &Arc<Self>, lane: &Arc<Lane>) -> Option<InlineGuard> {
        let max = workers().saturating_sub(1);
        // SeqCst here, in `place` and in the guard's drop: a call that starts waiting as the
        // last inline call ends either finds the place free or is told (see `place`).
        self.running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.started.fetch_add(1, Ordering::Relaxed);
        self.watched.get_or_init(|| {
            let calls = Arc::downgrade(self);
            super::watchdog::start(move || {
                let calls = calls.upgrade()?;
                Some((
                    calls.running.load(Ordering::SeqCst),
                    calls.started.load(Ordering::Relaxed),
                ))
            });
        });
        let started = Instant::now();
        let since = ns_at(started);
        lane.inline_since.store(since, Ordering::SeqCst);
        Some(InlineGuard {
            calls: Arc::clone(self),
            lane: Arc::clone(lane),
            since,
            started,
        })
    }

    /// An inline place for a call of a promoted `lane` now, if [`eligible`](Lane::eligible)
    /// and [`enter`](Self::enter) give one; else see [`place`](Self::place).
    pub(crate) fn place_now(self: &Arc<Self>, lane: &Arc<Lane>) -> Option<InlineGuard> {
        if lane.eligible(self) {
            self.enter(lane)
        } else {
            None
        }
    }

    /// An inline place for a call of a promoted `lane` (see the module documentation), for
    /// when [`place_now`](Self::place_now) gave none: tried again as it starts waiting, then
    /// each time an inline call ends, for up to [`HARD_FACTOR`] × the budget. `None` (the call
    /// goes to the pool) past that, on a runtime with one worker, or if calls never run inline
    /// here.
    pub(crate) async fn place(self: &Arc<Self>, lane: &Arc<Lane>) -> Option<InlineGuard> {
        let budget = self.budget?;
        if workers() < 2 {
            return None;
        }
        let until = tokio::time::Instant::now() + budget * HARD_FACTOR;
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the count and the check below, so that an inline call
            // ending after them tells this one.
            ended.as_mut().enable();
            let waiting = Waiting::new(&self.waiting);
            if !lane.promoted_in(self) {
                // Demoted meanwhile: its calls go to the pool until a new streak.
                return None;
            }
            if let Some(guard) = self.place_now(lane) {
                return Some(guard);
            }
            if tokio::time::timeout_at(until, ended).await.is_err() {
                return None;
            }
            drop(waiting);
        }
    }
}

/// One call counted as waiting (in [`InlineCalls::place`], or in a lane's queue) while this
/// lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }

    /// Counted, if fewer than `limit` wait already.
    fn within(count: &'a AtomicUsize, limit: usize) -> Option<Waiting<'a>> {
        if count.fetch_add(1, Ordering::SeqCst) >= limit {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Waiting(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The current runtime's workers (1 outside a runtime).
fn workers() -> usize {
    tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1)
}

/// The instant lanes measure from.
fn anchor() -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    ns_at(Instant::now())
}

fn ns_at(instant: Instant) -> u64 {
    instant.saturating_duration_since(anchor()).as_nanos() as u64 + 1
}

impl Lane {
    /// A lane of `slots` concurrent calls.
    pub(crate) fn new(slots: usize) -> Lane {
        Lane {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            streak: AtomicU32::new(0),
            strikes: AtomicU32::new(0),
            inline_since: AtomicU64::new(0),
            #[cfg(feature = "isolate")]
            batches: Arc::default(),
        }
    }

    /// A slot if one is free now.
    pub(crate) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// A slot: at once if one is free, else after waiting in the queue (at most `queue`
    /// waiting, each at most `wait` and never past `deadline`).
    pub(crate) async fn slot(
        &self,
        queue: usize,
        wait: Duration,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, NoSlot> {
        if let Some(permit) = self.try_slot() {
            return Ok(permit);
        }
        // Counted until the wait ends, or its request is dropped (the client went away).
        let Some(waiting) = Waiting::within(&self.waiting, queue) else {
            return Err(NoSlot::Busy);
        };
        let until = (Instant::now() + wait).min(deadline);
        // Boxed: the wait's state would make every request's future larger.
        let acquired = Box::pin(tokio::time::timeout_at(
            until.into(),
            Arc::clone(&self.slots).acquire_owned(),
        ))
        .await;
        drop(waiting);
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the queue's wait or the deadline.
            _ if until >= deadline => Err(NoSlot::Deadline),
            _ => Err(NoSlot::Busy),
        }
    }

    /// Whether this lane's calls run inline on a server that allows it (after a streak of
    /// fast calls): they are then spawned as tasks that take an inline place with
    /// [`InlineCalls::place`] when they start.
    pub(crate) fn promoted_in(&self, calls: &InlineCalls) -> bool {
        calls.budget.is_some() && self.streak.load(Ordering::Relaxed) >= PROMOTE_AFTER
    }

    /// Whether this lane's next call may run inline now (see the module documentation):
    /// promoted, and no inline call of it running far past the budget.
    pub(crate) fn eligible(&self, calls: &InlineCalls) -> bool {
        let (true, Some(budget)) = (self.promoted_in(calls), calls.budget) else {
            return false;
        };
        let since = self.inline_since.load(Ordering::SeqCst);
        // An inline call of this plugin running far past the budget: stuck, slow now, or its
        // thread preempted. Not inline while it lasts; how it ends decides (`record`).
        since == 0 || now_ns().saturating_sub(since) <= (budget * HARD_FACTOR).as_nanos() as u64
    }

    /// Records how long a call took (see the module documentation).
    pub(crate) fn record(&self, took: Duration, budget: Duration) {
        if took <= budget {
            let streak = self.streak.load(Ordering::Relaxed);
            if streak < PROMOTE_AFTER {
                self.streak.store(streak + 1, Ordering::Relaxed);
            }
            let strikes = self.strikes.load(Ordering::Relaxed);
            if strikes > 0 {
                self.strikes.store(strikes - 1, Ordering::Relaxed);
            }
        } else {
            let strikes = if took > budget * HARD_FACTOR {
                HARD_STRIKES
            } else {
                STRIKE
            };
            if self.strikes.fetch_add(strikes, Ordering::Relaxed) + strikes >= STRIKES_OUT {
                self.demote();
            }
        }
    }

    /// Back to the pool, until a new streak of fast calls.
    fn demote(&self) {
        self.streak.store(0, Ordering::Relaxed);
        self.strikes.store(0, Ordering::Relaxed);
    }

    /// Whether this lane's calls run inline now.
    #[cfg(test)]
    fn promoted(&self) -> bool {
        self.streak.load(Ordering::Relaxed) >= PROMOTE_AFTER
    }
}

impl InlineGuard {
    /// When the inline place was taken: when the call starts (the clock read once for both).
    pub(crate) fn started(&self) -> Instant {
        self.started
    }
}

impl Drop for InlineGuard {
    fn drop(&mut self) {
        let _ = self.lane.inline_since.compare_exchange(
            self.since,
            0,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.calls.running.fetch_sub(1, Ordering::SeqCst);
        if self.calls.waiting.load(Ordering::SeqCst) > 0 {
            self.calls.ended.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{InlineCalls, Lane, NoSlot, HARD_FACTOR, PROMOTE_AFTER, STRIKE};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// `lane` promoted: a streak of calls well within `budget`.
    fn promote(lane: &Lane, budget: Duration) {
        for _ in 0..PROMOTE_AFTER {
            lane.record(Duration::ZERO, budget);
        }
    }

    #[test]
    fn fast_calls_promote_a_plugin_and_slow_ones_demote_it() {
        let budget = Duration::from_micros(50);
        let lane = Lane::new(4);
        for _ in 0..PROMOTE_AFTER - 1 {
            lane.record(Duration::from_micros(3), budget);
        }
        assert!(!lane.promoted());
        lane.record(Duration::from_micros(3), budget);
        assert!(lane.promoted());
        // A slow call now and then is noise...
        for _ in 0..10 {
            lane.record(Duration::from_micros(51), budget);
            for _ in 0..STRIKE {
                lane.record(Duration::from_micros(3), budget);
            }
        }
        assert!(lane.promoted());
        // ...slow calls in a row are not,
        for _ in 0..3 {
            lane.record(Duration::from_micros(51), budget);
        }
        assert!(!lane.promoted());
        // and two very slow calls close together demote, where one (a preempted thread's
        // call looks like that) does not.
        for _ in 0..PROMOTE_AFTER {
            lane.record(Duration::from_micros(3), budget);
        }
        assert!(lane.promoted());
        let very_slow = budget * HARD_FACTOR + Duration::from_micros(1);
        lane.record(very_slow, budget);
        assert!(lane.promoted());
        for _ in 0..4 * STRIKE {
            lane.record(Duration::from_micros(3), budget);
        }
        lane.record(very_slow, budget);
        assert!(lane.promoted(), "far apart, each is noise");
        for _ in 0..STRIKE / 2 {
            lane.record(Duration::from_micros(3), budget);
        }
        lane.record(very_slow, budget);
        assert!(!lane.promoted());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn at_most_all_workers_but_one_run_calls_inline() {
        let budget = Duration::from_secs(10);
        let calls = Arc::new(InlineCalls::new(Some(budget)));
        let lanes: Vec<Arc<Lane>> = (0..3).map(|_| Arc::new(Lane::new(4))).collect();
        for lane in &lanes {
            promote(lane, budget);
            assert!(lane.eligible(&calls));
        }
        let first = calls.enter(&lanes[0]);
        let second = calls.enter(&lanes[1]);
        assert!(first.is_some() && second.is_some());
        assert!(
            calls.enter(&lanes[2]).is_none(),
            "3 workers: 2 inline at most"
        );
        drop(first);
        assert!(calls.enter(&lanes[2]).is_some());
        // Never inline on a server that does not allow it.
        assert!(!lanes[0].eligible(&InlineCalls::new(None)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_waits_for_the_inline_place_a_while_then_goes_to_the_pool() {
        let budget = Duration::from_millis(5);
        let calls = Arc::new(InlineCalls::new(Some(budget)));
        let lane = Arc::new(Lane::new(4));
        promote(&lane, budget);
        // Two workers: one inline place, taken.
        let held = calls.enter(&lane).expect("the one place");
        let waiter = {
            let (calls, lane) = (Arc::clone(&calls), Arc::clone(&lane));
            tokio::spawn(async move { calls.place(&lane).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(!waiter.is_finished(), "it waits while the place is taken");
        drop(held);
        let placed = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(
            placed.expect("told when the inline call ended").unwrap(),
            "it takes the place the ended call left"
        );
        // Never given back: the wait ends (budget × HARD_FACTOR), and the call goes to the pool.
        let _stuck = calls.enter(&lane).expect("the place is free again");
        let waited = tokio::time::timeout(Duration::from_secs(10), calls.place(&lane)).await;
        assert!(waited.expect("the wait is bounded").is_none());
        // A plugin demoted meanwhile does not wait at all.
        for _ in 0..3 {
            lane.record(budget * 2, budget);
        }
        let start = Instant::now();
        assert!(calls.place(&lane).await.is_none());
        assert!(start.elapsed() < budget * HARD_FACTOR);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_worker_never_runs_a_call_inline() {
        let calls = Arc::new(InlineCalls::new(Some(Duration::from_secs(10))));
        let lane = Arc::new(Lane::new(4));
        assert!(calls.enter(&lane).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_inline_call_past_the_budget_sends_the_next_ones_to_the_pool() {
        let budget = Duration::from_millis(1);
        let calls = Arc::new(InlineCalls::new(Some(budget)));
        let lane = Arc::new(Lane::new(4));
        promote(&lane, budget);
        let stuck = calls.enter(&lane);
        assert!(stuck.is_some());
        std::thread::sleep(budget * HARD_FACTOR + Duration::from_millis(10));
        assert!(
            !lane.eligible(&calls),
            "not inline while the overrunning call runs"
        );
        drop(stuck);
        assert!(
            lane.eligible(&calls),
            "the call's own time decides, when it ends"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_queue_waits_then_refuses() {
        let lane = Lane::new(1);
        let far = Instant::now() + Duration::from_secs(60);
        let held = lane.slot(0, Duration::ZERO, far).await.ok().unwrap();
        // No queue: refused at once.
        let start = Instant::now();
        assert!(matches!(
            lane.slot(0, Duration::from_secs(10), far).await,
            Err(NoSlot::Busy)
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        // A queue: waits its time, then refused.
        assert!(matches!(
            lane.slot(4, Duration::from_millis(30), far).await,
            Err(NoSlot::Busy)
        ));
        // The deadline first: a timeout.
        let soon = Instant::now() + Duration::from_millis(10);
        assert!(matches!(
            lane.slot(4, Duration::from_secs(10), soon).await,
            Err(NoSlot::Deadline)
        ));
        drop(held);
        assert!(lane.slot(0, Duration::ZERO, far).await.is_ok());
    }
}
