//! An [`Error`] as the API answers it (the status its kind means, the message as the body's
//! `error`), request bodies read with a JSON error for every refusal (uploads streamed to a
//! scratch file), and running a change off the async workers.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;

use super::auth::{refuse, Caller};
use super::{AdminShared, JSON_LIMIT};
use crate::error::{Error, ErrorKind};
use crate::name::PluginName;
use crate::util::scratch::ScratchFile;

/// An error as the API answers it: the library's message, and the status its kind means.
pub(super) struct ApiError(pub(super) StatusCode, pub(super) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let status = match (&error, error.kind()) {
            (Error::NotFound { .. }, _) => StatusCode::NOT_FOUND,
            (Error::InvalidName { .. }, _) => StatusCode::BAD_REQUEST,
            (Error::Cancelled { .. } | Error::DeadlineExceeded { .. }, _) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            (Error::Download { .. } | Error::Hub { .. } | Error::Transfer { .. }, _) => {
                StatusCode::BAD_GATEWAY
            }
            // Its kind became `Call` when it was split from `Runner` (0.2.0); the API answers
            // it as it answered `Runner`.
            (Error::Restart { .. }, _) => StatusCode::UNPROCESSABLE_ENTITY,
            (_, ErrorKind::Manager) => StatusCode::CONFLICT,
            (
                _,
                ErrorKind::Source
                | ErrorKind::Verify
                | ErrorKind::Abi
                | ErrorKind::Build
                | ErrorKind::Hook,
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            (_, ErrorKind::Call) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, error.to_string())
    }
}

/// A plugin name from the URL's `{name}`, checked: a path, `..` or an empty name is refused
/// (400) before any handler looks anything up with it.
pub(super) struct Named(pub(super) PluginName);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Named {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Named, ApiError> {
        let axum::extract::Path(name) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| ApiError(rejection.status(), rejection.body_text()))?;
        PluginName::new(name).map(Named).map_err(ApiError::from)
    }
}

/// Takes the host's own paths out of an error's message before it leaves: the base and
/// runtime directories become relative (`greeter/plugin.json`, `.gp-runtime/…`). A client
/// holding a token learns where a plugin's files are from its `origin`; an error needs no
/// more, and an anonymous one (a refused request) none at all.
pub(super) async fn without_paths(
    axum::extract::State(shared): axum::extract::State<std::sync::Arc<AdminShared>>,
    response: Response,
) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !response.status().is_client_error() && !response.status().is_server_error() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, JSON_LIMIT).await else {
        return refuse(parts.status, "the error could not be read back");
    };
    let mut json: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(json) => json,
        Err(_) => return Response::from_parts(parts, axum::body::Body::from(bytes)),
    };
    if let Some(serde_json::Value::String(message)) = json.get_mut("error") {
        *message = shared.relative(message);
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(json.to_string()))
}

/// What a JSON endpoint answers.
pub(super) type ApiResult<T = Json<serde_json::Value>> = Result<T, ApiError>;

/// How long a client may take to send a JSON body, or may pause in an upload.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request's JSON body (at most [`JSON_LIMIT`]), refused (too large, unreadable, not sent
/// within [`BODY_TIMEOUT`]) with a JSON error like every other one.
pub(super) struct Body(pub(super) Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body, ApiError> {
        let read = tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(request, state));
        let Ok(read) = read.await else {
            return Err(ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body was not received within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ));
        };
        read.map(Body)
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => too_large(JSON_LIMIT),
                status => ApiError(status, rejection.body_text()),
            })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than this endpoint accepts ({limit} bytes)"),
    )
}

/// An uploaded package: the request body written to a scratch file as it arrives, never held
/// in memory whole. A declared `Content-Length` over the upload limit is refused before a
/// byte is read; a body that grows past it, or that stops for [`BODY_TIMEOUT`], while it is
/// read.
pub(super) struct Upload(pub(super) ScratchFile);

/// Chunks on their way from the socket to the file: what an upload holds in memory.
const UPLOAD_CHUNKS: usize = 4;

impl axum::extract::FromRequest<Arc<AdminShared>> for Upload {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        shared: &Arc<AdminShared>,
    ) -> Result<Upload, ApiError> {
        let limit = shared.upload_limit;
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        let runtime_dir = shared.manager.runtime_dir().to_owned();
        // Named for this process: what an interrupted upload leaves, a collection removes.
        let upload = blocking(move || ScratchFile::create(&runtime_dir, "upload", ".plg")).await?;
        let mut file = upload
            .file()
            .try_clone()
            .map_err(|e| Error::io(upload.path(), e))?;
        let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(UPLOAD_CHUNKS);
        let writer = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = received.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.flush()
        });
        let mut body = request.into_body();
        let mut read = 0usize;
        loop {
            let frame = match tokio::time::timeout(BODY_TIMEOUT, body.frame()).await {
                Err(_elapsed) => {
                    return Err(ApiError(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the upload stopped: no byte arrived for {} s",
                            BODY_TIMEOUT.as_secs()
                        ),
                    ))
                }
                Ok(None) => break,
                Ok(Some(frame)) => frame.map_err(|e| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        format!("the request body could not be read: {e}"),
                    )
                })?,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            read += data.len();
            if read > limit {
                return Err(too_large(limit));
            }
            if chunks.send(data).await.is_err() {
                break; // the writer failed: its error is below
            }
        }
        drop(chunks);
        let written = writer.await.expect("writing an upload does not panic");
        written.map_err(|e| Error::io(upload.path(), e))?;
        Ok(Upload(upload))
    }
}

/// The body, parsed; an empty body reads as `{}`.
pub(super) fn parse_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the request body is not what this endpoint takes: {e}"),
        )
    })
}

/// Runs blocking work (a change to the manager, a registry request) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a manager change does not panic")
}

/// Logs a change with the token that asked for it.
pub(super) fn log_change(caller: &Caller, action: &str, plugin: &str) {
    tracing::info!(target: "gp::admin", token = caller.token_id, action, plugin, "management change");
}

#[cfg(test)]
mod tests {
    use super::{ApiError, StatusCode};
    use crate::error::{Error, RunnerFailure};

    #[test]
    fn a_failed_runner_restart_answers_as_a_runner_failure_did() {
        let restart = Error::Restart {
            plugin: "p".into(),
            reason: RunnerFailure::NoPong,
        };
        let runner = Error::Runner {
            plugin: "p".into(),
            reason: RunnerFailure::NoPong,
        };
        assert_eq!(ApiError::from(restart).0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::from(runner).0, StatusCode::UNPROCESSABLE_ENTITY);
        let cancelled = Error::Cancelled { plugin: "p".into() };
        assert_eq!(ApiError::from(cancelled).0, StatusCode::GATEWAY_TIMEOUT);
    }
}
