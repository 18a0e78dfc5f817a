use gp_sdk::{plugin_entry, Context};

#[plugin_entry]
fn execute(ctx: &mut Context) {
    ctx.set("k", 1);
}

fn main() {}
