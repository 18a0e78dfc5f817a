//! The `gp` binary, driven as a user would.
//!
//! This file holds what the tests share: running `gp` and reading what it printed; each file
//! pins the commands it is named for.

mod call;
mod inspect;
mod new;
pub mod output;
pub mod serve;
mod serve_loading;

use std::process::{Command, Output};

/// `gp` with `args`, its log off, run to its end.
pub fn gp(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("GP_LOG")
        .output()
        .expect("run gp")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}
