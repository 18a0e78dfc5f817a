use gp_sdk::{plugin_entry, Context, Result};

struct Plugin;

impl Plugin {
    #[plugin_entry]
    fn execute(ctx: &mut Context) -> Result {
        ctx.set("k", 1);
        Ok(())
    }
}

fn main() {}
