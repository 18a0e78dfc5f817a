//! The GUI: static files compiled into the binary (no build step, nothing fetched at run
//! time), served with a strict content security policy. The page talks to `/api/v1` with the
//! token the operator enters once (kept in session storage, never in a URL).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::http::admin::auth::check_host_and_origin;
use crate::http::admin::AdminShared;

const INDEX: &str = include_str!("gui/index.html");
const SCRIPT: &str = include_str!("gui/app.js");
const STYLE: &str = include_str!("gui/style.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn headers(State(shared): State<Arc<AdminShared>>, request: Request, next: Next) -> Response {
    if let Err(refused) = check_host_and_origin(&shared.allowed_hosts, request.headers()) {
        return *refused;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn router(shared: Arc<AdminShared>) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .layer(axum::middleware::from_fn_with_state(shared, headers))
}
