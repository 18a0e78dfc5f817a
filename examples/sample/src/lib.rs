//! The seed's sample plugin, in Rust.
//!
//! Called directly, as the seed's host does: the host stores `&Hello{"hello go-plugin"}` under
//! the key `sample`; the plugin reads it back as a typed value and answers with a greeting.
//!
//! Served over HTTP: it declares the seed's two routes with the seed's driver (`beego`), so
//! `GET /api/plugin/sample/:id` and `POST /api/plugin/samples` reach it with the route's
//! label, and it answers with JSON.

use gp_sdk::{plugin_entry, Context, Result};
use serde::{Deserialize, Serialize};

/// What the host stores under `sample`, and what `POST /api/plugin/samples` sends.
#[derive(Deserialize, Serialize)]
struct Hello {
    name: String,
}

#[plugin_entry(
    driver = "beego",
    route(GET, "/api/plugin/sample/:id", label = "plugin.get"),
    route(POST, "/api/plugin/samples", label = "plugin.post")
)]
fn execute(ctx: &mut Context) -> Result {
    match ctx.label() {
        Some("plugin.get") => {
            let id = ctx.request()?.param("id").unwrap_or_default().to_owned();
            ctx.respond_json(&serde_json::json!({
                "id": id,
                "greeting": format!("sample plugin says: hello, sample {id}"),
            }))
        }
        Some("plugin.post") => {
            let hello: Hello = ctx.request_json()?;
            ctx.respond(201)?;
            ctx.respond_json(&serde_json::json!({
                "greeting": format!("sample plugin says: {}", hello.name),
            }))
        }
        Some(other) => gp_sdk::bail!(
            "label `{other}` is not one of sample's: plugin.get and plugin.post (its HTTP routes), or no label for a direct call"
        ),
        None => {
            let hello: Hello = ctx.get_as("sample")?;
            ctx.info(format!("sample got {:?}", hello.name));
            ctx.set("greeting", format!("sample plugin says: {}", hello.name));
            Ok(())
        }
    }
}
