//! Serving a router on a listener with the limits `axum::serve` leaves out: how long a
//! connection may stay open with no request (a client that connects and sends nothing, or
//! only an HTTP/2 preface, otherwise holds a descriptor and a task forever), how long a client
//! may take to send a request's head (slow-loris), how many connections may be open at once,
//! and how long shutdown waits for connections to finish.
//!
//! Every connection is tracked: the requests it has in flight (a request counts until its
//! response body is sent or dropped) and since when it has had none. A connection with none
//! for `idle_timeout` (counted from accept, then from its last response) is closed. At
//! `max_connections`, a new connection closes the one idle the longest; only when every
//! open connection has a request in flight is the new one refused, so that a flood of idle
//! connections cannot keep `/-/healthz` or the admin API from answering.

mod connection;
mod rescue;
mod tracker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;

use connection::{Busy, Connection, Watched};
pub(crate) use tracker::register_metrics;
use tracker::Tracker;

use crate::util::lock;
pub use rescue::Rescue;

/// How long a client may take to send a request's line and headers, unless configured
/// otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay open with no request in flight (from accept to its first
/// request, then between requests), unless configured otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// After shutdown begins, how long requests in flight may take, unless configured otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The most connections a listener keeps open unless configured otherwise: a quarter of the
/// process's descriptor limit (`RLIMIT_NOFILE`, leaving the rest to plugins, files and the
/// other listener), at most 10,000.
pub fn default_max_connections() -> usize {
    const CAP: u64 = 10_000;
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if let Some(limit) = limit {
            return (limit / 4).clamp(1, CAP) as usize;
        }
    }
    CAP as usize
}

/// Limits for [`serve`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ListenLimits {
    /// How long a client may take to send an HTTP/1 request's line and headers; past it the
    /// connection is closed (checked by the connection's own timer, at most this long apart:
    /// a head that does not finish is closed between this and twice it).
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight: from accept until its
    /// first request (a client that sends nothing, or an HTTP/2 preface and nothing more),
    /// then after each response. Past it the connection is closed.
    pub idle_timeout: Duration,
    /// How many connections may be open at once. A connection past it closes the one idle
    /// the longest, or is refused when none is idle: sent a 503 (`Retry-After: 1`) and
    /// closed at once.
    pub max_connections: usize,
    /// After shutdown begins, how long to wait for requests in flight before dropping their
    /// connections.
    pub grace: Duration,
}

impl ListenLimits {
    /// The same limits, with the header timeout `timeout`.
    #[must_use]
    pub fn with_header_timeout(mut self, timeout: Duration) -> ListenLimits {
        self.header_timeout = timeout;
        self
    }

    /// The same limits, with the idle timeout `timeout`.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> ListenLimits {
        self.idle_timeout = timeout;
        self
    }

    /// The same limits, with at most `connections` open at once (at least 1).
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> ListenLimits {
        self.max_connections = connections.max(1);
        self
    }

    /// The same limits, with the shutdown grace period `grace`.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> ListenLimits {
        self.grace = grace;
        self
    }
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: default_max_connections(),
            grace: DEFAULT_GRACE,
        }
    }
}

/// What a listener answers requests with: an axum router (an application's, the admin's), or
/// a [`PluginServer`](crate::http::PluginServer) on its own, with no router in front (what
/// `gp serve`'s plugin listener runs: a router's layers cost a request about a tenth of its
/// user-space instructions, for one `/-/healthz` route beside the fallback).
pub trait App: Clone + Send + Sync + 'static {
    /// Answers `request`, sent by the client at `peer` (on a clone of the app: a router and
    /// a plugin server are handles).
    fn answer(
        self,
        request: axum::extract::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static;

    /// [`answer`](Self::answer), given the connection the request came on: an app that runs
    /// work in the request's own task can leave the request's answer at a deadline to it (see
    /// [`Rescue`]). What the listener calls; by default, `answer`.
    fn answer_on(
        self,
        request: axum::extract::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        rescue: Rescue,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static {
        drop(rescue);
        self.answer(request, peer)
    }
}

/// A router sees the client's address as `ConnectInfo<SocketAddr>`.
impl App for axum::Router {
    fn answer(
        self,
        mut request: axum::extract::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer));
        let mut router = self;
        async move {
            match tower_service::Service::call(&mut router, request).await {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            }
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` resolves, then stops
/// accepting and lets requests in flight finish for up to `limits.grace`. `axum::serve` with
/// the limits of [`ListenLimits`]: what `gp serve` runs on both its listeners.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: impl App,
    shutdown: impl Future<Output = ()>,
    limits: ListenLimits,
) {
    let plain = |stream: tokio::net::TcpStream, conn: &Arc<Connection>| {
        std::future::ready(Ok(rescue::Tcp::new(stream, conn)))
    };
    serve_with(listener, app, shutdown, limits, plain, true).await;
}

/// [`serve`] over TLS (feature `tls`): each connection's handshake first, within the idle
/// timeout; HTTP/1.1 only, as `config` says through ALPN.
#[cfg(feature = "tls")]
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: impl App,
    shutdown: impl Future<Output = ()>,
    limits: ListenLimits,
    config: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handshake =
        move |stream: tokio::net::TcpStream, _: &Arc<Connection>| acceptor.accept(stream);
    serve_with(listener, app, shutdown, limits, handshake, false).await;
}

/// The accept loop: `handshake` turns an accepted stream into the one HTTP is spoken on
/// (`plain`: the stream itself, to which a refusal may be written as it is).
async fn serve_with<A, H, F, S>(
    listener: tokio::net::TcpListener,
    app: A,
    shutdown: impl Future<Output = ()>,
    limits: ListenLimits,
    handshake: H,
    plain: bool,
) where
    A: App,
    H: Fn(tokio::net::TcpStream, &Arc<Connection>) -> F + Clone + Send + 'static,
    F: Future<Output = std::io::Result<S>> + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // The header timeout is the connection watcher's (`connection::watch`): hyper's made and
    // registered a timer per request.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let name = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let tracker = Arc::new(Tracker::new(name, limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was accepted: keep
                    // serving the others, without spinning.
                    tracing::debug!(target: "gp::http", "accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some((id, conn)) = tracker.admit() else {
            // Every open connection has a request in flight: a 503 if the socket takes it at
            // once (never waiting on this client), then closed.
            if plain {
                let _ = stream.try_write(tracker.refusal.as_bytes());
            }
            continue;
        };
        let service = service(app.clone(), peer, Arc::clone(&conn));
        let (builder, handshake) = (builder.clone(), handshake.clone());
        let tracker = Arc::clone(&tracker);
        let (idle_timeout, header_timeout) = (limits.idle_timeout, limits.header_timeout);
        tokio::spawn(async move {
            // Released (and its watcher stopped) however the task ends, a panic included: a
            // connection left in the tracker would hold shutdown for its whole grace.
            let mut ended = tracker::Ended::new(Arc::clone(&tracker), id);
            // A TLS client that connects and sends nothing is closed at the idle timeout too.
            let shaken = tokio::time::timeout(idle_timeout, handshake(stream, &conn)).await;
            if let Ok(Ok(stream)) = shaken {
                let watch = connection::watch(Arc::clone(&conn), idle_timeout, header_timeout);
                ended.watch(tokio::spawn(async move {
                    if watch.await == connection::Watch::Answered {
                        // The connection's task is in a call that may never return: its
                        // client has its answer, so neither the connection limit nor
                        // shutdown waits for it (the runtime's shutdown bounds the call).
                        tracker.release(id);
                    }
                }));
                let stream = Watched::new(stream, Arc::clone(&conn));
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                tokio::pin!(connection);
                connection::drive(&conn, connection).await;
            }
            // The stream closes as the connection ends, not when the last handle goes.
            lock(&conn.writer).take();
        });
    }
    drop(listener);
    tokio::select! {
        () = tracker.drain() => {},
        () = tokio::time::sleep(limits.grace) => {
            tracing::warn!(target: "gp::http", "requests still in flight after {:?}; closing their connections", limits.grace);
            tracker.tell_all(connection::Told::Close);
        },
    }
}

/// `app` as a connection's service: each request counts as in flight on `conn` until its
/// response body is sent (or dropped), so that a server-sent event stream is never idle.
fn service(
    app: impl App,
    peer: SocketAddr,
    conn: Arc<Connection>,
) -> impl hyper::service::Service<
    axum::extract::Request<hyper::body::Incoming>,
    Response = hyper::Response<Tracked>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<hyper::Response<Tracked>, std::convert::Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    hyper::service::service_fn(
        move |request: axum::extract::Request<hyper::body::Incoming>| {
            let busy = Busy::start(&conn);
            let answer = app
                .clone()
                .answer_on(request, peer, Rescue(Some(Arc::clone(&conn))));
            async move {
                let response = answer.await;
                Ok(response.map(|body| Tracked { body, _busy: busy }))
            }
        },
    )
}

/// A response body that keeps its request counted as in flight until it is sent or dropped.
/// Its size is the body's (a wrapper that hid it made hyper send every response chunked,
/// without a `Content-Length`).
struct Tracked {
    body: axum::body::Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
