//! The README's first plugin: its files are whole, its commands run as written, and `gp build`
//! then `gp build --pack` leave one copy that prints what the README shows.

use std::path::Path;
use std::process::Command;

use super::{gp, gp_limited, BUILD_LIMIT};
use crate::harness::{base_dir, workspace};

/// The README's section `name` (from its `## ` heading to the next).
pub(super) fn readme_section(name: &str) -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme
        .find(&format!("## {name}\n"))
        .expect("the README has the section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The fenced blocks of `text` in language `lang`.
pub(super) fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").unwrap();
        found.push(body[..end].to_owned());
        rest = &body[end..];
    }
    found
}

/// Item 1: the README's Cargo.toml is a whole file (pasting it over what `cargo new --lib`
/// made gives no duplicate key), and `gp` is the one the README built before.
#[test]
fn the_readme_first_plugin_is_complete_files_and_working_commands() {
    let section = readme_section("A first plugin, in under a minute");
    let tomls = blocks(&section, "toml");
    assert_eq!(tomls.len(), 1, "{section}");
    let toml = &tomls[0];
    assert!(toml.starts_with("[package]\nname = \"hello\"\n"), "{toml}");
    for table in ["[package]", "[lib]", "[dependencies]"] {
        assert_eq!(toml.matches(table).count(), 1, "{table} in {toml}");
    }
    assert!(
        section.contains("Replace `Cargo.toml` with:"),
        "the README says to replace the file, not to append to it"
    );
    // `gp` comes from the README's `gp` tool step, built once, not from a `cargo install` of
    // its own (three minutes on a fresh machine).
    let sh = blocks(&section, "sh").join("");
    assert!(!sh.contains("cargo install"), "{sh}");
    assert!(
        section.contains("with `gp` on `PATH` from the step above"),
        "{section}"
    );
}

/// Both tests below build a crate called `hello` into the shared target directory, whose
/// `libhello.so` would be overwritten under the other: one at a time.
static HELLO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The README's "A first plugin, in under a minute", run as written: its commands, its files, and the
/// output its comment promises. Two stand-ins: the test build's `gp` instead of
/// `cargo install` (a release build of its own), and the crate's `target` linked to the shared
/// test target directory, so `cargo build` and `cp target/debug/...` run as written without
/// compiling gp-sdk's dependencies again.
#[test]
fn the_readme_first_plugin_runs_as_written() {
    let _hello = HELLO.lock().unwrap_or_else(|p| p.into_inner());
    let section = readme_section("A first plugin, in under a minute");
    let sh = blocks(&section, "sh");
    let (toml, rust) = (&blocks(&section, "toml")[0], &blocks(&section, "rust")[0]);
    let work = base_dir();
    std::os::unix::fs::symlink(workspace(), work.path().join("gp")).unwrap();
    let run = |dir: &Path, line: &str| {
        let gp_dir = Path::new(env!("CARGO_BIN_EXE_gp"))
            .parent()
            .unwrap()
            .to_owned();
        let path = std::env::join_paths(
            std::iter::once(gp_dir)
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let output = Command::new("sh")
            .args(["-c", line])
            .current_dir(dir)
            .env("PATH", path)
            .env_remove("CARGO_TARGET_DIR")
            .env("CARGO_PROFILE_DEV_DEBUG", crate::harness::DEBUG_INFO)
            .env_remove("GP_LOG")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{line}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // `cargo new --lib hello && cd hello`
    let first = sh[0].trim();
    let (new, cd) = first.split_once(" && ").unwrap();
    assert_eq!(cd, "cd hello");
    run(work.path(), new);
    let hello = work.path().join("hello");
    std::fs::write(hello.join("Cargo.toml"), toml).unwrap();
    std::fs::write(hello.join("src/lib.rs"), rust).unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), hello.join("Cargo.lock")).unwrap();
    std::os::unix::fs::symlink(crate::harness::target_dir(), hello.join("target")).unwrap();
    let mut printed = String::new();
    for line in sh[1].lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (command, comment) = line
            .split_once(" #")
            .map_or((line, ""), |(c, m)| (c.trim(), m));
        if command.starts_with("cargo install") {
            continue; // the test build's gp stands in
        }
        printed = run(&hello, command);
        if let Some(promised) = comment.trim().strip_prefix("prints ") {
            assert_eq!(printed.trim_end(), promised, "`{command}`");
        }
    }
    assert_eq!(printed, "{\"greeting\": \"hello gp\", \"name\": \"gp\"}\n");
}

/// Items 2 and 10: `gp build` then `gp build --pack` leaves one copy of the plugin, says what it
/// removed and why, and `gp call` prints exactly what the README's comment shows.
#[test]
fn build_then_build_pack_leaves_one_copy_and_call_prints_what_the_readme_shows() {
    let _hello = HELLO.lock().unwrap_or_else(|p| p.into_inner());
    let work = base_dir();
    let w = work.path();
    let sdk = workspace().join("gp-sdk");
    let created = gp(w, &[&"new", &"hello", &"--sdk", &sdk]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let krate = w.join("hello");
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    assert_eq!(built.stdout, "built hello 0.1.0 -> plugins/hello\n");

    // The README's call, and the output its comment shows.
    let section = readme_section("A first plugin, in under a minute");
    let line = section
        .lines()
        .find(|l| l.starts_with("gp call plugins hello"))
        .expect("the README calls hello");
    let shown = line.split("# prints ").nth(1).expect("a comment").trim();
    let called = gp(
        &krate,
        &[
            &"call",
            &"plugins",
            &"hello",
            &"--label",
            &"greet",
            &"--set",
            &"name=\"gp\"",
        ],
    );
    assert_eq!(called.code, Some(0), "{}", called.stderr);
    assert_eq!(called.stdout, format!("{shown}\n"));
    assert_eq!(
        called.stdout,
        "{\"greeting\": \"hello gp\", \"name\": \"gp\"}\n"
    );

    let packed = gp_limited(&krate, &[&"build", &"--debug", &"--pack"], BUILD_LIMIT);
    assert_eq!(packed.code, Some(0), "{}", packed.stderr);
    assert!(
        packed
            .stdout
            .starts_with("packed hello 0.1.0 -> plugins/hello-0.1.0.plg\nsha256 "),
        "{}",
        packed.stdout
    );
    assert!(
        packed.stderr.ends_with(
            "removed plugins/hello/ (plugin hello, from an earlier `gp build`): the package plugins/hello-0.1.0.plg replaces it, and a base directory holding both would load plugin hello twice\n"
        ),
        "{}",
        packed.stderr
    );
    assert!(!krate.join("plugins/hello").exists());

    let listed = gp(&krate, &[&"list", &"plugins"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        listed.stdout,
        "FOLDER           STATUS     PLUGIN / ERROR\n\
         hello-0.1.0.plg  loaded     hello 0.1.0\n"
    );
    let called = gp(
        &krate,
        &[&"call", &"plugins", &"hello", &"--label", &"greet"],
    );
    assert_eq!(called.code, Some(0), "{}", called.stderr);
    assert_eq!(
        called.stdout, "{\"greeting\": \"hello world\"}\n",
        "{}",
        called.stderr
    );
    assert!(!called.stderr.contains("unique"), "{}", called.stderr);

    // And back: a folder build replaces the package.
    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    assert_eq!(built.stdout, "built hello 0.1.0 -> plugins/hello\n");
    assert!(
        built.stderr.ends_with(
            "removed plugins/hello-0.1.0.plg (plugin hello, from an earlier `gp build --pack`): the folder plugins/hello/ replaces it, and a base directory holding both would load plugin hello twice\n"
        ),
        "{}",
        built.stderr
    );
    let listed = gp(&krate, &[&"list", &"plugins"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        listed.stdout,
        "FOLDER  STATUS     PLUGIN / ERROR\nhello   loaded     hello 0.1.0\n"
    );
    assert_eq!(listed.stderr, "");
}
