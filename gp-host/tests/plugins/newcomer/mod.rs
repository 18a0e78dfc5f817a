//! What a newcomer meets first: the README's first plugin, `gp build` then `gp build --pack`,
//! a base directory given wrongly, a busy port, a local package, and the messages on the way.
//! Every run of `gp` is bounded: a process still running after its limit is killed and the
//! test fails.
//!
//! This file holds what the tests share: the bounded run of `gp`, and a packed `sample`.

mod first_hour;
mod guide;
mod messages;
mod packages;
mod readme;
mod readme_runs;
mod serve;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::base_dir_with;

/// How long a run of `gp` that loads or checks plugins may take.
pub(super) const LIMIT: Duration = Duration::from_secs(30);

/// How long a run of `gp` that builds a crate may take.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// What a run of `gp` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `gp ARGS` in `dir`, killed (and the test failed) after `limit`.
fn gp_limited(dir: &Path, args: &[&dyn AsRef<OsStr>], limit: Duration) -> Run {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(dir)
        .env_remove("GP_LOG")
        .envs(crate::harness::build_env())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("run gp");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gp {:?} still running after {limit:?}", args_text(args));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

fn args_text(args: &[&dyn AsRef<OsStr>]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

fn read_all(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek};
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

fn gp(dir: &Path, args: &[&dyn AsRef<OsStr>]) -> Run {
    gp_limited(dir, args, LIMIT)
}

/// Packs the example `sample` into `dir/sample.plg` (unsigned); returns its sha256.
fn pack_sample(dir: &Path) -> String {
    let plugins = base_dir_with(&["sample"]);
    let packed = gp(
        dir,
        &[
            &"pack",
            &plugins.path().join("sample"),
            &"-o",
            &"sample.plg",
        ],
    );
    assert_eq!(packed.code, Some(0), "{}", packed.stderr);
    packed
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .unwrap()
        .to_owned()
}
