use gp_sdk::{plugin_entry, Context, Result};

// The generated code's own bindings do not shadow an entry of the same name.
#[plugin_entry]
fn ctx(context: &mut Context) -> Result {
    context.set("k", 1);
    Ok(())
}
