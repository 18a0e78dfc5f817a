use gp_sdk::{plugin_entry, Context};

// An alias named `Result` passes the macro's check; the compiler reports the mismatch.
type Result = std::result::Result<i32, String>;

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(0)
}

fn main() {}
