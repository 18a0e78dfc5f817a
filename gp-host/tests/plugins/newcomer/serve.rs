//! `gp serve` as a newcomer starts it: a busy port names its listener and how to pick another,
//! and packages loaded without signature checks are named once.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{gp, pack_sample, LIMIT};
use crate::harness::base_dir;

/// Item 5: a busy port names its listener and how to choose another.
#[test]
fn serve_on_a_busy_port_names_the_listener_and_how_to_pick_another() {
    let base = base_dir();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let ran = gp(
        base.path(),
        &[
            &"serve",
            &base.path(),
            &"--listen",
            &"127.0.0.1:0",
            &"--admin",
            &addr.to_string(),
        ],
    );
    assert_eq!(ran.code, Some(1));
    // The listeners open before any plugin loads: the error is all it says.
    assert_eq!(
        ran.stderr,
        format!(
            "error: {addr}: the admin listener (--admin) cannot listen here: Address already in use (os error 98); another program (another `gp serve`?) listens there: choose another port with --admin 127.0.0.1:PORT, or --admin 127.0.0.1:0 for any free one\n"
        )
    );
    let ran = gp(
        base.path(),
        &[
            &"serve",
            &base.path(),
            &"--listen",
            &addr.to_string(),
            &"--admin",
            &"127.0.0.1:0",
        ],
    );
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr,
        format!(
            "error: {addr}: the plugin routes' listener (--listen) cannot listen here: Address already in use (os error 98); another program (another `gp serve`?) listens there: choose another port with --listen 127.0.0.1:PORT, or --listen 127.0.0.1:0 for any free one\n"
        )
    );
    drop(busy);
}

/// Item 12, `gp serve`: packages loaded without signature checks are named once, on stderr.
#[test]
fn serve_names_packages_loaded_unchecked_once() {
    use std::io::BufRead;
    let work = base_dir();
    let w = work.path();
    std::fs::create_dir(w.join("base")).unwrap();
    pack_sample(&w.join("base"));
    let package = w.join("base/sample.plg").canonicalize().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args([
            "serve",
            "base",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .current_dir(w)
        .env("GP_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gp serve");
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let _ = lines.send(line.unwrap_or_default());
        }
    });
    // Loaded: its stdout says so once every plugin folder was tried.
    let (up, serving) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with("ready: ") {
                let _ = up.send(());
            }
        }
    });
    let started = serving.recv_timeout(LIMIT);
    let _ = child.kill();
    let _ = child.wait();
    started.expect("gp serve starts serving");
    let mut said = Vec::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(5)) {
        said.push(line);
    }
    assert_eq!(
        said,
        [format!(
            "warning: packages loaded without signature checks (no --public-key given): {}; pass --public-key KEY to load only packages signed by that key",
            package.display()
        )]
    );
}
