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
    if n == 13 {
        panic!("unlucky {n}");
    }
    if n == 21 {
        // Caught by the plugin itself: the host never hears of it.
        let caught = std::panic::catch_unwind(|| panic!("caught inside"));
        assert!(caught.is_err());
    }
    Ok(())
}
"#;

#[test]
fn tracing_events_and_log_records_reach_the_host_tagged_with_the_plugin() {
    // Through the host's services (gp-core 0.1.2 on).
    chatty("chatty", Interface::Real);
}

#[test]
fn a_plugin_built_before_host_services_still_forwards_its_logs_and_panics() {
    // A plugin built against gp-core 0.1.1 keeps the call's context in a thread-local of its
    // own; the same logs arrive, the same way.
    chatty("chatty-before-services", Interface::WithoutHostServices);
}

fn chatty(name: &str, interface: Interface) {
    let library = custom_fixture(name, "1.0.0", CHATTY, interface);
    let base = base_dir();
    install_library(library, base.path()).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let executor = manager.executor(name).unwrap();

    let mut ctx = Context::new();
    ctx.set("n", 7);
    let (outcome, log) = with_captured_log(|| executor.execute(&mut ctx));
    outcome.unwrap();
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    // The events' target is the crate's module path.
    let target = name.replace('-', "_");
    let expected = [
        format!(r#"INFO gp::plugin: [{target}] handling call 7 plugin="{name}""#),
        format!(r#"WARN gp::plugin: [{target}] disk almost full: 93% plugin="{name}""#),
        format!(
            r#"INFO gp::plugin: [{target}::my_dep] connected host="db.local" port=5432 plugin="{name}""#
        ),
        format!(r#"INFO gp::plugin: through the context plugin="{name}""#),
        // Logged on the plugin's own thread (no call there): buffered, then forwarded
        // when the call that was running returns.
        format!(r#"ERROR gp::plugin: [chatty::worker] outside the call plugin="{name}""#),
    ];
    assert_eq!(lines, expected, "{log}");

    // A panic the plugin catches itself is its own business: the call succeeds, nothing is
    // logged, and it leaves nothing behind for the next panic (it used to make that one look
    // like a panic while panicking, and lose its place).
    ctx.set("n", 21);
    let (outcome, log) = with_captured_log(|| executor.execute(&mut ctx));
    outcome.unwrap();
    assert!(!log.contains("panic"), "{log}");

    // A panic in the call: its message and place come back as the call's error (the panic
    // hook knew the thread was in a call), and the plugin keeps serving.
    ctx.set("n", 13);
    let (outcome, log) = with_captured_log(|| executor.execute(&mut ctx));
    let error = outcome.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "plugin `{name}` panicked: unlucky 13 (at src/lib.rs:"
        )),
        "{error}"
    );
    let logged = log
        .lines()
        .find(|l| l.contains("plugin panicked"))
        .unwrap_or_else(|| panic!("the host logs the panic: {log}"));
    assert!(
        logged.contains("ERROR gp::plugin: plugin panicked: unlucky 13 (at src/lib.rs:")
            && logged.trim().ends_with(&format!("plugin={name}")),
        "{log}"
    );
    ctx.set("n", 1);
    assert!(executor.execute(&mut ctx).is_ok());
}
