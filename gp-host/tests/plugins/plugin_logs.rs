//! A plugin's own `tracing` events and `log` records (its dependencies' too) reach the host's
//! log, tagged with the plugin's name, through the call's context.

use gp_host::build::install_library;
use gp_host::{Context, Manager};

use crate::harness::{base_dir, custom_fixture, with_captured_log, Interface};

/// Logs through the `tracing` and `log` gp-sdk re-exports (the same copies a dependency of the
/// plugin using `tracing` 0.1 or `log` 0.4 gets), from the entry, from a module standing for a
/// dependency, and from a thread the plugin starts.
const CHATTY: &str = r#"use gp_sdk::{plugin_entry, Context, Result};
use gp_sdk::{log, tracing};

/// Stands for a dependency: its events carry its own module path as their target.
mod my_dep {
    pub fn connect(host: &str, port: u16) {
        gp_sdk::tracing::info!(host, port, "connected");
        gp_sdk::tracing::debug!("not forwarded: below the default level");
    }
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    let n = ctx.get_i64("n").unwrap_or(0);
    tracing::info!("handling call {n}");
    log::warn!("disk almost full: {}%", 93);
    log::debug!("not forwarded either");
    my_dep::connect("db.local", 5432);
    std::thread::spawn(|| tracing::error!(target: "chatty::worker", "outside the call"))
        .join()
        .unwrap();
    ctx.info("through the context");
    Ok(())
}
"#;

#[test]
fn tracing_events_and_log_records_reach_the_host_tagged_with_the_plugin() {
    let library = custom_fixture("chatty", "1.0.0", CHATTY, Interface::Real);
    let base = base_dir();
    install_library(library, base.path()).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let executor = manager.executor("chatty").unwrap();

    let mut ctx = Context::new();
    ctx.set("n", 7);
    let (outcome, log) = with_captured_log(|| executor.execute(&mut ctx));
    outcome.unwrap();
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            r#"INFO gp::plugin: [chatty] handling call 7 plugin="chatty""#,
            r#"WARN gp::plugin: [chatty] disk almost full: 93% plugin="chatty""#,
            r#"INFO gp::plugin: [chatty::my_dep] connected host="db.local" port=5432 plugin="chatty""#,
            r#"INFO gp::plugin: through the context plugin="chatty""#,
            // Logged on the plugin's own thread (no call there): buffered, then forwarded
            // when the call that was running returns.
            r#"ERROR gp::plugin: [chatty::worker] outside the call plugin="chatty""#,
        ],
        "{log}"
    );
}
