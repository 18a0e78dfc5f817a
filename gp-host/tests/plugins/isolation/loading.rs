//! Loading through a runner: a library that crashes while loading is refused by name (with the
//! pre-flight, before it reaches the host process), and a program that is not a runner is
//! refused with what to do.

use gp_host::isolation::Isolation;
use gp_host::Manager;

use super::{isolation, unruly};
use crate::harness::{base_dir, custom_fixture, example, fixture, Interface};

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

/// Byte ranges of the sections the dynamic loader and abi_stable's checks read: damage there
/// can crash the loader; damage elsewhere (debug info, most code) usually goes unnoticed.
fn loader_ranges(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    section_ranges(
        data,
        &[
            ".dynamic",
            ".rela.dyn",
            ".dynsym",
            ".dynstr",
            ".gnu.hash",
            ".init_array",
            ".data.rel.ro",
            ".got",
        ],
    )
}

/// Byte ranges of the sections named.
fn section_ranges(data: &[u8], names: &[&str]) -> Vec<std::ops::Range<usize>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(data).unwrap();
    names
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
    let mut deaths = Vec::new();
    for seed in 1..=16u64 {
        let library = corrupted(&data, &ranges, seed);
        let output = list_with(&library, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code().is_none() {
            eprintln!(
                "seed {seed}: gp died ({:?}) with the pre-flight on:\n{stdout}\n{stderr}",
                output.status
            );
            deaths.push(seed);
            continue;
        }
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
    // Deaths with the pre-flight on, counted: none.
    assert_eq!(deaths, Vec::<u64>::new());
}

const CRASH_AT_EXIT: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

extern "C" fn crash() {
    // SAFETY: none; the point is the crash, in the library's finaliser (at process exit).
    unsafe { std::ptr::null_mut::<u8>().write_volatile(1) }
}

#[used]
#[link_section = ".fini_array"]
static CRASH_AT_EXIT: extern "C" fn() = crash;

#[plugin_entry]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

/// The variable that makes `exits-when-told`'s start-up code call `exit(7)`.
const EXIT_AT_LOAD: &str = "GP_TEST_EXIT_AT_LOAD";

const EXITS_WHEN_TOLD: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

extern "C" fn maybe_exit() {
    if std::env::var_os("GP_TEST_EXIT_AT_LOAD").is_some() {
        std::process::exit(7);
    }
}

#[used]
#[link_section = ".init_array"]
static EXIT_WHEN_LOADED: extern "C" fn() = maybe_exit;

#[plugin_entry]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

/// `gp list` (with `extra` arguments and environment) on a base dir holding `sample` and
/// `library`'s plugin: how it ended, and the base dir.
fn gp_list(
    library: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, tempfile::TempDir) {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    gp_host::build::install_library(library, base.path()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("list")
        .args(extra)
        .arg(base.path())
        .env_remove("GP_LOG")
        .env_remove(EXIT_AT_LOAD)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (output, base)
}

#[test]
fn a_library_that_crashes_at_exit_is_refused_by_the_preflight_and_never_loaded() {
    use std::os::unix::process::ExitStatusExt;
    let library = custom_fixture("crash-at-exit", "1.0.0", CRASH_AT_EXIT, Interface::Real);
    // Loaded in process, it serves, then kills `gp` at exit: a finaliser of its own.
    // The fatal reporter names the plugins whose finalisers ran; which one, only the
    // pre-flight can tell.
    let (output, _base) = gp_list(library, &["--no-preflight"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{stdout}");
    assert!(
        stderr.contains("gp: fatal signal SIGSEGV (invalid memory access) while the process was exiting: in a library's finaliser (in-process plugins: `crash-at-exit`, `sample`; the pre-flight, on by default, tells which); an in-process host cannot survive this\n"),
        "{stderr}"
    );
    // The pre-flight's runner exits as the host would, so it sees the crash and refuses the
    // library; `gp` never maps it, and exits cleanly.
    let (output, _base) = gp_list(library, &[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code().is_some(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("plugin `crash-at-exit`: pre-flight: it crashed at exit (killed by signal 11 (SIGSEGV)): its finalisers or exit handlers; it was not loaded into this process"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("sample"), "{stdout}");
    // An embedder's manager says the same.
    let base = base_dir();
    gp_host::build::install_library(library, base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .preflight(true)
        .isolation(Isolation::default().program(env!("CARGO_BIN_EXE_gp")))
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        matches!(&report.failed[0].error, gp_host::Error::Preflight { reason, .. } if reason.is_verdict()),
        "{report:?}"
    );
}

#[test]
fn start_up_code_that_reads_the_environment_is_preflighted_with_the_hosts() {
    use std::os::unix::process::ExitStatusExt;
    let library = custom_fixture("exits-when-told", "1.0.0", EXITS_WHEN_TOLD, Interface::Real);
    // Without the variable it loads.
    let (output, _base) = gp_list(library, &[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && !stdout.contains("pre-flight"),
        "{stdout}"
    );
    // With it, the pre-flight's runner sees it too (the host's environment), and exits 7.
    let (output, base) = gp_list(library, &[], &[(EXIT_AT_LOAD, "1")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code().is_some(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("plugin `exits-when-told`: pre-flight: its runner died while loading it (exited with status 7); it was not loaded into this process"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("sample"), "{stdout}");
    // Without the pre-flight, `gp` exits 7 in the plugin's start-up code, and says which
    // plugin it was loading.
    let (output, _base) = gp_list(library, &["--no-preflight"], &[(EXIT_AT_LOAD, "1")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert_eq!(output.status.signal(), None);
    drop(base);
    assert!(
        stderr.contains("gp: the process ended (exit() was called) while loading the plugin at ")
            && stderr.contains("exits-when-told (its library's start-up code or on_load)"),
        "{stderr}"
    );
}

const CRASH_OUTSIDE_A_RUNNER: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

extern "C" fn crash_outside_a_runner() {
    // The pre-flight's runner has GP_RUNNER set; the host does not: a load that differs.
    if std::env::var_os("GP_RUNNER").is_none() {
        // SAFETY: none; the point is the crash, in the host only.
        unsafe { std::ptr::null_mut::<u8>().write_volatile(1) }
    }
}

#[used]
#[link_section = ".init_array"]
static CRASH_WHEN_LOADED: extern "C" fn() = crash_outside_a_runner;

#[plugin_entry]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

#[test]
fn a_crash_after_a_clean_preflight_names_the_plugin_and_its_copy_goes_at_the_next_start() {
    use std::os::unix::process::ExitStatusExt;
    let library = custom_fixture(
        "crash-outside-a-runner",
        "1.0.0",
        CRASH_OUTSIDE_A_RUNNER,
        Interface::Real,
    );
    let (output, base) = gp_list(library, &[], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "gp: fatal signal SIGSEGV (invalid memory access) while loading the plugin at {}, which passed pre-flight (its library's start-up code); an in-process host cannot survive this\n",
            base.path().join("crash-outside-a-runner").display()
        )),
        "{stderr}"
    );
    // Its private copy stayed behind, named for the dead process (and sample's, if its load,
    // running alongside, had not finished); the next start removes them.
    let runtime = base.path().join(".gp-runtime");
    let copies = || {
        std::fs::read_dir(&runtime)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("-loading-"))
            .collect::<Vec<_>>()
    };
    let left = copies();
    let ours = |n: &String| n.starts_with("libcrash_outside_a_runner-");
    assert_eq!(left.iter().filter(|n| ours(n)).count(), 1, "{left:?}");
    assert!(
        left.iter().all(|n| ours(n) || n.starts_with("libsample-")),
        "{left:?}"
    );
    std::fs::remove_dir_all(base.path().join("crash-outside-a-runner")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("list")
        .arg(base.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(copies(), Vec::<String>::new());
}

#[test]
fn an_embedder_with_a_runner_preflights_by_default_and_a_restart_preflights_only_new_builds() {
    // Isolation::program names a runner: pre-flight is on without asking for it (were it
    // off, this library would take the test process down).
    let base = base_dir();
    gp_host::build::install_library(crate::faults::crash_on_load(), base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    gp_host::build::install_library(example("dispatch"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .isolation(Isolation::default().program(env!("CARGO_BIN_EXE_gp")))
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.loaded.len(), 2, "{report:?}");
    assert!(
        matches!(&report.failed[..], [failure] if matches!(&failure.error, gp_host::Error::Preflight { reason, .. } if reason.is_verdict())),
        "{report:?}"
    );
    drop(manager);

    // `gp list`, started twice on a base dir of its own: the first run pre-flights the three
    // builds and keeps the two passes in the runtime directory (by SHA-256 and gp-host
    // version); the second, a restart, pre-flights only the refused one.
    let base = base_dir();
    for library in [
        crate::faults::crash_on_load(),
        example("sample"),
        example("dispatch"),
    ] {
        gp_host::build::install_library(library, base.path()).unwrap();
    }
    let list = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
            .args(["list"])
            .arg(base.path())
            .env("GP_LOG", "gp=debug")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            stdout.contains("pre-flight: its runner died while loading it"),
            "{stdout}\n{stderr}"
        );
        let preflighted: Vec<String> = stderr
            .lines()
            .filter(|l| l.contains("pre-flight in"))
            .map(str::to_owned)
            .collect();
        preflighted
    };
    assert_eq!(list().len(), 3);
    let passes: Vec<String> = std::fs::read_dir(base.path().join(".gp-runtime/preflight"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(passes.len(), 2, "{passes:?}");
    let version = format!("-gp-{}-", env!("CARGO_PKG_VERSION"));
    assert!(
        passes.iter().all(|p| p.len() > 64 && p.contains(&version)),
        "{passes:?}"
    );
    let again = list();
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].contains("crash-on-load"), "{again:?}");
}

/// The corpus above at a larger size, on demand (`cargo test -p gp-host --test plugins --
/// --ignored larger_corpus`; seeds `GP_CORPUS_FROM`..=`GP_CORPUS_TO`, 1..=1200 by default,
/// about 3 minutes; `GP_CORPUS_SECTIONS=.text,.rodata` damages those sections instead): deaths of `gp list` with the pre-flight on, counted. At 1..=1200 on
/// this commit: none; 3 copies (seeds 177, 253 and 923) are refused as crashing at exit,
/// which killed `gp` at exit before the pre-flight waited for its runner's exit.
#[test]
#[ignore = "3 minutes; run on demand"]
fn larger_corpus() {
    let data = std::fs::read(unruly()).unwrap();
    let ranges = match std::env::var("GP_CORPUS_SECTIONS") {
        Ok(names) => section_ranges(&data, &names.split(',').collect::<Vec<_>>()),
        Err(_) => loader_ranges(&data),
    };
    let seed =
        |name: &str, default: u64| std::env::var(name).map_or(default, |v| v.parse().unwrap());
    let (from, to) = (seed("GP_CORPUS_FROM", 1), seed("GP_CORPUS_TO", 1200));
    let (mut deaths, mut at_exit) = (Vec::new(), Vec::new());
    for seed in from..=to {
        let output = list_with(&corrupted(&data, &ranges, seed), &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.contains("at exit (") {
            at_exit.push(seed);
        }
        if output.status.code().is_none() || !stdout.contains("sample") {
            let stderr = String::from_utf8_lossy(&output.stderr);
            eprintln!("seed {seed}: {:?}\n{stderr}", output.status);
            deaths.push(seed);
        }
    }
    eprintln!("seeds {from}..={to}: refused at exit: {at_exit:?}; deaths: {deaths:?}");
    assert_eq!(deaths, Vec::<u64>::new());
}

#[test]
fn the_preflight_runs_bind_host_as_the_host_does_and_refuses_a_library_whose_bind_host_dies() {
    // The two loads differed: the host binds its services (the plugin's `bind_host`) right
    // after mapping the library, the pre-flight did not, so a library whose `bind_host` dies
    // passed pre-flight and took the host down with it.
    let library = fixture(Interface::BindHostAborts);
    let (output, _base) = gp_list(library, &[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code().is_some(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("plugin `bind-host-aborts`: pre-flight: its runner died while loading it (killed by signal 6 (SIGABRT)); it was not loaded into this process"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sample ") && l.contains(" loaded ")),
        "{stdout}"
    );
    assert!(!stderr.contains("passed pre-flight"), "{stderr}");
}

/// Start-up code that crashes unless the process's main thread runs it: it stands for a
/// damaged library whose code reads what the loading thread's stack held before (found in the
/// corpus with `.text` damaged: deterministic, and different between a process's main thread
/// and a thread started for the load).
const CRASH_OFF_THE_MAIN_THREAD: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

extern "C" fn crash_off_the_main_thread() {
    // `/proc/thread-self` is `PID/task/TID`; the main thread's TID is the PID.
    let me = std::fs::read_link("/proc/thread-self").unwrap_or_default();
    let main = me.file_name().and_then(|t| t.to_str()) == Some(&std::process::id().to_string());
    if !main {
        // SAFETY: none; the point is the crash, on any thread but the main one.
        unsafe { std::ptr::null_mut::<u8>().write_volatile(1) }
    }
}

#[used]
#[link_section = ".init_array"]
static CRASH_WHEN_LOADED: extern "C" fn() = crash_off_the_main_thread;

#[plugin_entry]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

#[test]
fn the_preflight_and_the_host_run_a_library_s_start_up_code_on_a_thread_of_its_own() {
    // The host loads plugins on threads of its own (several at once), the runner did on its
    // main thread: start-up code that behaves by thread passed pre-flight, then killed the
    // host. Both now run it on a thread started for it, so the pre-flight sees what the host
    // would.
    let library = custom_fixture(
        "crash-off-the-main-thread",
        "1.0.0",
        CRASH_OFF_THE_MAIN_THREAD,
        Interface::Real,
    );
    let (output, _base) = gp_list(library, &[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code().is_some(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("plugin `crash-off-the-main-thread`: pre-flight: its runner died while loading it (killed by signal 11 (SIGSEGV)); it was not loaded into this process"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sample ") && l.contains(" loaded ")),
        "{stdout}"
    );
}
