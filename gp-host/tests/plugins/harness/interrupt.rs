//! A child `gp` started without the settings of whoever runs the tests, stopped as Ctrl-C
//! or a service manager stops it, and the temporary file it was writing.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The files in `dir`, by name (none if it is missing).
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits (at most 30 s) until `child` has written some of its temporary file, named
/// `<kind>-<its pid>-….plg`, in `scratch`; returns its path.
pub fn temporary_file_of(child: &mut Child, scratch: &Path, kind: &str) -> PathBuf {
    let prefix = format!("{kind}-{}-", child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = names(scratch).into_iter().find(|n| n.starts_with(&prefix));
        if let Some(name) = found {
            let path = scratch.join(name);
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                assert!(path.extension().is_some_and(|e| e == "plg"), "{path:?}");
                return path;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "gp ended before writing {prefix}*.plg in {}",
            scratch.display()
        );
        assert!(
            Instant::now() < deadline,
            "no {prefix}*.plg in {} after 30 s: {:?}",
            scratch.display(),
            names(scratch)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `gp serve`, with no `GP_SERVE_` variable of whoever runs the tests (only the arguments
/// and variables the test gives), and no `GP_LOG`.
pub fn gp_serve() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gp"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("GP_SERVE_")) {
            command.env_remove(name);
        }
    }
    command.env_remove("GP_LOG").arg("serve");
    command
}

/// Sends `child` SIGTERM (what a service manager or a container runtime sends).
pub fn send_sigterm(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Sends SIGINT to `child` (what Ctrl-C does) and waits for it, at most 30 s.
pub fn interrupt(child: &mut Child) {
    assert!(
        !sigint_ignored(),
        "SIGINT is ignored in this test process, and so in the gp it started: a non-interactive \
         shell ignores it in what it starts with `&`. Run the tests in the foreground, or under \
         `env --default-signal=INT`"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = exit_status(
        child,
        Instant::now() + Duration::from_secs(30),
        "gp still running 30 s after SIGINT",
    );
    assert_eq!(status.signal(), Some(2), "{status:?}");
}

/// Whether this process ignores SIGINT (its children then inherit that): bit 2 of
/// `SigIgn` in /proc/self/status.
fn sigint_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}

/// How `child` ended, once it has; fails with `still_running` if it runs past `deadline`.
pub fn exit_status(child: &mut Child, deadline: Instant, still_running: &str) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{still_running}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
