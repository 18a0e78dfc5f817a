//! What hub commands leave: a `gp pull` stopped by Ctrl-C leaves nothing `gp gc` keeps (the
//! registry reached through a proxy on 127.0.0.1 that trickles its answers, so that the pull is
//! still running when it is interrupted), a finished one leaves only its package, and `gp
//! search` into a closed pipe exits quietly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{packed, pushed_digest, start_registry, Auth, Env};
use crate::harness::{base_dir, interrupt, names, temporary_file_of};

/// A proxy on 127.0.0.1 in front of `upstream` that passes requests as they come and answers
/// 16 KiB every 50 ms; returns its `127.0.0.1:PORT`. Its threads end with their connections.
fn trickling_proxy(upstream: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let mut buffer = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = server.read(&mut buffer) {
                    if client.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn an_interrupted_pull_leaves_nothing_that_survives_gp_gc() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let env = Env::new();
    let scratch = base_dir();
    let (counter, bytes) = packed("counter-v1", scratch.path());
    assert!(
        bytes.len() > 64 * 1024,
        "{} bytes: too small to trickle",
        bytes.len()
    );
    let ns = format!("{}/team", registry.host);
    pushed_digest(&env.gp(&["push", counter.to_str().unwrap(), "--registry", &ns], ""));

    // Finished: only the package is left, no runtime folder.
    let out = base_dir();
    let run = env.gp(
        &[
            "pull",
            &format!("oci://{ns}/counter:1.0.0"),
            "-o",
            out.path().to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(names(out.path()), ["counter-1.0.0.plg"]);

    // Interrupted while the blob trickles in.
    let proxy = trickling_proxy(&registry.host);
    let out = base_dir();
    let mut pull = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(["pull", &format!("oci://{proxy}/team/counter:1.0.0"), "-o"])
        .arg(out.path())
        .env("GP_HOME", env.home.path())
        .env("DOCKER_CONFIG", env.docker.path())
        .env_remove("GP_LOG")
        .env_remove("GP_REGISTRY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = out.path().join(".gp-runtime");
    let left = temporary_file_of(&mut pull, &runtime.join("tmp"), "pull");
    interrupt(&mut pull);
    assert!(left.exists(), "no handler removes it: a collection does");
    let run = env.gp(&["gc", out.path().to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("removed {}\n", left.display())),
        "{}",
        run.stdout
    );
    assert_eq!(names(&runtime.join("tmp")), Vec::<String>::new());
    assert_eq!(names(out.path()), [".gp-runtime"]);
}

#[test]
fn gp_search_into_a_closed_pipe_exits_quietly() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let env = Env::new();
    let scratch = base_dir();
    let (counter, _) = packed("counter-v1", scratch.path());
    let ns = format!("{}/team", registry.host);
    pushed_digest(&env.gp(&["push", counter.to_str().unwrap(), "--registry", &ns], ""));
    for json in [false, true] {
        let mut search = Command::new(env!("CARGO_BIN_EXE_gp"));
        search.args(["search", "--registry", &ns]);
        if json {
            search.arg("--json");
        }
        // The reader is gone before gp starts, as once `head -0` has exited.
        let writer = crate::cli::output::closed_reader();
        let output = search
            .env("GP_HOME", env.home.path())
            .env("DOCKER_CONFIG", env.docker.path())
            .env_remove("GP_LOG")
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).as_ref()
            ),
            (Some(141), ""),
            "gp search (json: {json})"
        );
    }
}
