use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute<T: Default>(ctx: &mut Context) -> Result {
    let _ = T::default();
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
