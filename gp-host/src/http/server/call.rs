//! A call ready to run, its slot held: in the request's own task when its connection can
//! answer for it at its deadline, else in a task of its own (on the async workers or the
//! blocking pool, as the plugin's lane says) or in an isolated plugin's batch; answered at its
//! deadline at the latest, whatever the call is doing.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use gp_core::manifest::HttpMethod;
use tokio::sync::OwnedSemaphorePermit;

use super::access::Asked;
use super::id::RequestId;
use super::lane::Lane;
use super::request;
use super::response::{http1, respond, Answer, Ran};
use super::Shared;
use crate::error::Error;
use crate::http::listen::Rescue;
use crate::http::routes::RouteEntry;
use crate::runtime::context::{CancelToken, Context};

/// A call about to run: where it goes, its route's timeout, and (`P`) the slot it holds
/// until it returns.
pub(super) struct Call<P = OwnedSemaphorePermit> {
    pub(super) method: HttpMethod,
    pub(super) entry: Arc<RouteEntry>,
    /// The route table's generation the request was routed in.
    pub(super) generation: u64,
    pub(super) timeout: Duration,
    pub(super) lane: Arc<Lane>,
    pub(super) permit: P,
}

impl Call<()> {
    /// The call, given its slot.
    pub(super) fn holding(self, permit: OwnedSemaphorePermit) -> Call {
        Call {
            method: self.method,
            entry: self.entry,
            generation: self.generation,
            timeout: self.timeout,
            lane: self.lane,
            permit,
        }
    }
}

impl Call {
    /// Whether the call may run on the async workers: its plugin is promoted (see `lane`),
    /// and its handler is not async (an async handler's call blocks its thread on the
    /// plugin's runtime).
    fn may_run_inline(&self, shared: &Shared) -> bool {
        !self.entry.asynchronous && self.lane.promoted_in(&shared.inline)
    }
}

/// Runs a promoted plugin's call here, in the request's own task, when the connection can
/// answer for it at its deadline (see `listen::rescue`): no task of its own, no timer, no
/// future; holds its slot until it returns. Else gives the call back, for [`run`].
pub(super) fn run_here(
    shared: &Arc<Shared>,
    ctx: Box<Context>,
    call: Call,
    asked: &Asked,
    rescue: &Rescue,
) -> Result<Answer, (Box<Context>, Call)> {
    let deadline = ctx.deadline().expect("a route's call has a deadline");
    #[cfg(feature = "isolate")]
    if call.entry.isolated {
        return Err((ctx, call));
    }
    // Not for HEAD: the connection's 504 would carry a body.
    if !call.may_run_inline(shared) || call.method == HttpMethod::Head || !rescue.ready(deadline) {
        return Err((ctx, call));
    }
    let Some(inline) = shared.inline.place_now(&call.lane) else {
        return Err((ctx, call));
    };
    let (entry, timeout) = (Arc::clone(&call.entry), call.timeout);
    let stuck = when_stuck(shared, &entry, asked, ctx.cancel_token(), timeout);
    let Some(armed) = rescue.arm(deadline, stuck) else {
        return Err((ctx, call));
    };
    shared.metrics.inline.inc();
    shared.metrics.in_request_task.inc();
    // A panic of gp's own code (a plugin's is caught in the plugin) answers 500, as from a
    // task of its own, rather than ending the connection's task.
    let started = inline.started();
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| call_now(shared, call, ctx, started)))
        .map_err(|_| "the call panicked");
    drop(inline);
    if armed.disarm() {
        // The deadline came first: the connection answered 504 and is closing.
        return Ok(Answer::sent());
    }
    // The call has returned: nothing to cancel.
    let done = CancelOnDrop(None);
    Ok(conclude(
        Some(ran),
        done,
        &entry,
        &asked.id,
        timeout,
        "call failed",
    ))
}

/// Runs the call in a task of its own (on the async workers, or the blocking pool: see
/// `lane`); holds its slot until it returns (even after a 504), and answers at the deadline
/// at the latest, whatever the call is doing. A client that goes away cancels the call.
pub(super) async fn run(
    shared: &Arc<Shared>,
    ctx: Box<Context>,
    call: Call,
    id: &RequestId,
) -> Answer {
    let deadline = ctx.deadline().expect("a route's call has a deadline");
    // Cancels the call if this future is dropped before it finishes: the client went away.
    let cancel = CancelOnDrop(Some(ctx.cancel_token()));
    let (entry, timeout) = (Arc::clone(&call.entry), call.timeout);
    #[cfg(feature = "isolate")]
    if entry.isolated {
        // Boxed: its state would make every request's future larger, routed inline or not.
        return Box::pin(run_batched(shared, ctx, call, id, cancel)).await;
    }
    let eligible = call.may_run_inline(shared);
    let shared = Arc::clone(shared);
    let worker = if eligible {
        tokio::spawn(async move {
            // The inline place is taken when the call starts, or after a short wait for one
            // (boxed: the wait's state would make every call's task larger): see `lane`.
            let inline = match shared.inline.place_now(&call.lane) {
                Some(inline) => Some(inline),
                None => Box::pin(shared.inline.place(&call.lane)).await,
            };
            match inline {
                Some(inline) => {
                    shared.metrics.inline.inc();
                    call_now(&shared, call, ctx, inline.started())
                }
                None => {
                    shared.metrics.pool.inc();
                    let work = move || call_now(&shared, call, ctx, Instant::now());
                    match tokio::task::spawn_blocking(work).await {
                        Ok(done) => done,
                        Err(join) => std::panic::resume_unwind(join.into_panic()),
                    }
                }
            }
        })
    } else {
        shared.metrics.pool.inc();
        tokio::task::spawn_blocking(move || call_now(&shared, call, ctx, Instant::now()))
    };
    let outcome = tokio::time::timeout_at(deadline.into(), worker).await.ok();
    conclude(outcome, cancel, &entry, id, timeout, "call task failed")
}

/// The call, taken up by its thread at `started`: resolved again and made; timed for its
/// lane (on a server with an inline budget); its slot given back as it returns.
fn call_now(shared: &Shared, call: Call, mut ctx: Box<Context>, started: Instant) -> Ran {
    let Call {
        method,
        entry,
        generation,
        permit,
        lane,
        ..
    } = call;
    let _permit = permit;
    let outcome = resolve_and_call(shared, (method, generation), started, &entry, &mut ctx)
        .map(|r| r.map_err(Box::new));
    if let Some(budget) = shared.inline.budget() {
        lane.record(started.elapsed(), budget);
    }
    (ctx, outcome)
}

/// What the connection's watcher runs at the deadline if a call in its request's task is
/// still running: cancel the call (as the request's own timer would) and make its 504, counted
/// and logged, as HTTP/1 bytes.
fn when_stuck(
    shared: &Arc<Shared>,
    entry: &Arc<RouteEntry>,
    asked: &Asked,
    token: CancelToken,
    timeout: Duration,
) -> impl FnOnce() -> Vec<u8> + Send + 'static {
    let (shared, entry, asked) = (Arc::clone(shared), Arc::clone(entry), asked.clone());
    move || {
        token.cancel();
        let answer = Answer::timed_out(&entry, &asked.id, timeout);
        http1(asked.finish(&shared, answer))
    }
}

/// The answer to a call awaited until its deadline (`None`: the deadline came first): 504
/// at the deadline (cancelling the call), 500 if its task or batch ended without its outcome
/// (`lost` says which, in the log), else the response from what the call set.
fn conclude<E: std::fmt::Display>(
    outcome: Option<Result<Ran, E>>,
    mut cancel: CancelOnDrop,
    entry: &Arc<RouteEntry>,
    id: &RequestId,
    timeout: Duration,
    lost: &str,
) -> Answer {
    let answer = match outcome {
        None => {
            // The plugin sees its deadline passed too; the cancel makes it certain.
            cancel.fire();
            Answer::timed_out(entry, id, timeout)
        }
        Some(Err(error)) => {
            tracing::error!(target: "gp::http", plugin = entry.plugin, "{lost}: {error}");
            Answer::gp(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the call failed in the host".into(),
                Some(entry),
                id,
            )
        }
        Some(Ok((mut ctx, outcome))) => respond(&mut ctx, outcome, entry, id, timeout),
    };
    cancel.disarm();
    answer
}

/// [`run`] for an isolated plugin: the call waits in the plugin's queue for a batch (see
/// `batch`), and the request answers at its deadline at the latest, as in [`run`].
#[cfg(feature = "isolate")]
async fn run_batched(
    shared: &Arc<Shared>,
    ctx: Box<Context>,
    call: Call,
    id: &RequestId,
    cancel: CancelOnDrop,
) -> Answer {
    let deadline = ctx.deadline().expect("a route's call has a deadline");
    let Call {
        method,
        entry,
        permit,
        lane,
        timeout,
        ..
    } = call;
    let (done, answer) = tokio::sync::oneshot::channel();
    let job = super::batch::Job {
        ctx,
        method,
        entry: Arc::clone(&entry),
        permit,
        done,
    };
    lane.batches.submit(shared, job);
    let outcome = tokio::time::timeout_at(deadline.into(), answer).await.ok();
    conclude(
        outcome,
        cancel,
        &entry,
        id,
        timeout,
        "a batch of calls ended without an answer for this one",
    )
}

/// Runs in the call's task, taken up at `started`: resolves the route again (`method` and
/// the request's path, in the table's `generation` it was routed in) and pins the version
/// that declares it. `None` when the route is gone (unloaded or upgraded away meanwhile).
fn resolve_and_call(
    shared: &Shared,
    (method, generation): (HttpMethod, u64),
    started: Instant,
    first: &Arc<RouteEntry>,
    ctx: &mut Context,
) -> Option<Result<(), Error>> {
    if ctx.is_cancelled() || ctx.deadline().is_some_and(|d| started >= d) {
        // Waited for a thread past the deadline (the client has its 504), or the client
        // left: the call would only burn a thread.
        return Some(Err(Error::DeadlineExceeded {
            plugin: first.plugin.clone(),
        }));
    }
    let entry = if shared.table.unchanged_since(generation) {
        // No change to the table began since the request was routed: a look-up would find
        // `first` again.
        Arc::clone(first)
    } else {
        // The entry is taken out of the table, which is not held across the call: a change
        // waits for the last reader of a table copy (see `routes::live`). The path is the
        // context's (the request's, made into a value now): the call's task carries no copy.
        let path = request::path(ctx)?;
        Arc::clone(
            shared
                .table
                .load()
                .still_served(method, path, &first.plugin)?,
        )
    };
    let executor = entry.executor.as_ref()?;
    executor.execute_if(ctx, |spec| entry.declared_by(spec))
}

/// Cancels a call's context when dropped, unless disarmed.
struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    fn fire(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.fire();
    }
}
