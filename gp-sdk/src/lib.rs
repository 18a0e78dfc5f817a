//! Write a gp plugin.
//!
//! A plugin is a `cdylib` crate that depends on `gp-sdk` and marks one function with
//! [`#[plugin_entry]`](plugin_entry). The attribute generates everything a host needs: the
//! ABI-stable entry point (which turns errors and panics into values the host reports), and the
//! plugin's manifest, built from `Cargo.toml` and embedded in the library.
//!
//! ```no_run
//! use gp_sdk::{plugin_entry, Context, Result};
//!
//! #[plugin_entry(route(GET, "/api/hello/:name", label = "hello"))]
//! fn execute(ctx: &mut Context) -> Result {
//!     let name: String = ctx.get_as("name")?;
//!     ctx.set("greeting", format!("hello {name}"));
//!     Ok(())
//! }
//! ```
//!
//! with, in `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! gp-sdk = "0.1"
//! ```
//!
//! This crate is not for hosts (use `gp-host`), and a plugin author never needs `unsafe` or
//! abi_stable: both stay behind [`Context`] and the macro.
#![deny(missing_docs)]
// The crate's `unsafe` code is in four modules, each allowed where it is declared, each block
// with its argument: `logging` (the call's host context, reached through a thread-local
// pointer), `table` (the host's table of the call's values), `instance` (an instance's state
// behind the handle the host keeps) and `__private` (the header abi_stable's loader reads).
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[doc(hidden)]
pub mod asynchronous;
mod context;
mod error;
mod handlers;
pub mod http;
#[allow(unsafe_code)] // an instance's state, boxed behind its handle: see the module's contract
mod instance;
#[allow(unsafe_code)] // one dereference of the current call's context: see `forward`
mod logging;
pub mod schema;
#[allow(unsafe_code)] // the host's table of the call's values: see `CallTable`'s contract
mod table;
pub mod testing;

pub use context::{Context, Level};
pub use error::{Error, Result};
pub use gp_core::Value;
pub use http::Request;

/// The `tracing` crate gp-sdk forwards: `tracing::info!(...)` in a plugin, or in any of its
/// dependencies using the same `tracing` 0.1, reaches the host's log, tagged with the plugin's
/// name, as `[target] message field=value ...`. Events outside a call (on a thread the plugin
/// started) are buffered and forwarded with the next call. INFO and above by default; the host
/// process's `GP_PLUGIN_LOG` (`debug`, `trace`, `warn`, `error`, `off`) changes that.
pub use tracing;

/// The `log` crate gp-sdk forwards: `log::info!(...)` records reach the host's log like
/// [`tracing`] events.
pub use log;

/// The tokio gp-sdk runs `async fn` handlers on (with its `async` feature): the plugin's
/// futures may use its timers, and any client built on it (such as reqwest).
#[cfg(feature = "async")]
pub use tokio;

/// Marks a plugin's entry point.
///
/// It goes on one function per crate, of the form
/// `fn any_name(ctx: &mut Context) -> Result<(), E>` where `E: Display` (such as
/// [`gp_sdk::Error`](Error), `anyhow::Error` or `Box<dyn std::error::Error>`).
///
/// The plugin's name and version come from `CARGO_PKG_NAME` and `CARGO_PKG_VERSION`; its
/// description, maintainers (authors) and home (homepage, else repository) from the other
/// `Cargo.toml` fields. Arguments override them and declare HTTP routes:
///
/// ```text
/// #[plugin_entry(
///     name = "sample",                          // instead of the package name
///     description = "Greets whoever calls",
///     maintainers = ["Ann <ann@example.com>"],
///     home = "https://example.com/sample",
///     route(GET, "/api/plugin/sample/:id", label = "plugin.get"),
///     route(POST, "/api/plugin/samples", label = "plugin.post"),
/// )]
/// ```
///
/// The resulting manifest is validated at compile time with the same rules the host applies
/// to `plugin.json`; every misuse is a compile error pointing at the offending token.
///
/// Plugins must be built with `panic = "unwind"` (the default): the generated entry point
/// catches a panic and returns it to the host as an error.
pub use gp_macros::plugin_entry;

/// Makes the handlers of a module a plugin: each route and label its own typed function.
///
/// ```no_run
/// #[gp_sdk::plugin(driver = "beego")]
/// mod sample {
///     use gp_sdk::http::{Json, StatusCode};
///     use serde::{Deserialize, Serialize};
///
///     #[derive(Serialize)]
///     pub struct Greeting {
///         id: u64,
///         greeting: String,
///     }
///
///     #[derive(Deserialize)]
///     pub struct Hello {
///         name: String,
///     }
///
///     /// `GET /api/plugin/sample/7`: `id` is the route's `:id`, parsed (400 if it is not a u64).
///     #[route(GET, "/api/plugin/sample/:id", label = "plugin.get")]
///     fn get(id: u64) -> Json<Greeting> {
///         Json(Greeting { id, greeting: format!("hello, sample {id}") })
///     }
///
///     /// `POST /api/plugin/samples` with `{"name": "..."}` (400 if the body does not fit).
///     #[route(POST, "/api/plugin/samples", label = "plugin.post")]
///     fn post(Json(hello): Json<Hello>) -> (StatusCode, String) {
///         (StatusCode::CREATED, format!("hello, {}", hello.name))
///     }
///
///     /// A call with label `greet`: `name` is read from the call's values, and the result
///     /// stored as `result` (a struct's fields would each be a key).
///     #[label("greet")]
///     fn greet(name: String) -> gp_sdk::Result<String> {
///         Ok(format!("hello, {name}"))
///     }
/// }
/// ```
///
/// The attribute takes the arguments of [`plugin_entry`] (`name`, `description`,
/// `maintainers`, `home`, `driver`) but not `route(...)`: each route is declared on its handler,
/// so routes, labels and code cannot drift. It generates what `#[plugin_entry]` generates (the
/// manifest, with the handlers' routes, and the entry point), the entry point dispatching on
/// the call's label. One per crate; a crate has either it or `#[plugin_entry]`.
///
/// **Handlers.** A function of the module marked with one of:
/// - `#[route(METHOD, "/path")]`, or `#[route(METHOD, "/path", label = "...")]`: an HTTP route,
///   whose label is the function's name unless given. Its arguments are, in any order: each of
///   the route's parameters, by name (`id: u64` for `:id` or `{id}`), as any type that parses
///   from text; [`Query<T>`](http::Query), [`Json<T>`](http::Json), [`Body`](http::Body),
///   [`HeaderMap`](http::HeaderMap), [`Request`] (the request as the context holds it), or
///   `&mut Context` (everything else). A parameter or body that does not parse answers 400
///   with the reason, and the handler is not called. It returns any
///   [`IntoResponse`](http::IntoResponse): `Json<T>`, text, bytes, `()`, a status,
///   `(StatusCode, T)`, a [`Response`](http::Response), or a `Result` of those whose error is an
///   [`IntoErrorResponse`](http::IntoErrorResponse) (its status, 500 by default, and
///   `{"error": message}`).
/// - `#[label("name")]`, or `#[label]` for the function's name: a call with that label. It
///   takes at most one input, read from the call's values, and `&mut Context`; it returns a
///   serde type, written to the call's values, or a `Result` of one. A struct is one value per
///   field (its fields are the keys); any other type is the one value under `input` (taken) or
///   `result` (returned). A host calls it with `Executor::call::<In, Out>("name", &input)`.
/// - `#[fallback]`: the calls no other handler takes (no label, or another one), as a label
///   handler. Without one, such a call fails with the list of the labels there are.
///
/// The module is an inline one (`mod api { ... }`), and a module declared inside it must be
/// inline too: Rust does not give a macro the contents of a module in a file of its own
/// (`mod helpers;`). Declare such modules next to it, at the crate root, and `use super::...`.
///
/// Every misuse is a compile error at the token it concerns: a route parameter with no
/// argument of its name, an argument that is not a parameter of the route, a label taken twice,
/// two routes with the same method and path.
pub use gp_macros::plugin;

/// Marks the plugin's load hook: the host runs it once after loading the library, before the
/// first call, and refuses the plugin (or the upgrade to it) if it returns an error.
///
/// At most one per crate, of the form `fn any_name(ctx: &mut Context) -> Result<(), E>` (or
/// without the argument, or returning nothing). The context has no values; use it to log.
///
/// ```no_run
/// use gp_sdk::{on_load, on_unload, plugin_entry, Context, Result};
///
/// #[on_load]
/// fn open(ctx: &mut Context) -> Result {
///     ctx.info("connecting");
///     // Returning an error here refuses the load, with this message.
///     Ok(())
/// }
///
/// #[on_unload]
/// fn close() {
///     // Runs once this version stopped serving and its last call returned.
/// }
///
/// #[plugin_entry]
/// fn execute(ctx: &mut Context) -> Result {
///     Ok(())
/// }
/// ```
///
/// A host loads a given library once per process: if the same build is unloaded and loaded
/// again, `on_load` runs again but the library's statics keep their values.
pub use gp_macros::on_load;

/// Marks the plugin's unload hook: the host runs it once, after this version stopped serving
/// (unloaded, or upgraded to another version) and its last call returned. An error it
/// returns is logged by the host. See [`on_load`] for the form and an example.
pub use gp_macros::on_unload;

/// Returns early with an [`Error`] built from a format string.
///
/// ```
/// fn check(n: i64) -> gp_sdk::Result {
///     if n < 0 {
///         gp_sdk::bail!("n must not be negative, got {n}");
///     }
///     Ok(())
/// }
/// assert_eq!(check(-1).unwrap_err().to_string(), "n must not be negative, got -1");
/// ```
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}

#[doc(hidden)]
#[allow(unsafe_code)] // the library header's contract: see `lib_header`
pub mod __private;
