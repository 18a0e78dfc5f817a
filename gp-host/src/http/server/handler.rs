//! A request's way through the server: its route, its limits, a concurrency slot (after a
//! wait in the plugin's queue), the call (on the async workers or the blocking pool, as the
//! plugin's lane says) under the route's deadline, and the answer, counted and logged.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use gp_core::manifest::HttpMethod;
use tokio::sync::OwnedSemaphorePermit;

use super::access::{self, Line};
use super::id::RequestId;
use super::lane::{Lane, NoSlot};
use super::request::{self, Incoming};
use super::response::{http1, respond, Answer, Ran};
use super::Shared;
use crate::error::Error;
use crate::http::listen::Rescue;
use crate::http::routes::{Lookup, Params, Reserved, RouteEntry};
use crate::runtime::context::{CancelToken, Context};

/// The router's fallback handler: every request that is not one of gp's own, with the
/// client's address if the router was served with connect info.
pub(super) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    answer(shared, request, peer, Rescue::none()).await
}

/// A request from the client at `peer`, answered, counted and logged; a call may run in
/// the request's own task when `rescue` can answer it at its deadline (see `run`).
///
/// All that needs no waiting happens before the future is made (see [`prepare`]): for a
/// request with no body to a plugin with a free slot, the future holds the call ready to run
/// and little more, under 600 bytes, where the whole way in one future was 2 KiB. Every
/// request writes its future, and reads it back as it runs: fewer bytes, fewer cache lines.
pub(super) fn answer(
    shared: Arc<Shared>,
    request: Request,
    peer: Option<SocketAddr>,
    rescue: Rescue,
) -> impl Future<Output = Response> + Send + 'static {
    let started = Instant::now();
    let id = shared.request_id(request.headers());
    let logged = shared.access.as_ref().filter(|log| log.enabled()).map(|_| {
        let path = request.uri().path().as_bytes();
        (request.method().clone(), access::Path::from_slice(path))
    });
    let asked = Asked {
        id,
        started,
        logged,
    };
    let next = prepare(&shared, request, peer, &asked);
    async move {
        let answer = match next {
            Next::Answered(answer) => *answer,
            Next::Call(ctx, call) => run(&shared, ctx, call, &asked, &rescue).await,
            // Boxed: the body's read and the queue's wait would make every request's future
            // larger, bodiless ones with a free slot too.
            Next::Wait(waiting) => Box::pin(waiting.then_run(&shared, &asked, &rescue)).await,
        };
        asked.finish(&shared, answer)
    }
}

/// What the end of a request needs from its start: its id, when it arrived, and its method
/// and path if requests are logged.
#[derive(Clone)]
pub(super) struct Asked {
    id: RequestId,
    started: Instant,
    logged: Option<(axum::http::Method, access::Path)>,
}

impl Asked {
    /// The response for `answer`, with the request's id, counted and logged (unless it was
    /// answered already: see `run`).
    fn finish(self, shared: &Shared, answer: Answer) -> Response {
        let Answer {
            mut response,
            route,
            sent,
        } = answer;
        if sent {
            return response;
        }
        response
            .headers_mut()
            .insert(super::id::X_REQUEST_ID, self.id.header());
        let status = response.status().as_u16();
        let elapsed = self.started.elapsed();
        match &route {
            Some(entry) => shared.metrics.observe_route(
                &entry.plugin,
                &entry.label,
                &entry.stats,
                status,
                elapsed,
            ),
            None => shared.metrics.observe_unrouted(status, elapsed),
        }
        if let (Some(log), Some((method, path))) = (&shared.access, self.logged) {
            log.log(Line {
                method,
                path,
                status,
                route,
                request_id: self.id,
                micros: elapsed.as_micros() as u64,
            });
        }
        response
    }
}

/// A request that ends before its call, with gp's own answer (boxed: the common path
/// returns the small `Ok`).
type Early<T> = Result<T, Box<Answer>>;

/// Where a request goes: its method, its route, the route's parameters, and the route
/// table's generation it was found in.
type Routed = (HttpMethod, Arc<RouteEntry>, Params, u64);

/// A request's next step, found without waiting.
enum Next {
    /// gp's own answer, before any call: no route, a route held, ...
    Answered(Box<Answer>),
    /// A call ready to run: its context made, its slot held.
    Call(Box<Context>, Call),
    /// A body to read or a slot to wait for before the call.
    Wait(Box<Waiting>),
}

/// Everything between the request, which arrived at `asked.started`, and its call that
/// needs no waiting: the route, its limits, and (for a request with no body to a plugin with
/// a free slot) the slot and the call's context.
fn prepare(shared: &Shared, request: Request, peer: Option<SocketAddr>, asked: &Asked) -> Next {
    let id = &asked.id;
    let (method, entry, params, generation) = match route(shared, &request, id) {
        Ok(found) => found,
        Err(answer) => return Next::Answered(answer),
    };
    if let Some(reserved) = &entry.reserved {
        return Next::Answered(Box::new(unavailable(&entry, reserved, id)));
    }
    let (timeout, body_limit) = shared.limits(&entry);
    let lane = shared.lane(&entry.plugin);
    let (parts, body) = request.into_parts();
    // No body (a GET, usually): nothing to read, time or count.
    let permit = match axum::body::HttpBody::is_end_stream(&body) {
        true => lane.try_slot(),
        false => None,
    };
    let incoming = Incoming {
        parts,
        method,
        entry: Arc::clone(&entry),
        params,
        peer,
        id: id.clone(),
    };
    let call = Call {
        method,
        entry,
        generation,
        timeout,
        lane,
        permit: (),
    };
    let Some(permit) = permit else {
        return Next::Wait(Box::new(Waiting {
            incoming,
            body,
            body_limit,
            call,
        }));
    };
    // From the request's arrival (a clock read fewer than from here, a few µs later).
    let deadline = asked.started + timeout;
    let ctx = request::context(incoming, Bytes::new(), None, deadline);
    Next::Call(ctx, call.holding(permit))
}

/// A request that waits for its body, or for a slot in its plugin's queue, before its call.
struct Waiting {
    incoming: Incoming,
    body: Body,
    body_limit: usize,
    call: Call<()>,
}

impl Waiting {
    /// Reads the body (within the route's limit, the body timeout and the server's budget),
    /// waits for a slot (in the plugin's queue, until the queue's wait or the deadline), then
    /// runs the call.
    async fn then_run(self, shared: &Arc<Shared>, asked: &Asked, rescue: &Rescue) -> Answer {
        let Waiting {
            incoming,
            body,
            body_limit,
            call,
        } = self;
        let (entry, id, timeout) = (&call.entry, &asked.id, call.timeout);
        let deadline = asked.started + timeout;
        // `_held` counts the body against the server's budget until the request is answered.
        let read = shared.read_body(&incoming.parts, body, body_limit, entry, id);
        let (body, json, _held) = match read.await {
            Ok(read) => read,
            Err(answer) => return *answer,
        };
        let slot = call
            .lane
            .slot(shared.config.queue, shared.config.queue_wait, deadline);
        let permit = match slot.await {
            Ok(permit) => permit,
            Err(NoSlot::Deadline) => return Answer::timed_out(entry, id, timeout),
            Err(NoSlot::Busy) => return busy(entry, id),
        };
        let ctx = request::context(incoming, body, json, deadline);
        run(shared, ctx, call.holding(permit), asked, rescue).await
    }
}

/// The route `request` goes to, with its parameters; or the 404 or 405 that says why none.
fn route(shared: &Shared, request: &Request, id: &RequestId) -> Early<Routed> {
    let Some(method) = request::http_method(request.method()) else {
        return Err(Box::new(Answer::gp(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not served", request.method()),
            None,
            id,
        )));
    };
    let path = request.uri().path();
    let generation = shared.table.generation();
    let table = shared.table.load();
    match table.lookup(method, path) {
        Lookup::Found { entry, params } => Ok((method, Arc::clone(entry), params, generation)),
        Lookup::WrongMethod { allow } => {
            let mut answer = Answer::gp(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "method {method} is not allowed on {path}; allowed: {}",
                    allow.join(", ")
                ),
                None,
                id,
            );
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                answer.response.headers_mut().insert(header::ALLOW, value);
            }
            Err(Box::new(answer))
        }
        Lookup::NotFound => Err(Box::new(Answer::gp(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}"),
            None,
            id,
        ))),
    }
}

/// 503 with `Retry-After`: the plugin's slots are taken and its queue is full, or the wait
/// for a slot ran out.
fn busy(entry: &Arc<RouteEntry>, id: &RequestId) -> Answer {
    let mut answer = Answer::gp(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "plugin `{}` is running as many calls as it may; retry shortly",
            entry.plugin
        ),
        Some(entry),
        id,
    );
    answer
        .response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    answer
}

/// The 503 of a route held for its plugin: disabled (until enabled: no `Retry-After`), or
/// loading (moments, usually: retry in a second).
fn unavailable(entry: &Arc<RouteEntry>, reserved: &Reserved, id: &RequestId) -> Answer {
    let plugin = &entry.plugin;
    let message = match reserved {
        Reserved::Disabled(reason) => format!("plugin `{plugin}` is disabled: {reason}"),
        Reserved::Loading => format!("plugin `{plugin}` is loading; retry shortly"),
    };
    let mut answer = Answer::gp(StatusCode::SERVICE_UNAVAILABLE, message, Some(entry), id);
    if matches!(reserved, Reserved::Loading) {
        answer
            .response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    answer
}

/// A call about to run: where it goes, its route's timeout, and (`P`) the slot it holds
/// until it returns.
struct Call<P = OwnedSemaphorePermit> {
    method: HttpMethod,
    entry: Arc<RouteEntry>,
    /// The route table's generation the request was routed in.
    generation: u64,
    timeout: Duration,
    lane: Arc<Lane>,
    permit: P,
}

impl Call<()> {
    /// The call, given its slot.
    fn holding(self, permit: OwnedSemaphorePermit) -> Call {
        let Call {
            method,
            entry,
            generation,
            timeout,
            lane,
            permit: (),
        } = self;
        Call {
            method,
            entry,
            generation,
            timeout,
            lane,
            permit,
        }
    }
}

/// Runs the call in a task of its own (on the async workers, or the blocking pool: see
/// `lane`) or, for a promoted plugin on a connection that can answer for it, in this task
/// (`listen::rescue`); holds its slot until it returns (even after a 504), and answers at the
/// deadline at the latest, whatever the call is doing. A client that goes away cancels the
/// call (one running in this task: at its deadline, when the connection answers).
async fn run(
    shared: &Arc<Shared>,
    mut ctx: Box<Context>,
    call: Call,
    asked: &Asked,
    rescue: &Rescue,
) -> Answer {
    let (id, timeout) = (&asked.id, call.timeout);
    let deadline = ctx.deadline().expect("a route's call has a deadline");
    // Cancels the call if this future is dropped before it finishes: the client went away.
    let mut cancel = CancelOnDrop(Some(ctx.cancel_token()));
    let entry = Arc::clone(&call.entry);
    #[cfg(feature = "isolate")]
    if entry.isolated {
        // Boxed: its state would make every request's future larger, routed inline or not.
        return Box::pin(run_batched(shared, ctx, call, id, cancel)).await;
    }
    // An async handler's call blocks its thread on the plugin's runtime: never inline.
    let eligible = !entry.asynchronous && call.lane.promoted_in(&shared.inline);
    // Not for HEAD in the request's task: the connection's 504 would carry a body.
    let in_task = eligible && call.method != HttpMethod::Head;
    let lane = Arc::clone(&call.lane);
    let budget = shared.inline.budget();
    // The call, from `started` (when its thread took it up).
    let work = {
        let shared = Arc::clone(shared);
        move |started: Instant| {
            let Call {
                method,
                entry,
                generation,
                permit,
                lane,
                ..
            } = call;
            let _permit = permit;
            let outcome =
                resolve_and_call(&shared, (method, generation), started, &entry, &mut ctx)
                    .map(|r| r.map_err(Box::new));
            if let Some(budget) = budget {
                lane.record(started.elapsed(), budget);
            }
            (ctx, outcome)
        }
    };
    // A promoted plugin's call, on a connection that can answer for it at its deadline, runs
    // here, in the request's own task (see `listen::rescue`): no task of its own, no timer.
    if in_task && rescue.ready(deadline) {
        if let Some(inline) = shared.inline.place_now(&lane) {
            let stuck = when_stuck(shared, &entry, asked, &cancel, timeout);
            if let Some(armed) = rescue.arm(deadline, stuck) {
                shared.metrics.inline.inc();
                shared.metrics.in_request_task.inc();
                // A panic of gp's own code (a plugin's is caught in the plugin) answers 500,
                // as from a task of its own, rather than ending the connection's task.
                let started = inline.started();
                let ran = std::panic::catch_unwind(AssertUnwindSafe(|| work(started)))
                    .map_err(|_| "the call panicked");
                drop(inline);
                if armed.disarm() {
                    // The deadline came first: the connection answered 504 and is closing.
                    cancel.disarm();
                    return Answer::sent();
                }
                return conclude(Some(ran), cancel, &entry, id, timeout, "call failed");
            }
        }
    }
    let worker = if eligible {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            // The inline place is taken when the call starts, or after a short wait for one
            // (boxed: the wait's state would make every call's task larger): see `lane`.
            let inline = match shared.inline.place_now(&lane) {
                Some(inline) => Some(inline),
                None => Box::pin(shared.inline.place(&lane)).await,
            };
            match inline {
                Some(inline) => {
                    shared.metrics.inline.inc();
                    work(inline.started())
                }
                None => {
                    shared.metrics.pool.inc();
                    match tokio::task::spawn_blocking(move || work(Instant::now())).await {
                        Ok(done) => done,
                        Err(join) => std::panic::resume_unwind(join.into_panic()),
                    }
                }
            }
        })
    } else {
        shared.metrics.pool.inc();
        tokio::task::spawn_blocking(move || work(Instant::now()))
    };
    let outcome = tokio::time::timeout_at(deadline.into(), worker).await.ok();
    conclude(outcome, cancel, &entry, id, timeout, "call task failed")
}

/// What the connection's watcher runs at the deadline if a call in its request's task is
/// still running: cancel the call (as the request's own timer would) and make its 504, counted
/// and logged, as HTTP/1 bytes.
fn when_stuck(
    shared: &Arc<Shared>,
    entry: &Arc<RouteEntry>,
    asked: &Asked,
    cancel: &CancelOnDrop,
    timeout: Duration,
) -> impl FnOnce() -> Vec<u8> + Send + 'static {
    let (shared, entry, asked) = (Arc::clone(shared), Arc::clone(entry), asked.clone());
    let token = cancel.0.clone();
    move || {
        if let Some(token) = token {
            token.cancel();
        }
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
