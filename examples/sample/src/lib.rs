//! The seed's sample plugin, in Rust.
//!
//! The seed's host stores `&Hello{"hello go-plugin"}` under the key `sample` and calls the
//! plugin; this plugin reads it back as a typed value and answers with a greeting.

use gp_sdk::{plugin_entry, Context, Result};
use serde::Deserialize;

/// What the host stores under `sample`.
#[derive(Deserialize)]
struct Hello {
    name: String,
}

#[plugin_entry(
    route(GET, "/api/plugin/sample/:id", label = "plugin.get"),
    route(POST, "/api/plugin/samples", label = "plugin.post")
)]
fn execute(ctx: &mut Context) -> Result {
    let hello: Hello = ctx.get_as("sample")?;
    ctx.info(format!("sample got {:?}", hello.name));
    ctx.set("greeting", format!("sample plugin says: {}", hello.name));
    Ok(())
}
