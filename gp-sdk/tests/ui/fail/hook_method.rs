use gp_sdk::{on_unload, plugin_entry, Context, Result};

struct Plugin;

impl Plugin {
    #[on_unload]
    fn close(&self, ctx: &mut Context) {
        ctx.info("close");
    }
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
