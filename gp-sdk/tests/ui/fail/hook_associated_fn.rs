use gp_sdk::{on_load, plugin_entry, Context, Result};

struct Plugin;

impl Plugin {
    #[on_load]
    fn open(ctx: &mut Context) -> Result {
        ctx.info("open");
        Ok(())
    }
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
