use gp_sdk::{plugin_entry, Context, Result};

// The generated code's own bindings do not shadow an entry of the same name.
#[plugin_entry]
fn context(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}
