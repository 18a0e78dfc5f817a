//! What the dispatch `#[plugin] mod` generates calls: each handler's arguments read, its result
//! turned into the response or the call's values, and the answer to a label no handler has.
//!
//! Each is a generic function rather than inline code, so a type that does not fit is reported
//! once, at the author's argument or return type, with the message its trait carries.

use std::fmt::Display;

use gp_core::typed::{self, Values, INPUT_KEY, RESULT_KEY};
use gp_core::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::http::{FromRequest, IntoResponse, PathParam};
use crate::{Context, Error, Result};

impl Values for Context<'_> {
    fn value(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
    fn keys(&self) -> Vec<String> {
        Context::keys(self)
    }
}

/// A route handler's path parameter `name`.
#[inline]
pub fn path_param<T: PathParam>(ctx: &mut Context<'_>, name: &str) -> Result<T> {
    crate::http::path_param(ctx, name)
}

/// A route handler's argument read from the request.
#[inline]
pub fn extract<T: FromRequest>(ctx: &mut Context<'_>) -> Result<T> {
    T::from_request(ctx)
}

/// A route handler's return value, as the response.
#[inline]
pub fn respond<T: IntoResponse>(value: T, ctx: &mut Context<'_>) -> Result {
    value.into_response(ctx)
}

/// A label handler's input, read from the call's values (see [`gp_core::typed`]).
pub fn label_input<T: DeserializeOwned>(ctx: &mut Context<'_>) -> Result<T> {
    typed::from_values(&*ctx, INPUT_KEY).map_err(|e| {
        Error::msg(format!(
            "the call's values do not fit {}: {e}",
            crate::http::short_type_name::<T>()
        ))
    })
}

/// A label handler's output, written to the call's values (see [`gp_core::typed`]).
pub fn label_value<T: Serialize>(value: T, ctx: &mut Context<'_>) -> Result {
    let values = typed::to_values(&value, RESULT_KEY).map_err(|e| {
        Error::msg(format!(
            "cannot store the result ({}) in the call's values: {e}",
            crate::http::short_type_name::<T>()
        ))
    })?;
    for (key, value) in values {
        ctx.set(&key, value);
    }
    Ok(())
}

/// A label handler's `Result`: its value written as [`label_value`] does, its error the call's.
pub fn label_result<T: Serialize, E: Display>(
    result: std::result::Result<T, E>,
    ctx: &mut Context<'_>,
) -> Result {
    match result {
        Ok(value) => label_value(value, ctx),
        Err(error) => Err(Error::msg(error)),
    }
}

/// A label handler's `Result<(), E>`: nothing to write, its error the call's.
#[inline]
pub fn label_done<E: Display>(result: std::result::Result<(), E>, _: &mut Context<'_>) -> Result {
    result.map_err(Error::msg)
}

/// An instance's configuration (the JSON text the host passed `open`) as the type the
/// plugin's `#[on_load]` takes; an error names the field and what it expected.
pub fn config<T: DeserializeOwned>(text: &str) -> std::result::Result<T, OpenError> {
    let name = crate::http::short_type_name::<T>();
    let refused = |message: String| OpenError {
        config: true,
        message,
    };
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        refused(format!(
            "the host passed a configuration that is not JSON: {e}"
        ))
    })?;
    let none = json.is_null();
    serde_path_to_error::deserialize::<_, T>(json).map_err(|e| {
        if none {
            return refused(format!("the plugin takes a configuration ({name}) and was given none: write it in config.json beside its plugin.json"));
        }
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { format!("`{path}`: ") };
        refused(format!("it does not fit {name}: {field}{}", e.inner()))
    })
}

/// What a fallible `#[on_load]` returned, its error as the load's.
#[inline]
pub fn opened<T, E: Display>(
    result: std::result::Result<T, E>,
) -> std::result::Result<T, OpenError> {
    result.map_err(|error| OpenError {
        config: false,
        message: format!("{error:#}"),
    })
}

/// Why an instance's `open` failed: its configuration, or the author's `#[on_load]`.
pub struct OpenError {
    /// Whether the configuration did not fit (the host then names its file).
    pub config: bool,
    /// What went wrong.
    pub message: String,
}

/// The error for a call whose label no handler takes; `known` lists the labels that are.
#[cold]
pub fn unknown_label(label: Option<&str>, known: &str) -> Result {
    Err(Error::msg(match label {
        Some(label) => format!("label `{label}` is not one of this plugin's: {known}"),
        None => format!("the call has no label: call with one of this plugin's labels, {known}"),
    }))
}
