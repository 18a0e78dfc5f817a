//! `gp call` and `gp inspect` against plugins that misbehave: one whose `on_load` takes 30 s,
//! one that ignores its deadline, one that floods stdout. Every run of `gp` is bounded: a
//! process still running after [`LIMIT`] is killed and the test fails.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{base_dir, base_dir_with, custom_fixture, example, fixture, Interface};

/// How long any one run of `gp` may take before it is killed.
const LIMIT: Duration = Duration::from_secs(8);

/// What the tests allow a run that must not wait for a slow plugin: far below the 30 s and
/// 60 s those plugins take, far above a normal `gp` run. Not a speed benchmark.
const BOUNDED: Duration = Duration::from_secs(5);

/// A plugin whose `on_load` hook sleeps 30 s: loading it delays whoever loads it.
const SLEEPY: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

#[gp_sdk::on_load]
fn start() {
    std::thread::sleep(std::time::Duration::from_secs(30));
}

#[plugin_entry]
fn run(ctx: &mut Context) -> Result {
    ctx.set("slept", "yes");
    Ok(())
}
"#;

/// A plugin that, with label `spin`, busy-loops for up to 60 s without looking at
/// `ctx.is_cancelled()`, and with label `noisy` writes 1 MiB (1024 lines of 1023 `x`) to
/// stdout; then sets `answer` to 42 and `label` to its label.
const TRICKS: &str = r#"use std::io::Write;
use std::time::{Duration, Instant};

use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn run(ctx: &mut Context) -> Result {
    let label = ctx.label().unwrap_or("").to_owned();
    match label.as_str() {
        "spin" => {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                std::hint::spin_loop();
            }
        }
        "noisy" => {
            let line = format!("{}\n", "x".repeat(1023));
            let mut out = std::io::stdout().lock();
            for _ in 0..1024 {
                out.write_all(line.as_bytes()).unwrap();
            }
            out.flush().unwrap();
        }
        _ => {}
    }
    ctx.set("answer", 42i64);
    ctx.set("label", label);
    Ok(())
}
"#;

fn sleepy() -> &'static Path {
    custom_fixture("cli-sleepy", "1.0.0", SLEEPY, Interface::Real)
}

fn tricks() -> &'static Path {
    custom_fixture("cli-tricks", "1.0.0", TRICKS, Interface::Real)
}

/// A finished run of `gp`.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `gp` with `args`, killing it (and failing) if it runs longer than [`LIMIT`].
fn gp(args: &[&dyn AsRef<OsStr>]) -> Run {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("GP_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gp");
    // Read both pipes while the process runs: a full pipe would stall it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gp {shown:?} was still running after {LIMIT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("gp writes UTF-8");
    Run {
        status,
        stdout: text(stdout.join().unwrap()),
        stderr: text(stderr.join().unwrap()),
        elapsed,
    }
}

#[test]
fn call_loads_only_the_plugin_asked_for() {
    let base = base_dir_with(&["sample"]);
    gp_host::build::install_library(sleepy(), base.path()).unwrap();
    let run = gp(&[
        &"call",
        &base.path(),
        &"sample",
        &"--set",
        &r#"sample={"name":"x"}"#,
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.elapsed < BOUNDED,
        "took {:?}: the folder whose on_load sleeps 30 s was loaded",
        run.elapsed
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["greeting"], "sample plugin says: x");
}

#[test]
fn call_finds_a_plugin_in_a_package_by_the_name_it_declares() {
    let folders = base_dir_with(&["sample"]);
    let base = base_dir();
    gp_host::package::pack(
        &folders.path().join("sample"),
        &base.path().join("greeter-0.1.0.plg"),
        None,
    )
    .unwrap();
    gp_host::build::install_library(sleepy(), base.path()).unwrap();
    let run = gp(&[
        &"call",
        &base.path(),
        &"sample",
        &"--set",
        &r#"sample={"name":"y"}"#,
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.elapsed < BOUNDED, "took {:?}", run.elapsed);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["greeting"], "sample plugin says: y");
}

#[test]
fn call_names_the_plugins_there_are_when_none_is_called_so() {
    let base = base_dir_with(&["sample", "dispatch"]);
    let run = gp(&[&"call", &base.path(), &"smaple"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        run.stderr,
        format!(
            "error: no plugin named `smaple` in {}; did you mean `sample`? (plugins found: dispatch, sample)\n",
            base.path().display()
        )
    );

    std::fs::create_dir(base.path().join("broken")).unwrap();
    std::fs::write(base.path().join("broken/plugin.json"), "{").unwrap();
    let run = gp(&[&"call", &base.path(), &"unheard-of"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        run.stderr,
        format!(
            "error: no plugin named `unheard-of` in {0} (plugins found: dispatch, sample; 1 more folder could not be read, `gp list {0}` says why)\n",
            base.path().display()
        )
    );
}

#[test]
fn call_gives_up_on_a_plugin_that_ignores_its_deadline() {
    let base = base_dir();
    gp_host::build::install_library(tricks(), base.path()).unwrap();
    let run = gp(&[
        &"call",
        &base.path(),
        &"cli-tricks",
        &"--label",
        &"spin",
        &"--timeout",
        &"300ms",
        &"--grace",
        &"500ms",
    ]);
    assert!(
        run.elapsed < BOUNDED,
        "took {:?} for a 300ms timeout",
        run.elapsed
    );
    assert_eq!(run.status.code(), Some(124), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: plugin `cli-tricks` ignored its deadline: still running 500ms after its 300ms timeout; its thread is abandoned and gp exits without waiting for it\n"
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn call_writes_its_result_to_output_and_leaves_stdout_to_the_plugin() {
    let base = base_dir();
    gp_host::build::install_library(tricks(), base.path()).unwrap();
    let out = base_dir();
    let file = out.path().join("result.json");
    let run = gp(&[
        &"call",
        &base.path(),
        &"cli-tricks",
        &"--label",
        &"noisy",
        &"--output",
        &file,
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{}\n", "x".repeat(1023)).repeat(1024),
        "stdout carries what the plugin wrote, and nothing else"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(json, serde_json::json!({"answer": 42, "label": "noisy"}));
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["result.json"], "no temporary file is left behind");
}

/// What `gp inspect` prints for the example `sample`, whose status is `status`.
pub fn sample_lines(status: &str) -> String {
    format!(
        "name:        sample\n\
         version:     0.1.0\n\
         gp-core:     {v} (this host: {v})\n\
         description: The seed's sample plugin: greets the Hello value it is given\n\
         maintainers: Steven Zou <loneghost1982@gmail.com>\n\
         home:        https://github.com/szlabs/go-plugin\n\
         routes:\n  \
         GET     /api/plugin/sample/:id           -> plugin.get\n  \
         POST    /api/plugin/samples              -> plugin.post\n\
         status:      {status}\n",
        v = gp_host::ABI_VERSION
    )
}

const NOT_LOADED: &str = "read from the file, not loaded: the type layout was not checked (run without --no-load to check it)";

#[test]
fn inspect_loads_the_library_unless_told_not_to() {
    let run = gp(&[&"inspect", &example("sample")]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, sample_lines("loadable"));

    let run = gp(&[&"inspect", &"--no-load", &example("sample")]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, sample_lines(NOT_LOADED));
}

#[test]
fn inspect_no_load_does_not_see_a_layout_mismatch_and_says_so() {
    let library = fixture(Interface::WiderErrorKind);
    let run = gp(&[&"inspect", &library]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        run.stderr.starts_with("error: plugin `layout-mismatch` ("),
        "{}",
        run.stderr
    );
    let run = gp(&[&"inspect", &"--no-load", &library]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with(&format!("status:      {NOT_LOADED}\n")),
        "{}",
        run.stdout
    );
}

#[test]
fn inspect_help_says_that_it_runs_the_library() {
    let run = gp(&[&"inspect", &"--help"]);
    assert!(run.status.success(), "{}", run.stderr);
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for said in [
        "The checks load the library into this process, which runs code it contains: the dynamic loader's initialisers (static constructors) and the plugin's root-module constructor, though not its on_load hook",
        "--no-load Read the file only, without loading it: nothing in the library runs",
    ] {
        assert!(help.contains(said), "{said:?} not in:\n{}", run.stdout);
    }
}
