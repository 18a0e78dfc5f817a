//! What an in-process host does when a plugin misbehaves beyond an error: the faults it
//! survives (a panic whose payload panics when dropped, a 10 MB error message) and those it
//! cannot (a segfault, an abort, `exit`, a stack overflow, a double panic, a crash while
//! loading), which must at least name the plugin. The fatal ones run in a `gp` child process
//! so the suite survives them.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

use gp_host::{Context, Error, Manager};

use crate::cli::gp;
use crate::harness::{base_dir, custom_fixture, Interface};

const CRASHY: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("second panic, in a Drop while unwinding");
    }
}

struct PayloadPanicsOnDrop;

impl Drop for PayloadPanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's own Drop panicked");
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = [n; 64];
    std::hint::black_box(&frame);
    if n == 0 { 0 } else { recurse(n - 1).wrapping_add(frame[1]) }
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    match ctx.label().unwrap_or_default() {
        // SAFETY: none; the point is the crash.
        "segv" => unsafe { std::ptr::null_mut::<u8>().write_volatile(1) },
        "abort" => std::process::abort(),
        "exit" => std::process::exit(3),
        "overflow" => {
            std::hint::black_box(recurse(u64::MAX));
        }
        "double-panic" => {
            let _guard = PanicsOnDrop;
            panic!("first panic");
        }
        "payload-drop-panics" => std::panic::panic_any(PayloadPanicsOnDrop),
        "long-error" => return Err(gp_sdk::Error::msg("x".repeat(10 << 20))),
        _ => {}
    }
    ctx.set("survived", true);
    Ok(())
}
"#;

const CRASH_ON_LOAD: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

extern "C" fn crash() {
    // SAFETY: none; the point is the crash, inside dlopen.
    unsafe { std::ptr::null_mut::<u8>().write_volatile(1) }
}

#[used]
#[link_section = ".init_array"]
static CRASH_WHEN_LOADED: extern "C" fn() = crash;

#[plugin_entry]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

/// A base dir holding `library` as a plugin folder.
fn installed(library: &Path) -> tempfile::TempDir {
    let base = base_dir();
    gp_host::build::install_library(library, base.path()).unwrap();
    base
}

/// A plugin whose library crashes in its start-up code, inside `dlopen`.
pub fn crash_on_load() -> &'static Path {
    custom_fixture("crash-on-load", "1.0.0", CRASH_ON_LOAD, Interface::Real)
}

fn crashy() -> &'static Path {
    custom_fixture("crashy", "1.0.0", CRASHY, Interface::Real)
}

#[test]
fn survivable_faults_cost_one_call_and_are_bounded() {
    let base = installed(crashy());
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().failed.is_empty());
    let executor = manager.executor("crashy").unwrap();
    // A panic whose payload panics when dropped: caught, dropped under a guard.
    let error = executor
        .execute(&mut Context::new().with_label("payload-drop-panics"))
        .unwrap_err();
    assert!(
        matches!(&error, Error::Panicked { message, .. } if message.starts_with("a panic with a non-string payload (at src/lib.rs:")),
        "{error}"
    );
    // A 10 MB message keeps its start and says how much was cut.
    let error = executor
        .execute(&mut Context::new().with_label("long-error"))
        .unwrap_err();
    let Error::Failed { message, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(
        message.len(),
        16 * 1024 + "… (10469376 more bytes cut)".len()
    );
    assert!(message.ends_with("xxx… (10469376 more bytes cut)"));
    // And the plugin keeps serving.
    let mut ctx = Context::new();
    executor.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("survived").and_then(|v| v.as_bool()), Some(true));
}

/// Runs `gp call BASE crashy --label LABEL` in a child process.
fn crash(base: &Path, label: &str) -> (Output, String) {
    let output = gp(&[&"call", &base, &"crashy", &"--label", &label]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

const NAMED: &str = "while plugin `crashy` was running (a call or a hook); an in-process host cannot survive this\n";

#[test]
fn a_segfault_an_abort_and_a_stack_overflow_name_the_plugin() {
    let base = installed(crashy());
    let (output, stderr) = crash(base.path(), "segv");
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "gp: fatal signal SIGSEGV (invalid memory access) {NAMED}"
        )),
        "{stderr}"
    );
    let (output, stderr) = crash(base.path(), "abort");
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains(&format!("gp: fatal signal SIGABRT (abort: a double panic, a failed assertion in C code, or abort()) {NAMED}")),
        "{stderr}"
    );
    // std reports the overflow itself (on its alternate stack), after our line.
    let (output, stderr) = crash(base.path(), "overflow");
    assert!(output.status.signal().is_some(), "{stderr}");
    assert!(stderr.contains(NAMED), "{stderr}");
    assert!(stderr.contains("has overflowed its stack"), "{stderr}");
}

#[test]
fn exit_and_a_double_panic_name_the_plugin_and_keep_both_panic_messages() {
    let base = installed(crashy());
    let (output, stderr) = crash(base.path(), "exit");
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("gp: plugin `crashy` ended the process: it called exit() during a call (the exit status is the plugin's)\n"),
        "{stderr}"
    );
    let (output, stderr) = crash(base.path(), "double-panic");
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("gp: plugin `crashy` panicked while panicking, which aborts the process: first \"first panic\" at src/lib.rs:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(", then \"second panic, in a Drop while unwinding\" at src/lib.rs:"),
        "{stderr}"
    );
    assert!(stderr.contains(NAMED), "{stderr}");
}

#[test]
fn a_crash_while_loading_names_the_plugin_folder() {
    let base = installed(crash_on_load());
    // Without the pre-flight (isolation/loading.rs shows what it does with this library).
    let output = gp(&[&"list", &"--no-preflight", &base.path()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "gp: fatal signal SIGSEGV (invalid memory access) while loading the plugin at {} (its library's start-up code or on_load); an in-process host cannot survive this\n",
            base.path().join("crash-on-load").display()
        )),
        "{stderr}"
    );
}

const SLOW_START: &str = r#"use gp_sdk::{on_load, plugin_entry, Context, Result};

#[on_load]
fn slow_start() {
    std::thread::sleep(std::time::Duration::from_secs(2));
}

#[plugin_entry]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

#[test]
fn a_hook_past_its_timeout_is_abandoned_and_its_build_quarantined_until_it_returns() {
    let library = custom_fixture("slow-start", "1.0.0", SLOW_START, Interface::Real);
    let base = installed(library);
    let folder = base.path().join("slow-start");
    let manager = Manager::builder(base.path())
        .hook_timeout(std::time::Duration::from_millis(200))
        .build();
    let started = std::time::Instant::now();
    let error = manager.load_plugin(&folder).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the load waited for the hook"
    );
    assert_eq!(
        error.to_string(),
        "plugin `slow-start` 1.0.0: its on_load hook did not return within 200ms: it was abandoned (still running on its own thread), and this build is refused until it returns or the process restarts"
    );
    let again = manager.load_plugin(&folder).unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("plugin `slow-start` ({}): this build is quarantined: its on_load ran past its timeout and has not returned yet; it can be loaded again once that hook returns, or after a restart", folder.display())
    );
    // Once the abandoned hook returns, the build may load again (with a patient manager).
    let patient = Manager::new(base.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let loaded = loop {
        match patient.load_plugin(&folder) {
            Err(Error::Quarantined { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other,
        }
    };
    assert!(loaded.is_ok(), "{loaded:?}");
}

const SPAWNS_A_THREAD: &str = r#"use std::io::Write;

use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    let path = ctx.get_str("file").unwrap_or_default().to_owned();
    std::thread::spawn(move || {
        for i in 0..300 {
            // Quietly stops once the test's directory is gone.
            let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else {
                return;
            };
            let _ = writeln!(file, "{i}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
    Ok(())
}
"#;

#[test]
fn a_thread_a_plugin_started_outlives_its_unload_and_the_report_claims_calls_only() {
    let library = custom_fixture("spawns-a-thread", "1.0.0", SPAWNS_A_THREAD, Interface::Real);
    let base = installed(library);
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().failed.is_empty());
    let file = base.path().join("written");
    let mut ctx = Context::new();
    ctx.set("file", file.display().to_string());
    manager
        .executor("spawns-a-thread")
        .unwrap()
        .execute(&mut ctx)
        .unwrap();
    let report = manager.unload("spawns-a-thread").unwrap();
    // The report counts calls: the plugin's own thread is not one, and is not tracked.
    assert_eq!(report.still_running, 0);
    let lines = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let at_unload = lines();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while lines() <= at_unload + 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        lines() > at_unload + 5,
        "the thread kept writing after the unload"
    );
}
