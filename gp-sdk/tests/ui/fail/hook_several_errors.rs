use gp_sdk::{on_unload, plugin_entry, Context, Result};

// Every misuse is reported at once, each at its own token.
#[on_unload(when = "idle")]
unsafe fn close<T>(ctx: &Context, n: T) -> Option<T> {
    let _ = ctx;
    Some(n)
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
