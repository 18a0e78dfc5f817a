use gp_sdk::plugin_entry;

#[plugin_entry]
struct Plugin;

fn main() {}
