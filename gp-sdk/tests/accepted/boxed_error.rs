use gp_sdk::{plugin_entry, Context};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result<(), Box<dyn std::error::Error>> {
    let n: i64 = "42".parse()?;
    ctx.set("n", n);
    Ok(())
}
