//! Isolated plugins: each misbehaviour that takes an in-process host down (faults.rs) costs
//! one call here, with the cause in the error, and the next call is served by a new runner.
//! Unload and drop leave no runner process behind. The runner is the test build's `gp`.

use std::path::Path;
use std::time::{Duration, Instant};

use gp_host::isolation::Isolation;
use gp_host::{Context, Error, Executor, Manager};

use crate::harness::{base_dir, custom_fixture, example, Interface};

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
        }
        "panic" => panic!("an ordinary panic"),
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

#[test]
fn each_crash_costs_one_call_with_its_cause_and_the_next_call_gets_a_new_runner() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let mut pid = served(&executor);
    for (label, status) in [
        ("segv", "killed by signal 11 (SIGSEGV)"),
        ("abort", "killed by signal 6 (SIGABRT)"),
        ("exit", "exited with status 3"),
        ("overflow", "killed by signal 6 (SIGABRT)"),
        ("double-panic", "killed by signal 6 (SIGABRT)"),
    ] {
        let error = call(&executor, label).unwrap_err();
        let Error::Crashed {
            plugin,
            status: seen,
            stderr,
        } = &error
        else {
            panic!("{label}: {error}");
        };
        assert_eq!(
            (plugin.as_str(), seen.as_str()),
            ("unruly", status),
            "{label}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "plugin `unruly` crashed: its runner process {status}; the next call starts a new one"
            )),
            "{label}: {error}"
        );
        match label {
            "overflow" => assert!(stderr.contains("has overflowed its stack"), "{stderr}"),
            "double-panic" => assert!(
                stderr.contains("gp: plugin `unruly` panicked while panicking, which aborts the process: first \"first panic\""),
                "{stderr}"
            ),
            _ => {}
        }
        assert!(
            !alive(pid as u32),
            "{label}: the crashed runner {pid} is gone"
        );
        assert_eq!(
            executor.isolation().map(|s| s.runner_pid),
            Some(None),
            "no runner until the next call"
        );
        let next = served(&executor);
        assert_ne!(next, pid, "{label}: a new runner");
        pid = next;
    }
    // Errors and panics are not crashes: the same runner answers them.
    let error = call(&executor, "panic").unwrap_err();
    let (line, column) = UNRULY
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("panic!(\"an ordinary").map(|c| (i + 1, c + 1)))
        .unwrap();
    assert_eq!(
        error.to_string(),
        format!("plugin `unruly` panicked: an ordinary panic (at src/lib.rs:{line}:{column})")
    );
    let error = call(&executor, "fail").unwrap_err();
    let Error::Failed { message, .. } = &error else {
        panic!("{error}");
    };
    assert!(
        message.ends_with("xxx… (10469376 more bytes cut)"),
        "{}",
        message.len()
    );
    assert_eq!(served(&executor), pid);
    let status = executor.isolation().unwrap();
    assert_eq!(
        (status.restarts, status.crashes, status.circuit_open),
        (5, 5, false)
    );
    drop(executor);
    drop(manager);
    assert!(!alive(pid as u32), "dropping the manager ends its runners");
}

#[test]
fn a_call_that_ignores_its_deadline_is_stopped_by_killing_its_runner() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            grace: Duration::from_millis(300),
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    let pid = served(&executor);
    let started = Instant::now();
    let mut ctx = Context::new()
        .with_label("spin")
        .with_timeout(Duration::from_millis(200));
    let error = executor.execute(&mut ctx).unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to plugin `unruly` passed its deadline"
    );
    // Not before the deadline plus the grace period (and not forever).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!alive(pid as u32));
    assert_ne!(served(&executor), pid);
}

#[test]
fn memory_and_cpu_limits_end_the_call_not_the_host() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            memory_limit: Some(1 << 30),
            cpu_per_call: Some(Duration::from_secs(1)),
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    served(&executor);
    let error = call(&executor, "alloc").unwrap_err();
    let Error::Crashed { status, stderr, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(status, "killed by signal 6 (SIGABRT)");
    assert!(
        stderr.contains("memory allocation of 8589934592 bytes failed"),
        "{stderr}"
    );
    served(&executor);
    // No deadline: the CPU limit stops it (after 1 to 2 s of CPU time).
    let error = call(&executor, "spin").unwrap_err();
    let Error::Crashed { status, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(status, "killed by signal 24 (SIGXCPU)");
    served(&executor);
}

#[test]
fn unload_ends_the_runner_and_every_thread_the_plugin_started() {
    let (base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let file = base.path().join("written");
    let mut ctx = Context::new().with_label("thread");
    ctx.set("file", file.display().to_string());
    executor.execute(&mut ctx).unwrap();
    let pid = ctx.get("pid").and_then(|v| v.as_i64()).unwrap() as u32;
    let lines = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lines() >= 3, "the plugin's thread writes");
    manager.unload("unruly").unwrap();
    assert!(!alive(pid), "the runner {pid} is gone after unload");
    let after = lines();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        lines(),
        after,
        "the plugin's thread stopped with its runner"
    );
}

#[test]
fn the_breaker_opens_after_repeated_crashes_until_the_plugin_is_loaded_again() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            max_crashes: 2,
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    for _ in 0..2 {
        assert!(matches!(
            call(&executor, "abort"),
            Err(Error::Crashed { .. })
        ));
    }
    let error = call(&executor, "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `unruly` is failed: its runner crashed 2 times within 60s; load it again (unload and load, or upgrade) once it is fixed"
    );
    assert!(executor.isolation().unwrap().circuit_open);
    manager.unload("unruly").unwrap();
    assert!(manager.load_plugins().failed.is_empty());
    served(&manager.executor("unruly").unwrap());
}

#[test]
fn a_crash_while_loading_refuses_that_plugin_only() {
    let crashes = crate::faults::crash_on_load();
    let base = base_dir();
    gp_host::build::install_library(crashes, base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path()).isolation(isolation()).build();
    let report = manager.load_plugins();
    assert_eq!(report.loaded.len(), 1, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let error = report.failed[0].error.to_string();
    assert_eq!(
        error,
        "plugin `crash-on-load`: its runner died while loading it (killed by signal 11 (SIGSEGV))"
    );
    crate::harness::assert_sample_serves(&manager);
}

#[test]
fn a_program_that_is_not_a_runner_is_refused_with_what_to_do() {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .isolation(Isolation::all().program("/bin/true"))
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(
        report.failed[0].error.to_string(),
        "plugin `sample`: its runner /bin/true exited without answering (exited with status 0): a program that isolates plugins calls gp_host::isolation::run_if_runner() first in main, or names a runner with Isolation::program"
    );
}

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

/// Byte ranges of the sections the dynamic loader and abi_stable's checks read: damage there
/// can crash the loader; damage elsewhere (debug info, most code) usually goes unnoticed.
fn loader_ranges(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(data).unwrap();
    [
        ".dynamic",
        ".rela.dyn",
        ".dynsym",
        ".dynstr",
        ".gnu.hash",
        ".init_array",
        ".data.rel.ro",
        ".got",
    ]
    .iter()
    .filter_map(|name| file.section_by_name(name))
    .filter_map(|section| section.file_range())
    .map(|(offset, size)| offset as usize..(offset + size) as usize)
    .filter(|range| !range.is_empty())
    .collect()
}

/// A copy of `data` damaged in its loader-read sections, the same for the same `seed`: 16 bits
/// flipped, or a run of 64 bytes overwritten.
fn corrupted(data: &[u8], ranges: &[std::ops::Range<usize>], seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut copy = data.to_vec();
    let range = &ranges[next() as usize % ranges.len()];
    let at = |n: u64| range.start + n as usize % range.len();
    if seed % 2 == 0 {
        for _ in 0..16 {
            let byte = at(next());
            copy[byte] ^= 1 << (next() % 8);
        }
    } else {
        let start = at(next());
        for byte in &mut copy[start..(start + 64).min(range.end)] {
            *byte = next() as u8;
        }
    }
    copy
}

/// `gp list` on a base dir holding `sample` and `library` as plugin `unruly`: how it ended.
fn list_with(library: &[u8], extra: &[&str]) -> std::process::Output {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let dir = base.path().join("unruly");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("libunruly.so"), library).unwrap();
    let info = gp_host::inspect(unruly()).unwrap();
    std::fs::write(dir.join("plugin.json"), info.plugin_json().to_json_pretty()).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("list")
        .args(extra)
        .arg(base.path())
        .env_remove("GP_LOG")
        .output()
        .unwrap()
}

#[test]
fn with_preflight_a_library_that_crashes_the_loader_is_refused_and_the_others_load() {
    // A library whose start-up code crashes, every time: refused by name, sample loads.
    let crashes = crate::faults::crash_on_load();
    let base = base_dir();
    gp_host::build::install_library(crashes, base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .preflight(true)
        .isolation(Isolation::default().program(env!("CARGO_BIN_EXE_gp")))
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(
        report.failed[0].error.to_string(),
        "plugin `crash-on-load`: pre-flight: its runner died while loading it (killed by signal 11 (SIGSEGV)); it was not loaded into this process"
    );
    crate::harness::assert_sample_serves(&manager);
    // The verdict is kept: loading again does not start another runner, and says the same.
    let again = manager.load_plugins();
    assert_eq!(
        again.failed[0].error.to_string(),
        report.failed[0].error.to_string()
    );

    // Generated damage in the sections the loader reads, through `gp list` (pre-flight on by
    // default). With it, `gp` survives every copy; without it, some copies kill it.
    let data = std::fs::read(unruly()).unwrap();
    let ranges = loader_ranges(&data);
    assert!(ranges.len() >= 5, "{ranges:?}");
    let (mut refused_by_preflight, mut killed_without) = (0, 0);
    for seed in 1..=16u64 {
        let library = corrupted(&data, &ranges, seed);
        let output = list_with(&library, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.code().is_some(),
            "seed {seed}: gp died ({:?}) with the pre-flight on:\n{stdout}\n{stderr}",
            output.status
        );
        assert!(stdout.contains("sample"), "seed {seed}: {stdout}");
        if stdout.contains("pre-flight: its runner died while loading it") {
            refused_by_preflight += 1;
        }
        if list_with(&library, &["--no-preflight"])
            .status
            .code()
            .is_none()
        {
            killed_without += 1;
        }
    }
    eprintln!(
        "16 damaged copies: {refused_by_preflight} refused by the pre-flight; without it, {killed_without} killed gp"
    );
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
fn upgrades_under_calls_start_the_new_runner_first_and_fail_no_call() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let base = base_dir();
    crate::harness::install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::builder(base.path()).isolation(isolation()).build();
    assert!(manager.load_plugins().failed.is_empty());
    let builds = [
        crate::harness::lifecycle("counter-v2"),
        crate::harness::lifecycle("counter-v1"),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (executor, stop) = (manager.executor("counter").unwrap(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut calls, mut failed) = (0u64, Vec::new());
                let mut ctx = Context::new();
                while !stop.load(Ordering::Acquire) {
                    calls += 1;
                    if let Err(error) = executor.execute(&mut ctx) {
                        failed.push(error.to_string());
                    }
                }
                (calls, failed)
            })
        })
        .collect();
    let executor = manager.executor("counter").unwrap();
    let mut runners = Vec::new();
    for i in 0..10 {
        runners.extend(executor.isolation().and_then(|s| s.runner_pid));
        let outcome = manager
            .upgrade_with(
                "counter",
                builds[i % 2],
                gp_host::UpgradeOptions { force: true },
            )
            .unwrap();
        assert!(
            matches!(outcome, gp_host::Upgrade::Upgraded(_)),
            "{outcome:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Release);
    let (mut calls, mut failed) = (0, Vec::new());
    for caller in callers {
        let (c, f) = caller.join().unwrap();
        calls += c;
        failed.extend(f);
    }
    assert!(calls > 20, "{calls} calls");
    assert_eq!(failed, Vec::<String>::new(), "{calls} calls");
    let current = executor.isolation().and_then(|s| s.runner_pid).unwrap();
    runners.retain(|pid| *pid != current);
    // The versions swapped out drained, ran on_unload in their runners, and ended them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while runners.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!runners.iter().any(|pid| alive(*pid)), "{runners:?}");
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

#[test]
fn calls_run_in_parallel_and_a_crash_fails_every_call_in_flight_at_once() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    // Two calls at once run at once, each on a connection and a runner thread of its own
    // (the plugin counts the calls inside it). A busy machine may start the second call after
    // the first's 300 ms: up to three tries.
    let mut most = Vec::new();
    for _ in 0..3 {
        let barrier = std::sync::Barrier::new(2);
        most = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let ctx = call(&executor, "overlap").unwrap();
                        ctx.get("most").and_then(|v| v.as_i64()).unwrap()
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<i64>>()
        });
        if most.contains(&2) {
            break;
        }
    }
    assert_eq!(most.iter().max(), Some(&2), "{most:?}");

    // A call sleeping in the runner when another call crashes it gets the same error, at
    // once (not after its 5 s).
    let started = Instant::now();
    let (sleeper, crasher) = std::thread::scope(|scope| {
        let sleeper = scope.spawn(|| call(&executor, "sleep"));
        std::thread::sleep(Duration::from_millis(200));
        let crasher = scope.spawn(|| call(&executor, "segv"));
        (sleeper.join().unwrap(), crasher.join().unwrap())
    });
    for outcome in [sleeper, crasher] {
        let error = outcome.unwrap_err();
        assert!(
            matches!(&error, Error::Crashed { status, .. } if status == "killed by signal 11 (SIGSEGV)"),
            "{error}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        executor.isolation().unwrap().crashes,
        1,
        "one crash, counted once"
    );
    served(&executor);
}

#[test]
fn a_spinning_runner_serves_and_recovers_like_a_sleeping_one() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            spin: Duration::from_micros(200),
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    let pid = served(&executor);
    assert_eq!(served(&executor), pid);
    assert!(matches!(
        call(&executor, "abort"),
        Err(Error::Crashed { .. })
    ));
    assert_ne!(served(&executor), pid);
}

#[test]
fn a_runner_started_by_a_thread_that_exits_keeps_running() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    assert!(matches!(
        call(&executor, "abort"),
        Err(Error::Crashed { .. })
    ));
    // The next runner is started by a thread that ends right after its call (as a pool
    // thread would): the runner's parent-death signal must not follow that thread.
    let pid = std::thread::scope(|scope| scope.spawn(|| served(&executor)).join().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid as u32));
    assert_eq!(served(&executor), pid);
}

#[test]
fn a_cancelled_call_that_stops_keeps_its_runner() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let pid = served(&executor);
    let mut ctx = Context::new().with_label("wait-for-cancel");
    let token = ctx.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    let error = executor.execute(&mut ctx).unwrap_err();
    canceller.join().unwrap();
    assert_eq!(error.to_string(), "call to plugin `unruly` was cancelled");
    assert_eq!(
        served(&executor),
        pid,
        "the plugin stopped: its runner lives on"
    );
}

#[test]
fn a_crash_ends_the_processes_the_plugin_started_and_is_reported_at_once() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    served(&executor);
    let started = Instant::now();
    let error = call(&executor, "child-then-abort").unwrap_err();
    // The `sleep` it started holds the runner's stderr open: the report does not wait for
    // it, and ending the runner's process group ended it.
    assert!(
        matches!(&error, Error::Crashed { status, .. } if status == "killed by signal 6 (SIGABRT)"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The plugin's `sleep`, orphaned, would have been re-parented to init (or a subreaper)
    // and still be listed; the group kill ended it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleepers() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sleepers(), 0, "the `sleep` the plugin started is gone");
    served(&executor);
}

/// How many `sleep 30.0417` processes run on this machine: the plugin's, in the test above (an
/// odd duration, so that no other `sleep` counts).
fn sleepers() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline == b"sleep\x0030.0417\x00")
        })
        .count()
}

/// The address-space limit of process `pid`, as `/proc/PID/limits` shows it.
fn address_space_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().to_owned()
}

#[test]
fn one_plugin_can_have_settings_of_its_own() {
    let base = base_dir();
    gp_host::build::install_library(unruly(), base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .isolation(isolation())
        .isolate(
            "unruly",
            Isolation {
                memory_limit: Some(1 << 30),
                ..isolation()
            },
        )
        .build();
    assert!(manager.load_plugins().failed.is_empty());
    let unruly = manager.executor("unruly").unwrap();
    let sample = manager.executor("sample").unwrap();
    let pid = |e: &Executor| e.isolation().unwrap().runner_pid.unwrap();
    assert_eq!(address_space_limit(pid(&unruly)), "1073741824");
    assert_eq!(address_space_limit(pid(&sample)), "unlimited");
    assert!(matches!(call(&unruly, "alloc"), Err(Error::Crashed { .. })));
    crate::harness::assert_sample_serves(&manager);
}
