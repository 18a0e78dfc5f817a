//! The probes and what describes the plane: liveness, readiness, Prometheus metrics, the
//! route table, the last 15 minutes' history, the API's OpenAPI document.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::refuse;
use super::error::ApiResult;
use super::AdminShared;
use crate::http::{PluginServer, OPENMETRICS_CONTENT_TYPE};
use crate::util::lock;

/// `GET /healthz`: the plane answers.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /routes`: the route table, and the routes refused with why.
pub(super) async fn routes(State(shared): State<Arc<AdminShared>>) -> ApiResult {
    let routes = shared
        .server
        .as_ref()
        .map(PluginServer::routes)
        .unwrap_or_default();
    let refused: Vec<serde_json::Value> = lock(&shared.refused)
        .iter()
        .map(|(origin, reason)| serde_json::json!({"origin": origin, "reason": reason}))
        .collect();
    Ok(Json(
        serde_json::json!({ "routes": routes, "refused": refused }),
    ))
}

/// `GET /readyz`: what the plugin listener's `/-/readyz` says (the first load done, every
/// required plugin serving, followers' refusals), behind the token; 503 until the
/// application said the first load is done ([`Admin::mark_ready`](crate::http::Admin::mark_ready)).
pub(super) async fn readyz(State(shared): State<Arc<AdminShared>>) -> Response {
    if shared.ready.load(Ordering::Acquire) {
        match &shared.server {
            Some(server) => server.readyz_response(),
            None => crate::http::server::readiness_response(&shared.manager),
        }
    } else {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first load of the plugin directory is not finished",
        )
    }
}

/// `GET /metrics`: the Prometheus text, the HTTP metrics included.
pub(super) async fn metrics(State(shared): State<Arc<AdminShared>>) -> Response {
    let text = crate::http::metrics_text(&shared.manager, shared.server.as_ref());
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
}

/// `GET /openapi.json`: the API's description.
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// `GET /history`: the last 15 minutes of each plugin's rates and p99 (see `history`).
pub(super) async fn history(State(shared): State<Arc<AdminShared>>) -> Json<serde_json::Value> {
    Json(shared.history.view())
}
