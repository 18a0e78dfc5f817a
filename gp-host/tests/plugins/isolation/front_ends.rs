//! Isolation behind the front ends: `gp call --isolate` reports a crash and passes a plugin's
//! output through, and a crashed HTTP request gets 502 while the next one is served.

use gp_host::Manager;

use super::{isolation, unruly};
use crate::harness::base_dir;

#[test]
fn gp_call_isolate_reports_a_crash_and_exits_1() {
    let base = base_dir();
    gp_host::build::install_library(unruly(), base.path()).unwrap();
    let run = |label: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
            .args(["call", "--isolate", "--label", label])
            .arg(base.path())
            .arg("unruly")
            .env_remove("GP_LOG")
            .output()
            .unwrap()
    };
    let output = run("segv");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: plugin `unruly` crashed: its runner process killed by signal 11 (SIGSEGV); the next call starts a new one\n"
    );
    let output = run("");
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["n"], 1);
}

#[test]
fn a_crashed_request_gets_502_and_the_next_one_is_served() {
    use crate::http::{get, Running};
    let base = base_dir();
    gp_host::build::install_library(unruly(), base.path()).unwrap();
    let manager = Manager::builder(base.path()).isolation(isolation()).build();
    let server = gp_host::http::PluginServer::builder(manager.clone()).build();
    assert!(manager.load_plugins().failed.is_empty());
    let running = Running::start(&server);
    assert_eq!(get(running.addr, "/unruly/ok").status, 204);
    let reply = get(running.addr, "/unruly/segv");
    assert_eq!(reply.status, 502);
    assert_eq!(
        reply.error_body(),
        serde_json::json!({
            "error": "the plugin crashed (it runs isolated: the next request starts it again); the host log has the cause",
            "plugin": "unruly",
            "label": "segv",
        })
    );
    assert_eq!(get(running.addr, "/unruly/ok").status, 204);
}

#[test]
fn a_megabyte_on_stdout_reaches_the_host_stdout_and_the_result_its_file() {
    let base = base_dir();
    gp_host::build::install_library(unruly(), base.path()).unwrap();
    let result = base.path().join("result.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(["call", "--isolate", "--label", "stdout", "-o"])
        .arg(&result)
        .arg(base.path())
        .arg("unruly")
        .env_remove("GP_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, vec![b'o'; 1 << 20]);
    let printed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(printed["n"], 1);
}
