use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(driver = "beego")]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}

fn main() {}
