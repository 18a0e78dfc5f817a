use gp_sdk::{plugin_entry, Context};

struct MyError;

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result<(), MyError> {
    ctx.set("k", 1);
    Err(MyError)
}

fn main() {}
