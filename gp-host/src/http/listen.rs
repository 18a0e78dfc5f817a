//! Serving a router on a listener with the limits `axum::serve` leaves out: how long a client
//! may take to send a request's head (a slow-loris client otherwise holds a connection and a
//! task forever), and how long shutdown waits for connections to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;

/// How long a client may take to send a request's line and headers, unless configured
/// otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits for [`serve`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ListenLimits {
    /// How long a client may take to send a request's line and headers; past it the
    /// connection is closed.
    pub header_timeout: Duration,
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
            grace: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` resolves, then stops
/// accepting and lets requests in flight finish for up to `limits.grace`. Handlers see the
/// client's address as `ConnectInfo<SocketAddr>`. `axum::serve` with a header timeout:
/// what `gp serve` runs on both its listeners.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
    limits: ListenLimits,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
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
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                let mut app = app.clone();
                async move { tower_service::Service::call(&mut app, request).await }
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(limits.grace) => {
            tracing::warn!(target: "gp::http", "requests still in flight after {:?}; closing their connections", limits.grace);
        },
    }
}
