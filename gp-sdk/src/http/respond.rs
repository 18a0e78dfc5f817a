//! What a typed route handler returns, and how it becomes the response: [`IntoResponse`] for
//! success, [`IntoErrorResponse`] for the `E` of a `Result<T, E>`.

use serde::Serialize;

pub use http::StatusCode;

use super::extract::Json;
use crate::{Context, Error, Result};

/// What a typed route handler may return; the response is set on the call's context.
///
/// Implemented for `()` (200, or 204 without a body), [`Json<T>`], `String` and `&'static str`
/// (text), `Vec<u8>` (bytes), [`StatusCode`], `(StatusCode, T)`, [`Response`], and
/// `Result<T, E>` of those where `E` is an [`IntoErrorResponse`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a route's response",
    label = "the route handler's return type",
    note = "return Json<T>, String, &'static str, Vec<u8>, (), StatusCode, (StatusCode, T), Response, or a Result<T, E> of these where E: IntoErrorResponse (gp_sdk::Error, String, StatusCode, (StatusCode, String), or your own type)"
)]
pub trait IntoResponse {
    /// Sets the response on `ctx`; an error ends the call with it.
    fn into_response(self, ctx: &mut Context<'_>) -> Result;
}

/// The error of a typed route handler: the status it answers with (500 unless the type says
/// otherwise) and its message, sent as `{"error": message}`.
///
/// ```
/// use gp_sdk::http::{IntoErrorResponse, StatusCode};
///
/// enum ItemError {
///     NotFound(u64),
///     Storage(String),
/// }
///
/// impl IntoErrorResponse for ItemError {
///     fn status(&self) -> StatusCode {
///         match self {
///             ItemError::NotFound(_) => StatusCode::NOT_FOUND,
///             ItemError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
///         }
///     }
///     fn message(&self) -> String {
///         match self {
///             ItemError::NotFound(id) => format!("no item {id}"),
///             ItemError::Storage(reason) => reason.clone(),
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a route's error response",
    label = "the error type of the route handler's `Result`",
    note = "use gp_sdk::Error (`Error::with_status(404, \"...\")`), String, StatusCode or (StatusCode, String), or implement gp_sdk::http::IntoErrorResponse for your type"
)]
pub trait IntoErrorResponse {
    /// The response's status: 500 unless the type says otherwise.
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The message: sent as `{"error": message}`, and the call's error in the host's log.
    fn message(&self) -> String;
}

impl IntoResponse for () {
    fn into_response(self, _: &mut Context<'_>) -> Result {
        Ok(())
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond_json(&self.0)
    }
}

impl IntoResponse for String {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond_text(self);
        Ok(())
    }
}

impl IntoResponse for &'static str {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond_text(self);
        Ok(())
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond_bytes(self);
        Ok(())
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond(self.as_u16())
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond(self.0.as_u16())?;
        self.1.into_response(ctx)
    }
}

impl<T: IntoResponse, E: IntoErrorResponse> IntoResponse for Result<T, E> {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        match self {
            Ok(value) => value.into_response(ctx),
            Err(error) => Err(ctx.reject(error.status().as_u16(), error.message())),
        }
    }
}

impl IntoErrorResponse for Error {
    fn status(&self) -> StatusCode {
        self.status()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn message(&self) -> String {
        Error::message(self).to_owned()
    }
}

impl IntoErrorResponse for String {
    fn message(&self) -> String {
        self.clone()
    }
}

impl IntoErrorResponse for &'static str {
    fn message(&self) -> String {
        (*self).to_owned()
    }
}

impl IntoErrorResponse for StatusCode {
    fn status(&self) -> StatusCode {
        *self
    }
    fn message(&self) -> String {
        self.canonical_reason().unwrap_or("error").to_owned()
    }
}

impl IntoErrorResponse for (StatusCode, String) {
    fn status(&self) -> StatusCode {
        self.0
    }
    fn message(&self) -> String {
        self.1.clone()
    }
}

impl IntoErrorResponse for (StatusCode, &'static str) {
    fn status(&self) -> StatusCode {
        self.0
    }
    fn message(&self) -> String {
        self.1.to_owned()
    }
}

impl IntoErrorResponse for Box<dyn std::error::Error + Send + Sync> {
    fn message(&self) -> String {
        crate::error::chain(&**self)
    }
}

/// A response built step by step: a status, headers, and one body.
///
/// ```
/// use gp_sdk::http::{Response, StatusCode};
///
/// let response = Response::new(StatusCode::CREATED)
///     .header("location", "/items/7")
///     .json(&serde_json::json!({ "id": 7 }));
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Option<ResponseBody>,
}

#[derive(Debug, Clone)]
enum ResponseBody {
    Json(std::result::Result<Vec<u8>, String>),
    Text(String),
    Bytes(Vec<u8>),
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header (see [`Context::set_header`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body: `value` as JSON. A value that does not serialise fails the call when the
    /// response is sent.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Response {
        let json = serde_json::to_vec(value).map_err(|e| e.to_string());
        self.body = Some(ResponseBody::Json(json));
        self
    }

    /// The body: text (`text/plain; charset=utf-8` unless a content type is set).
    pub fn text(mut self, text: impl Into<String>) -> Response {
        self.body = Some(ResponseBody::Text(text.into()));
        self
    }

    /// The body: bytes (`application/octet-stream` unless a content type is set).
    pub fn bytes(mut self, bytes: impl Into<Vec<u8>>) -> Response {
        self.body = Some(ResponseBody::Bytes(bytes.into()));
        self
    }
}

impl IntoResponse for Response {
    fn into_response(self, ctx: &mut Context<'_>) -> Result {
        ctx.respond(self.status.as_u16())?;
        for (name, value) in &self.headers {
            ctx.set_header(name, value);
        }
        match self.body {
            None => {}
            Some(ResponseBody::Json(Ok(json))) => {
                if !self
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    ctx.set_header("content-type", "application/json");
                }
                ctx.respond_bytes(json);
            }
            Some(ResponseBody::Json(Err(e))) => {
                return Err(Error::msg(format!("cannot send the response as JSON: {e}")))
            }
            Some(ResponseBody::Text(text)) => ctx.respond_text(text),
            Some(ResponseBody::Bytes(bytes)) => ctx.respond_bytes(bytes),
        }
        Ok(())
    }
}
