use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

mod other {
    use gp_sdk::{plugin_entry, Context, Result};

    #[plugin_entry]
    fn run(ctx: &mut Context) -> Result {
        ctx.set("k", 2);
        Ok(())
    }
}

fn main() {}
