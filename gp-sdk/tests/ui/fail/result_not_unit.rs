use gp_sdk::{plugin_entry, Context, Error};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result<i32, Error> {
    ctx.set("k", 1);
    Ok(0)
}

fn main() {}
