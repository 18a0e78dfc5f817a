//! The README runs as written: every shell block marked ```` ```sh run ```` is run, in order,
//! each in a `bash` of its own (`-e -o pipefail`), from a directory laid out as the repository
//! root is after the README's first steps; the output each block shows (a comment line
//! `# ...` under a command, `...` standing for anything, a trailing `  (...)` an aside) must
//! appear in its standard output, in order. Every other shell block is listed in [`NOT_RUN`]
//! with why: a README edit that adds one without marking it, or breaks a marked one, fails here.
//!
//! The starting state stands in for what the README's first steps build, since the outer
//! `cargo test` holds the lock on the workspace's target directory (a block cannot run cargo
//! there): `target/debug/gp` is this test run's `gp`, `target/debug/libgreeter.so` and
//! `libgreeter_next.so` are the examples built into the tests' target directory, and
//! `target/gp-example/plugins` holds the example plugins `cargo run -p host-app` installs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gp_host::build::{cargo_build, install_library};

use super::read_all;
use crate::harness::{example, options, workspace};

/// The shell blocks the test does not run, each by a line it holds, with why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "cargo run -p host-app",
        "the two commands: the first is the starting state the marked blocks stand on, the second is this test's own run",
    ),
    (
        "cargo build -p gp-host --features gp-host/cli -p greeter",
        "builds in the workspace, whose target directory the outer `cargo test` holds: this run's gp and greeter builds stand in",
    ),
    (
        "cargo new --lib hello",
        "the first plugin: run by `the_readme_first_plugin_runs_as_written` (with the crate's target directory shared with the tests', so that gp-sdk is not compiled again)",
    ),
    (
        "mkdir -p plugins/hello && cp target/debug/libhello.so",
        "the first plugin: run by `the_readme_first_plugin_runs_as_written`",
    ),
    (
        "gp serve target/gp-example/plugins --isolate sample",
        "serves in the foreground until Ctrl-C",
    ),
    (
        "gp new hello                                   # a plugin crate",
        "a release build of a new crate (a minute or two) and a static file server on port 8000; `gp new`, `gp build`, `gp pack`, `gp verify` and `gp install` are tested in `newcomer` and `distribution`",
    ),
    (
        "docker-registry serve registry.yml",
        "needs a registry (Debian's docker-registry) and a release build; the hub tests run the same steps against their own registries",
    ),
];

/// How long one block may run.
const BLOCK_LIMIT: Duration = Duration::from_secs(240);

/// A fenced block of the README.
struct Block {
    /// The line of its opening fence, from 1.
    line: usize,
    /// Its info string (`sh run`).
    info: String,
    body: String,
}

fn fenced_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in readme.lines().enumerate() {
        // A line opening with backticks that holds more is inline code, not a fence.
        let fence = line.strip_prefix("```").filter(|info| !info.contains('`'));
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    line: i + 1,
                    info: info.trim().to_owned(),
                    body: String::new(),
                })
            }
            (Some(_), Some("")) => blocks.push(open.take().unwrap()),
            (Some(block), _) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "the README ends inside a fenced block");
    blocks
}

/// What a marked block says it prints, in order: each own-line comment `# OUT`, and a trailing
/// `# prints OUT`; an aside after two spaces in parentheses is not part of it.
fn shown_outputs(body: &str) -> Vec<String> {
    let mut shown = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim_start();
        let text = if let Some(comment) = trimmed.strip_prefix("# ") {
            comment
        } else if let Some((_, printed)) = line.split_once("  # prints ") {
            printed
        } else {
            continue;
        };
        let text = match text.find("  (") {
            Some(aside) => &text[..aside],
            None => text,
        };
        shown.push(text.trim_end().to_owned());
    }
    shown
}

/// Where `shown` (with `...` for anything) first appears in `out` at or after `from`: the end
/// of the match.
fn find_shown(out: &str, from: usize, shown: &str) -> Option<usize> {
    let fragments: Vec<&str> = shown.split("...").collect();
    let mut start = from;
    loop {
        // Anchor on the first fragment, then find the rest in order.
        let first = out[start..].find(fragments[0])? + start;
        let mut at = first + fragments[0].len();
        let mut whole = true;
        for fragment in &fragments[1..] {
            match out[at..].find(fragment) {
                // Each `...` stands within one line.
                Some(found) if !out[at..at + found].contains('\n') => at += found + fragment.len(),
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            return Some(at);
        }
        start = first + 1;
    }
}

/// The example libraries the README's `gp` tool step builds next to `gp`.
fn greeters() -> Vec<PathBuf> {
    cargo_build(
        &workspace().join("Cargo.toml"),
        &["greeter", "greeter-next"],
        &options(),
    )
    .unwrap_or_else(|e| panic!("building greeter and greeter-next: {e}"))
}

/// The starting state: a directory laid out as the repository root after `cargo run -p
/// host-app` and the `gp` tool step.
fn starting_state(root: &Path) {
    let debug = root.join("target/debug");
    std::fs::create_dir_all(&debug).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gp"), debug.join("gp")).unwrap();
    let greeters = greeters();
    for library in &greeters {
        std::fs::copy(library, debug.join(library.file_name().unwrap())).unwrap();
    }
    let plugins = root.join("target/gp-example/plugins");
    for name in ["sample", "dispatch", "panicky", "slow"] {
        install_library(example(name), &plugins).unwrap();
    }
    let greeter = greeters
        .iter()
        .find(|l| l.file_name().unwrap() == "libgreeter.so")
        .expect("cargo built libgreeter.so");
    install_library(greeter, &plugins).unwrap();
}

/// Runs one block in `root`; its stdout, or why it failed.
fn run_block(root: &Path, block: &Block) -> Result<String, String> {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let path = std::env::join_paths(
        std::iter::once(root.join("target/debug"))
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut child = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &block.body])
        .current_dir(root)
        .env("PATH", path)
        .env("GP_HOME", root.join("gp-home"))
        .env_remove("GP_LOG")
        .env_remove("GP_ADMIN_TOKEN")
        .env_remove("GP_REGISTRY")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        // A group of its own: whatever it left running is stopped with it.
        .process_group(0)
        .spawn()
        .expect("run bash");
    let group = child.id();
    let deadline = Instant::now() + BLOCK_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the block left running (a server it did not stop, when it failed).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let (stdout, stderr) = (read_all(out), read_all(err));
    let what = match status {
        None => format!("still running after {BLOCK_LIMIT:?}"),
        Some(status) if !status.success() => format!("failed ({status})"),
        Some(_) => {
            let mut at = 0;
            for shown in shown_outputs(&block.body) {
                match find_shown(&stdout, at, &shown) {
                    Some(end) => at = end,
                    None => {
                        return Err(format!(
                            "README.md line {}: the block ran, but its output does not show `{shown}` (after what it matched before)\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                            block.line
                        ))
                    }
                }
            }
            return Ok(stdout);
        }
    };
    Err(format!(
        "README.md line {}: the block {what}\n--- block\n{}--- stdout\n{stdout}\n--- stderr\n{stderr}",
        block.line, block.body
    ))
}

/// Every `sh` block is marked to run or listed in [`NOT_RUN`], and each listed one still exists.
#[test]
fn every_readme_shell_block_runs_or_says_why_not() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let blocks = fenced_blocks(&readme);
    let mut used = vec![false; NOT_RUN.len()];
    let mut unlisted = Vec::new();
    for block in blocks.iter().filter(|b| b.info == "sh") {
        match NOT_RUN.iter().position(|(key, _)| block.body.contains(key)) {
            Some(i) => used[i] = true,
            None => unlisted.push(format!("line {}: {}", block.line, block.body)),
        }
    }
    assert!(
        unlisted.is_empty(),
        "README shell blocks neither marked ```sh run``` nor listed in NOT_RUN with a reason:\n{}",
        unlisted.join("\n")
    );
    for ((key, _), used) in NOT_RUN.iter().zip(used) {
        assert!(
            used,
            "NOT_RUN lists a block the README no longer has: {key}"
        );
    }
    for block in &blocks {
        assert!(
            block.info != "sh" || !block.body.contains("sleep 1;"),
            "line {}: wait for what the block needs, bounded, rather than sleep",
            block.line
        );
    }
}

/// The marked blocks, run in order; each must succeed and show what the README says it shows.
#[test]
fn the_readme_marked_blocks_run_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let blocks: Vec<Block> = fenced_blocks(&readme)
        .into_iter()
        .filter(|b| b.info == "sh run")
        .collect();
    assert!(
        blocks.len() >= 4,
        "the README marks {} blocks",
        blocks.len()
    );
    // The blocks serve on `gp serve`'s default ports, as a reader's would.
    for port in [8080, 9464] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!("127.0.0.1:{port} is taken ({e}): the README's blocks run `gp serve` on its default ports; stop what listens there");
        }
    }
    let root = tempfile::Builder::new()
        .prefix("gp-readme-")
        .tempdir()
        .unwrap();
    starting_state(root.path());
    for block in &blocks {
        if let Err(why) = run_block(root.path(), block) {
            panic!("{why}");
        }
    }
    // The blocks not run, for whoever reads the test's output.
    for block in fenced_blocks(&readme).iter().filter(|b| b.info == "sh") {
        if let Some((_, why)) = NOT_RUN.iter().find(|(key, _)| block.body.contains(key)) {
            println!("README.md line {}: not run: {why}", block.line);
        }
    }
}

#[test]
fn shown_output_matches_with_ellipses_within_a_line() {
    let out = "PLUGIN   VERSION  CALLS\ngreeter  1.0.0    0      1      0  -\n{\"a\":1}";
    assert!(find_shown(out, 0, "greeter  1.0.0    ...  1      0 ...").is_some());
    assert!(find_shown(out, 0, "greeter  2.0.0 ...").is_none());
    assert!(find_shown(out, 0, "PLUGIN...1      0").is_none());
    assert_eq!(
        shown_outputs("x\n# {\"a\":1}     (an aside)\ny  # prints 2\nz # not shown\n"),
        ["{\"a\":1}", "2"]
    );
}
