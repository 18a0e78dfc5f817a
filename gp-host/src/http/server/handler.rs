//! A request's way through the server: its route, its limits, a concurrency slot (after a
//! wait in the plugin's queue), the call (in the request's own task, on the async workers or
//! the blocking pool, as the plugin's lane and the connection allow) under the route's
//! deadline, and the answer, counted and logged.

use std::future::{ready, Future};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::future::Either;
use gp_core::manifest::HttpMethod;

use super::access::{self, Asked};
use super::call::{run, run_here, Call};
use super::id::RequestId;
use super::lane::NoSlot;
use super::request::{self, Incoming};
use super::response::Answer;
use super::Shared;
use crate::http::listen::Rescue;
use crate::http::routes::{Lookup, Params, Reserved, RouteEntry};
use crate::runtime::context::Context;

/// The router's fallback handler: every request that is not one of gp's own, with the
/// client's address if the router was served with connect info.
pub(super) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    answer(shared, request, peer, Rescue::none()).await
}

/// A request from the client at `peer`, answered, counted and logged.
///
/// All that needs no waiting happens before any future is made (see [`prepare`]): the route,
/// its limits, for a request with no body the slot if one is free and the call's context; and
/// the call itself, if it may run in the request's own task (see [`run_here`]). The future is
/// then a ready response, and only a request that waits (for its body, a slot or a call in a
/// task of its own) is boxed: every request's future is written and read back once, so the
/// fewer bytes, the fewer cache lines (the whole way in one future was 2 KiB).
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
    // What is left to wait for: a call in a task of its own (`Ok`), or the body or a slot
    // first (`Err`).
    let left = match prepare(&shared, request, peer, &asked) {
        Next::Answered(answer) => return Either::Left(ready(asked.finish(&shared, *answer))),
        Next::Call(ctx, call) => match run_here(&shared, ctx, call, &asked, &rescue) {
            Ok(answer) => return Either::Left(ready(asked.finish(&shared, answer))),
            Err(call) => Ok(call),
        },
        Next::Wait(waiting) => Err(waiting),
    };
    Either::Right(Box::pin(async move {
        let answer = match left {
            Ok((ctx, call)) => run(&shared, ctx, call, &asked.id).await,
            // Boxed: the body's read and the queue's wait would make the future of every call
            // in a task of its own larger.
            Err(waiting) => Box::pin(waiting.then_run(&shared, &asked, &rescue)).await,
        };
        asked.finish(&shared, answer)
    }))
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
    let permit = if axum::body::HttpBody::is_end_stream(&body) {
        lane.try_slot()
    } else {
        None
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
        match run_here(shared, ctx, call.holding(permit), asked, rescue) {
            Ok(answer) => answer,
            Err((ctx, call)) => run(shared, ctx, call, id).await,
        }
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
