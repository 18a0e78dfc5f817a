//! Where commands write: a closed standard output ends any command quietly (exit 141, as
//! coreutils' SIGPIPE death reads in a shell), and a file given in a missing folder is written
//! there, the folder made.

use std::process::{Command, Output, Stdio};

use super::{gp, ok, stderr};
use crate::harness::{base_dir, base_dir_with, example};

/// `gp` with `args`, its standard output a pipe whose reader is gone before gp starts (as
/// `gp … | head -0` does, once head has exited): closed before the spawn, so that a command
/// quick enough to write before the reader could close cannot slip its output into the pipe.
pub fn gp_into_closed_pipe(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let writer = closed_reader();
    Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("GP_LOG")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run gp")
}

/// A standard output whose reader is gone: one end of a connected socket pair, the other
/// closed (a write fails with EPIPE, as into a pipe with no reader; `std::io::pipe` is
/// newer than the workspace's minimum Rust).
pub fn closed_reader() -> Stdio {
    let (writer, reader) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    drop(reader);
    Stdio::from(std::os::fd::OwnedFd::from(writer))
}

#[test]
fn commands_whose_output_is_closed_exit_quietly_with_141() {
    let base = base_dir_with(&["sample"]);
    let library = example("sample");
    let commands: [&[&dyn AsRef<std::ffi::OsStr>]; 5] = [
        &[&"list", &base.path()],
        &[&"manifest", &library],
        &[&"inspect", &"--no-load", &library],
        &[
            &"call",
            &base.path(),
            &"sample",
            &"--set",
            &r#"sample={"name":"x"}"#,
        ],
        &[&"gc", &base.path()],
    ];
    for args in commands {
        let output = gp_into_closed_pipe(args);
        let said = stderr(&output);
        // Only what the plugin itself logs (`sample` says what it got).
        let quiet = said
            .lines()
            .all(|l| l.starts_with(" INFO gp::plugin: sample got"));
        assert!(
            output.status.code() == Some(141) && quiet,
            "gp {:?}: {:?}\n{said}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            output.status
        );
    }
}

#[test]
fn keygen_pack_and_manifest_make_the_folder_they_write_into() {
    let work = base_dir();
    let w = work.path();
    let keys = ok(gp(&[&"keygen", &w.join("keys/team/k1")]));
    assert_eq!(
        keys.lines().next(),
        Some(
            format!(
                "secret key: {} (keep it private)",
                w.join("keys/team/k1.key").display()
            )
            .as_str()
        )
    );
    assert!(w.join("keys/team/k1.pub").is_file());

    let base = base_dir_with(&["sample"]);
    let package = w.join("pkgs/new/x.plg");
    ok(gp(&[
        &"pack",
        &base.path().join("sample"),
        &"-o",
        &package,
        &"--sign",
        &w.join("keys/team/k1.key"),
    ]));
    assert!(package.is_file());
    let manifest = w.join("out/plugin.json");
    ok(gp(&[&"manifest", &example("sample"), &"-o", &manifest]));
    assert!(manifest.is_file());
}
