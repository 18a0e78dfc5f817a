use gp_sdk::{on_load, on_unload, plugin_entry, Context, Result};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs once when a host loads this version; an error here would refuse the load.
#[on_load]
fn start(ctx: &mut Context) -> Result {
    ctx.info(format!("greeter {VERSION} ready"));
    Ok(())
}

/// Runs once this version stopped serving and its last call returned.
#[on_unload]
fn stop(ctx: &mut Context) {
    ctx.info(format!("greeter {VERSION} stopped"));
}

#[plugin_entry(name = "greeter")]
fn greet(ctx: &mut Context) -> Result {
    let name = ctx.get_str("name").unwrap_or("world").to_owned();
    ctx.set("greeting", format!("hello {name}, from greeter {VERSION}"));
    ctx.set("version", VERSION);
    Ok(())
}
