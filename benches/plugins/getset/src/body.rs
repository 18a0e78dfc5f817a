/// Reads the integer `n` and stores `n + 1`: one get and one set through the context.
///
/// This file is the body of the `bench-getset` plugin; the `call` benchmark compiles the same
/// file into the bench binary (`#[path]`) to measure it without a plugin boundary.
pub fn getset(ctx: &mut gp_sdk::Context<'_>) -> gp_sdk::Result {
    let Some(n) = ctx.get_i64("n") else {
        gp_sdk::bail!("`n` is not an integer");
    };
    ctx.set("n", n + 1);
    Ok(())
}
