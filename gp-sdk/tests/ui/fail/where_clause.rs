use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute<'a>(ctx: &mut Context<'a>) -> Result
where
    'a: 'static,
{
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
