//! Isolated plugins: each misbehaviour that takes an in-process host down (faults.rs) costs
//! one call here, with the cause in the error, and the next call is served by a new runner.
//! Unload and drop leave no runner process behind. The runner is the test build's `gp`.
//!
//! This file holds what the tests share: the `unruly` plugin, which misbehaves in every way
//! its call's label asks for, and the isolation, loading and calling around it.

mod batches;
mod crashes;
mod front_ends;
mod limits;
mod loading;
mod runners;

use std::path::Path;
use std::time::Duration;

use gp_host::isolation::Isolation;
use gp_host::{Context, Error, Executor, Manager};

use crate::harness::{base_dir, custom_fixture, Interface};

const UNRULY: &str = r#"use std::io::Write;

use gp_sdk::{plugin_entry, Context, Result};

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("second panic, in a Drop while unwinding");
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = [n; 64];
    std::hint::black_box(&frame);
    if n == 0 { 0 } else { recurse(n - 1).wrapping_add(frame[1]) }
}

#[plugin_entry(
    route(GET, "/unruly/ok", label = "ok"),
    route(GET, "/unruly/segv", label = "segv"),
    route(GET, "/unruly/overlap", label = "overlap"),
)]
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
        "alloc" => {
            let big: Vec<u8> = Vec::with_capacity(8 << 30);
            std::hint::black_box(&big);
        }
        "spin" => loop {
            std::hint::spin_loop();
        },
        "thread" => {
            let path = ctx.get_str("file").unwrap_or_default().to_owned();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else {
                        return;
                    };
                    let _ = writeln!(file, "{i}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            });
        }
        "fail" => return Err(gp_sdk::Error::msg("x".repeat(10 << 20))),
        "stdout" => print!("{}", "o".repeat(1 << 20)),
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(5)),
        "wait-for-cancel" => {
            while !ctx.is_cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            return Err(gp_sdk::Error::msg("stopped, as asked"));
        }
        "child-then-abort" => {
            // A process that inherits stderr and outlives the runner, unless the host ends it.
            let child = std::process::Command::new("sleep").arg("30.0417").spawn().unwrap();
            ctx.set("child", child.id() as i64);
            std::process::abort();
        }
        "overlap" => {
            use std::sync::atomic::{AtomicI64, Ordering};
            static NOW: AtomicI64 = AtomicI64::new(0);
            static MOST: AtomicI64 = AtomicI64::new(0);
            let now = NOW.fetch_add(1, Ordering::SeqCst) + 1;
            MOST.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(300));
            NOW.fetch_sub(1, Ordering::SeqCst);
            ctx.set("most", MOST.load(Ordering::SeqCst));
            if ctx.request().is_ok() {
                return ctx.respond_json(&MOST.load(Ordering::SeqCst));
            }
        }
        "panic" => panic!("an ordinary panic"),
        "edit" => {
            ctx.remove("gone");
            ctx.set("added", "new");
            ctx.remove("never-set");
        }
        _ => {}
    }
    ctx.set("pid", std::process::id() as i64);
    let n = ctx.get_i64("n").unwrap_or(0);
    ctx.set("n", n + 1);
    Ok(())
}
"#;

fn unruly() -> &'static Path {
    custom_fixture("unruly", "1.0.0", UNRULY, Interface::Real)
}

/// Isolation of every plugin, with the test build's `gp` as the runner.
fn isolation() -> Isolation {
    Isolation {
        backoff: Duration::from_millis(10),
        max_crashes: 100,
        ..Isolation::all().program(env!("CARGO_BIN_EXE_gp"))
    }
}

fn loaded(libraries: &[&Path], isolation: Isolation) -> (tempfile::TempDir, Manager) {
    let base = base_dir();
    for library in libraries {
        gp_host::build::install_library(library, base.path()).unwrap();
    }
    let manager = Manager::builder(base.path()).isolation(isolation).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report:?}");
    (base, manager)
}

fn call(executor: &Executor, label: &str) -> Result<Context, Error> {
    let mut ctx = Context::new().with_label(label);
    ctx.set("n", 41);
    executor.execute(&mut ctx).map(|()| ctx)
}

/// A call that works, served by a runner (not this process): the runner's pid.
fn served(executor: &Executor) -> i64 {
    let ctx = call(executor, "").unwrap();
    assert_eq!(ctx.get("n").and_then(|v| v.as_i64()), Some(42));
    let pid = ctx.get("pid").and_then(|v| v.as_i64()).unwrap();
    assert_ne!(pid, std::process::id() as i64, "the call ran in the host");
    assert_eq!(
        executor.isolation().map(|s| s.runner_pid),
        Some(Some(pid as u32))
    );
    pid
}

/// Whether process `pid` exists, a zombie included: a runner the host did not reap counts.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
