use gp_sdk::{plugin_entry, Context};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result<(), String> {
    let n = ctx.get_i64("n").ok_or("`n` is not set")?;
    ctx.set("double", n * 2);
    Ok(())
}
