use gp_sdk::{plugin_entry, Result};

#[plugin_entry]
fn execute() -> Result {
    Ok(())
}

fn main() {}
