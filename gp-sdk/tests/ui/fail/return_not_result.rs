use gp_sdk::{plugin_entry, Context};

#[plugin_entry]
fn execute(ctx: &mut Context) -> i32 {
    ctx.set("k", 1);
    0
}

fn main() {}
