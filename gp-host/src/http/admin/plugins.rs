//! The plugin endpoints: list and show, the lifecycle changes (reload, load, upgrade,
//! rollback, unload, disable, enable), a test call, and install.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::{blocking, log_change, parse_json, ApiError, ApiResult, Body, Named, Upload};
use super::views::{views, ChangeView, UnloadView};
use super::AdminShared;
use crate::error::Error;
use crate::manager::Manager;
use crate::name::PluginName;
use crate::runtime::context::Context;
use crate::util::lock;

/// `GET /plugins`: every plugin, and every folder that failed to load.
pub(super) async fn list(State(shared): State<Arc<AdminShared>>) -> ApiResult {
    let (plugins, failures) = blocking(move || {
        let failures: Vec<serde_json::Value> = lock(&shared.failures)
            .iter()
            .map(|(origin, error)| serde_json::json!({"origin": origin, "error": error}))
            .collect();
        (views(&shared), failures)
    })
    .await;
    Ok(Json(
        serde_json::json!({ "plugins": plugins, "failures": failures }),
    ))
}

/// `GET /plugins/{name}`.
pub(super) async fn one(State(shared): State<Arc<AdminShared>>, Named(name): Named) -> ApiResult {
    let view = blocking(move || {
        views(&shared)
            .into_iter()
            .find(|v| v.name == *name)
            .ok_or_else(|| name.to_string())
    })
    .await;
    match view {
        Ok(view) => Ok(Json(serde_json::to_value(view).expect("a view serialises"))),
        Err(plugin) => Err(Error::NotFound { plugin }.into()),
    }
}

/// Runs `change` on plugin `name` off the async workers, logged as `action` by `caller`.
async fn change<T: Send + 'static>(
    shared: Arc<AdminShared>,
    caller: &Caller,
    action: &str,
    name: PluginName,
    change: impl FnOnce(&Manager, &str) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    log_change(caller, action, &name);
    blocking(move || change(&shared.manager, &name)).await
}

/// `POST /plugins/{name}/reload`.
pub(super) async fn reload(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
) -> ApiResult<Json<ChangeView>> {
    let upgrade = change(shared, &caller, "reload", name, Manager::reload).await?;
    Ok(Json(ChangeView::from(&upgrade)))
}

/// `POST /plugins/{name}/rollback`.
pub(super) async fn rollback(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
) -> ApiResult<Json<ChangeView>> {
    let upgrade = change(shared, &caller, "rollback", name, Manager::roll_back).await?;
    Ok(Json(ChangeView::from(&upgrade)))
}

/// `DELETE /plugins/{name}`.
pub(super) async fn unload(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
) -> ApiResult {
    let report = change(shared, &caller, "unload", name, Manager::unload).await?;
    Ok(Json(unloaded(&report)))
}

/// `POST /plugins/{name}/enable`.
pub(super) async fn enable(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
) -> ApiResult<Json<ChangeView>> {
    let synced = change(shared, &caller, "enable", name, Manager::enable).await?;
    Ok(Json(ChangeView::from(&synced)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /plugins/{name}/disable`, with an optional `{"reason"}`.
pub(super) async fn disable(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
    Body(body): Body,
) -> ApiResult {
    let body: DisableBody = parse_json(&body)?;
    let reason = body.reason.unwrap_or_else(|| {
        format!(
            "disabled through the management API (token {})",
            caller.token_id
        )
    });
    let disable = move |manager: &Manager, name: &str| manager.disable(name, &reason);
    let report = change(shared, &caller, "disable", name, disable).await?;
    Ok(Json(unloaded(&report)))
}

/// An unload's report as the API answers it.
fn unloaded(report: &crate::runtime::reaper::UnloadReport) -> serde_json::Value {
    serde_json::to_value(UnloadView::from(report)).expect("a view serialises")
}

/// `POST /plugins/{name}/load`: loads a plugin this server unloaded, from where it came.
pub(super) async fn load(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
) -> ApiResult<Json<ChangeView>> {
    let serving = shared.manager.get_plugin(&name).is_ok();
    let origin = shared.manager.origin_of(&name).filter(|_| !serving);
    let Some(origin) = origin else {
        let (status, message) = if serving {
            (
                StatusCode::CONFLICT,
                format!("plugin `{name}` is loaded already"),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                format!("plugin `{name}` was never loaded by this server, so where it comes from is not known: put it in the plugin directory"),
            )
        };
        return Err(ApiError(status, message));
    };
    let load = move |manager: &Manager, _: &str| manager.sync(&origin);
    let synced = change(shared, &caller, "load", name, load).await?;
    Ok(Json(ChangeView::from(&synced)))
}

/// `POST /plugins/{name}/upgrade`: a `.plg` in the body (streamed to a scratch file),
/// verified, written where the plugin comes from, swapped in.
pub(super) async fn upgrade(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
    Upload(upload): Upload,
) -> ApiResult<Json<ChangeView>> {
    let replace = move |manager: &Manager, name: &str| {
        let base = manager.base_dir();
        std::fs::create_dir_all(base).map_err(|e| Error::io(base, e))?;
        manager.replace_with_package(name, upload.path())
    };
    let synced = change(shared, &caller, "upgrade", name, replace)
        .await
        .map_err(|error| match error {
            // The upload's temporary name means nothing to the client.
            Error::Package { reason, .. } => ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("package refused: {reason}"),
            ),
            Error::NameMismatch { plugin, found, .. } => ApiError(
                StatusCode::CONFLICT,
                format!("the package is plugin `{found}`, not `{plugin}`: upload it to /api/v1/plugins/{found}/upgrade"),
            ),
            other => other.into(),
        })?;
    Ok(Json(ChangeView::from(&synced)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    values: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// `POST /plugins/{name}/invoke`: a test call, `{"label", "values", "timeout_ms"}` → the
/// values after it.
///
/// The answer comes at the timeout at the latest: 504, and the call is cancelled. A plugin
/// that ignores cancellation keeps running on its blocking-pool thread, which stays taken
/// until the plugin returns (a thread cannot be stopped); its result is dropped then. An
/// unload or a shutdown names the call while it runs.
pub(super) async fn invoke(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Named(name): Named,
    Body(body): Body,
) -> ApiResult {
    let body: InvokeBody = parse_json(&body)?;
    log_change(&caller, "invoke", &name);
    let executor = shared.manager.executor(&name)?;
    let timeout = Duration::from_millis(body.timeout_ms.unwrap_or(10_000).min(60_000));
    let mut ctx = Context::new().with_timeout(timeout);
    let cancel = ctx.cancel_token();
    let mut call = tokio::task::spawn_blocking(move || {
        ctx.set_label(body.label);
        for (key, value) in body.values {
            ctx.set(key, crate::Value::from(value));
        }
        executor.execute(&mut ctx).map(|()| ctx.to_json())
    });
    let values = match tokio::time::timeout(timeout, &mut call).await {
        Ok(joined) => joined.expect("a call does not panic: the executor catches it")?,
        // It returned just as the timeout passed: its answer is still the best one.
        Err(_) if call.is_finished() => call
            .await
            .expect("a call does not panic: the executor catches it")?,
        Err(_) => {
            // The plugin sees its deadline passed; the cancel makes it certain.
            cancel.cancel();
            return Err(ApiError(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "plugin `{name}` did not return within {} ms and is still running: its call was cancelled, but the plugin has not stopped (its thread stays busy until it does)",
                    timeout.as_millis()
                ),
            ));
        }
    };
    Ok(Json(serde_json::json!({ "values": values })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "install"), allow(dead_code))]
struct InstallBody {
    url: String,
    #[serde(default)]
    sha256: Option<String>,
}

/// `POST /plugins`: install from `{"url", "sha256"}` (feature `install`; an `oci://`
/// reference with feature `hub`).
pub(super) async fn install(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> Result<(StatusCode, Json<ChangeView>), ApiError> {
    let body: InstallBody = parse_json(&body)?;
    if body.url.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "send {\"url\": \"https://.../plugin.plg\", \"sha256\": \"...\"}".into(),
        ));
    }
    log_change(&caller, "install", &body.url);
    #[cfg(feature = "install")]
    {
        let spec = blocking(move || {
            shared.manager.install(
                &body.url,
                &crate::InstallOptions {
                    sha256: body.sha256,
                    #[cfg(feature = "hub")]
                    hub: shared.hub.as_ref().map(|hub| &hub.client),
                    ..Default::default()
                },
            )
        })
        .await?;
        Ok((
            StatusCode::CREATED,
            Json(ChangeView::Installed {
                plugin: spec.name().to_owned(),
                version: spec.version().to_string(),
            }),
        ))
    }
    #[cfg(not(feature = "install"))]
    {
        let _ = shared;
        Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this host was built without gp-host's `install` feature: it cannot download plugins"
                .into(),
        ))
    }
}
