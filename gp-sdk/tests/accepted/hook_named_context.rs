use gp_sdk::{plugin_entry, Context};

// The generated code's own bindings do not shadow a hook of the same name, whether or not it
// takes the context.
mod with_context {
    use gp_sdk::{on_unload, Context};

    #[on_unload]
    fn context(ctx: &mut Context) {
        ctx.info("close");
    }
}

mod without_context {
    #[gp_sdk::on_load]
    fn context() -> gp_sdk::Result {
        Ok(())
    }
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
