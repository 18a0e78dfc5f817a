//! The requests waiting for an isolated plugin, run in batches.
//!
//! An isolated call on the blocking pool costs four thread wake-ups: the pool thread, the
//! runner's connection thread, the pool thread again for the answer, the request's worker.
//! Requests of an isolated plugin instead queue here; a dispatcher (a blocking-pool thread)
//! takes every request queued, runs them as one batch (`Executor::execute_batch_if`: the calls
//! written to one call connection in one `write`, run by the runner one after another,
//! answered in one `write`) and hands each request its outcome. Under load each wake-up serves
//! a batch; a lone request costs what it cost before.
//!
//! The calls of a batch run one after another. While a plugin's calls are fast, up to
//! [`FAST_DISPATCHERS`] batches of it run at once (fewer, larger batches); a plugin whose
//! calls are slow (over [`SLOW_CALL`] on average in its last batch) gets batches of one, up to
//! [`DISPATCHERS`] at once (as many as its calls could run at once before batching), until a
//! batch is fast again. A call that hangs holds only the requests batched with it, and only
//! until the watchdog cancels it and, past the grace, kills its runner. Each request keeps
//! its own deadline (its 504 comes from its own task), cancellation (its client leaving cancels
//! its call, by sequence number, even while it waits behind others) and outcome.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gp_core::manifest::HttpMethod;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::response::Ran;
use super::Shared;
use crate::error::Error;
use crate::http::routes::RouteEntry;
use crate::runtime::context::Context;
use crate::runtime::executor::BatchCall;
use crate::runtime::spec::Spec;
use crate::util::lock;

/// How many batches of a plugin whose calls are slow may run at once: `Isolation::concurrency`'s
/// default, the call connections a runner serves at once.
pub(super) const DISPATCHERS: usize = 8;
/// How many batches of a plugin whose calls are fast may run at once: fewer, larger batches
/// (on two vCPUs, 2 served 10 % more requests a second than 8).
const FAST_DISPATCHERS: usize = 2;
/// The most requests one batch takes.
const MAX_BATCH: usize = 64;
/// A batch whose calls took longer than this on average is followed by batches of one.
const SLOW_CALL: Duration = Duration::from_millis(1);

/// One request's call, waiting for a batch.
pub(super) struct Job {
    pub(super) ctx: Box<Context>,
    pub(super) method: HttpMethod,
    pub(super) entry: Arc<RouteEntry>,
    /// The plugin's slot, held until the call is over.
    pub(super) permit: OwnedSemaphorePermit,
    pub(super) done: oneshot::Sender<Ran>,
}

/// A plugin's queue of jobs, and how many dispatchers run its batches.
pub(crate) struct Batches {
    queue: Mutex<Queue>,
    /// How many jobs the next batch takes: [`MAX_BATCH`], or 1 after a slow batch.
    per_batch: AtomicUsize,
}

impl Default for Batches {
    fn default() -> Batches {
        Batches {
            queue: Mutex::default(),
            per_batch: AtomicUsize::new(MAX_BATCH),
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    dispatchers: usize,
}

impl Batches {
    /// Queues `job`; starts a dispatcher when the queue was empty and fewer than
    /// [`DISPATCHERS`] run (a dispatcher busy with a batch takes the next one after it).
    pub(super) fn submit(self: &Arc<Self>, shared: &Arc<Shared>, job: Job) {
        let mut queue = lock(&self.queue);
        // Slow calls: a dispatcher for each request, up to the limit (they run side by side).
        // Fast calls: a dispatcher busy with a batch takes the next one after it, so one starts
        // only for a request that finds the queue empty. None running (the last one may have
        // died with jobs queued): one starts.
        let slow = self.per_batch.load(Ordering::Relaxed) == 1;
        let max = if slow { DISPATCHERS } else { FAST_DISPATCHERS };
        let start =
            queue.dispatchers < max && (slow || queue.jobs.is_empty() || queue.dispatchers == 0);
        queue.jobs.push(job);
        if !start {
            return;
        }
        queue.dispatchers += 1;
        drop(queue);
        let (batches, shared) = (Arc::clone(self), Arc::clone(shared));
        tokio::task::spawn_blocking(move || batches.dispatch(&shared));
    }

    /// Runs batches until the queue is empty.
    fn dispatch(&self, shared: &Shared) {
        // Counted out however this ends, a panic included.
        let mut counted = Dispatching(self, true);
        loop {
            let batch = {
                let mut queue = lock(&self.queue);
                if queue.jobs.is_empty() {
                    // Under the lock that saw the queue empty: a job queued after this
                    // starts a dispatcher of its own.
                    queue.dispatchers -= 1;
                    counted.1 = false;
                    return;
                }
                let take = queue.jobs.len().min(self.per_batch.load(Ordering::Relaxed));
                queue.jobs.drain(..take).collect::<Vec<_>>()
            };
            let calls = batch.len();
            shared.metrics.batches.inc();
            shared.metrics.batched.inc_by(calls as u64);
            let started = Instant::now();
            run(shared, batch);
            let slow = started.elapsed() > SLOW_CALL * calls as u32;
            let next = if slow { 1 } else { MAX_BATCH };
            self.per_batch.store(next, Ordering::Relaxed);
        }
    }
}

/// A dispatcher running, counted until dropped (unless it counted itself out already).
struct Dispatching<'a>(&'a Batches, bool);

impl Drop for Dispatching<'_> {
    fn drop(&mut self) {
        if self.1 {
            lock(&self.0.queue).dispatchers -= 1;
        }
    }
}

/// Runs one batch and answers each of its requests.
fn run(shared: &Shared, jobs: Vec<Job>) {
    let table = shared.table.load();
    // Each job's route resolved again, as a lone call's task does: the version that runs
    // must still declare it.
    let mut resolved: Vec<Option<Arc<RouteEntry>>> = Vec::with_capacity(jobs.len());
    let mut outcomes: Vec<Option<Option<Result<(), Error>>>> = Vec::with_capacity(jobs.len());
    let mut executor = None;
    for job in &jobs {
        if job.ctx.is_cancelled() || job.ctx.is_past_deadline() {
            // Waited past its deadline (the client has its 504), or the client left.
            outcomes.push(Some(Some(Err(Error::DeadlineExceeded {
                plugin: job.entry.plugin.clone(),
            }))));
            resolved.push(None);
            continue;
        }
        let path = super::request::path(&job.ctx);
        let served = path.and_then(|path| table.still_served(job.method, path, &job.entry.plugin));
        match served {
            Some(entry) => {
                executor.get_or_insert_with(|| entry.executor.clone().expect("still served"));
                resolved.push(Some(Arc::clone(entry)));
                outcomes.push(None);
            }
            _ => {
                resolved.push(None);
                outcomes.push(Some(None));
            }
        }
    }
    drop(table);
    let mut jobs = jobs;
    if let Some(executor) = executor {
        let accepts: Vec<_> = resolved
            .iter()
            .map(|entry| move |spec: &Spec| entry.as_ref().is_some_and(|e| e.declared_by(spec)))
            .collect();
        let mut calls: Vec<BatchCall<'_>> = jobs
            .iter_mut()
            .zip(&accepts)
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_none())
            .map(|((job, accept), _)| (&mut *job.ctx, accept as &dyn Fn(&Spec) -> bool))
            .collect();
        let mut ran = executor.execute_batch_if(&mut calls).into_iter();
        drop(calls);
        for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
            *outcome = Some(ran.next().expect("an outcome for every call"));
        }
    }
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let Job {
            ctx, permit, done, ..
        } = job;
        // The request may have had its 504 and gone: nobody to tell.
        let outcome = outcome.expect("every job has an outcome");
        let _ = done.send((ctx, outcome.map(|r| r.map_err(Box::new))));
        drop(permit);
    }
}
