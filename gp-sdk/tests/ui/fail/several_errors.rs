use gp_sdk::{plugin_entry, Context};

// Every misuse is reported at once, each at its own token.
#[plugin_entry(name = "my plugin", route(get, "/a", label = "a"), colour = "blue")]
async fn execute(ctx: &Context) -> i32 {
    let _ = ctx;
    0
}

fn main() {}
