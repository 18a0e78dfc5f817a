//! The Hub page's endpoints (feature `hub`): the registry namespace configured, and a search
//! there. Installing from it is `POST /plugins`, with every other install's checks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

#[cfg(feature = "hub")]
use super::error::blocking;
use super::error::{ApiError, ApiResult};
use super::AdminShared;

/// `GET /hub`: the registry namespace the Hub page searches, or `null`.
pub(super) async fn info(State(shared): State<Arc<AdminShared>>) -> ApiResult {
    #[cfg(feature = "hub")]
    let registry = shared.hub.as_ref().map(|hub| hub.namespace.to_string());
    #[cfg(not(feature = "hub"))]
    let registry: Option<String> = shared.hub.as_ref().map(|_| String::new());
    Ok(Json(serde_json::json!({ "registry": registry })))
}

#[derive(Deserialize)]
#[cfg_attr(not(feature = "hub"), allow(dead_code))]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /hub/search?q=`: the plugins in the configured registry namespace whose name or
/// description holds `q`, each with the reference (digest included) of its newest version.
pub(super) async fn search(
    State(shared): State<Arc<AdminShared>>,
    axum::extract::Query(query): axum::extract::Query<SearchQuery>,
) -> ApiResult {
    #[cfg(feature = "hub")]
    {
        let Some(hub) = shared.hub.clone() else {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "no registry is configured: start gp serve with --registry HOST[:PORT]/NAMESPACE (or GP_REGISTRY)".into(),
            ));
        };
        let found = blocking(move || hub.client.search(&hub.namespace, &query.q)).await?;
        let skipped: Vec<serde_json::Value> = found
            .skipped
            .iter()
            .map(|(repository, reason)| serde_json::json!({"repository": repository, "reason": reason}))
            .collect();
        let registry = shared.hub.as_ref().map(|hub| hub.namespace.to_string());
        Ok(Json(serde_json::json!({
            "registry": registry,
            "plugins": found.plugins,
            "skipped": skipped,
        })))
    }
    #[cfg(not(feature = "hub"))]
    {
        let _ = (shared, query);
        Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this host was built without gp-host's `hub` feature: it cannot search registries"
                .into(),
        ))
    }
}
