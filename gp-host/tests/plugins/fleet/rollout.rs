//! The fleet: a registry (Debian's docker-registry), three `gp serve` replicas following
//! `…/rollout:stable` and haproxy in front of them with health checks on `/-/readyz`. A client
//! loops through haproxy while five versions are rolled out by moving the tag, a version
//! signed by a key the replicas do not trust is pushed and tagged in the middle, and the tag
//! is moved back once. Every request must succeed, every replica converge within the follow
//! interval + its maximum jitter + 2 s, and every replica refuse the untrusted version while
//! it keeps serving. The figures are printed (and quoted in the README, *Running a fleet*).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gp_host::package::{self, SecretKey};

use crate::harness::{base_dir, build_workspace, target_dir, tool_present};
use crate::hub::{anonymous, start_registry, Auth};

/// How often the replicas check the registry, and the most each check is delayed at random.
const EVERY: Duration = Duration::from_secs(1);
const JITTER: Duration = Duration::from_millis(500);
/// What the issue allows a replica to take to serve a version once the tag names it.
const CONVERGED_WITHIN: Duration = EVERY
    .saturating_add(JITTER)
    .saturating_add(Duration::from_secs(2));

/// The versions of plugin `rollout`: a route that answers with its version.
const ROLLOUT: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(name = "rollout", route(GET, "/rollout/version", label = "version"))]
fn execute(ctx: &mut Context) -> Result {
    ctx.respond_json(&serde_json::json!({"version": env!("CARGO_PKG_VERSION")}))
}
"#;

/// `rollout` 1.0.0 to 7.0.0, each packed (7.0.0 signed by `untrusted`, the others by
/// `trusted`), into `dir`: version → package.
fn packages(dir: &Path, trusted: &SecretKey, untrusted: &SecretKey) -> Vec<(String, PathBuf)> {
    let versions: Vec<(String, String)> = (1..=7)
        .map(|major| (format!("rollout-v{major}"), format!("{major}.0.0")))
        .collect();
    let crates: Vec<(&str, &str, &str)> = versions
        .iter()
        .map(|(package, version)| (package.as_str(), version.as_str(), ROLLOUT))
        .collect();
    let built = build_workspace(
        &target_dir().join("fixtures/rollout"),
        &crates,
        "serde_json = \"1\"\n",
    );
    versions
        .iter()
        .map(|(crate_name, version)| {
            let staging = base_dir();
            gp_host::build::install_library(&built[crate_name], staging.path()).unwrap();
            let key = if version == "7.0.0" {
                untrusted
            } else {
                trusted
            };
            let path = dir.join(format!("rollout-{version}.plg"));
            package::pack(&staging.path().join("rollout"), &path, Some(key)).unwrap();
            (version.clone(), path)
        })
        .collect()
}

/// A process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One replica: `gp serve` following the tag, on loopback ports of its own.
struct Replica {
    _process: Process,
    plugins: SocketAddr,
    _base: tempfile::TempDir,
}

fn replica(reference: &str, public_key: &Path) -> Replica {
    let base = base_dir();
    let mut child = crate::harness::gp_serve()
        .arg(base.path())
        .args([
            "--follow",
            reference,
            "--allow-downgrade",
            "--required",
            "rollout",
        ])
        .arg("--follow-every")
        .arg(format!("{}ms", EVERY.as_millis()))
        .arg("--follow-jitter")
        .arg(format!("{}ms", JITTER.as_millis()))
        .arg("--public-key")
        .arg(public_key)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--no-access-log",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run gp serve");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let plugins = loop {
        let line = lines.next().expect("gp serve names its listener").unwrap();
        if let Some(rest) = line.strip_prefix("serving plugin routes on http://") {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // What it prints from here on is not read: a thread drains it.
    std::thread::spawn(move || lines.for_each(drop));
    Replica {
        _process: Process(child),
        plugins,
        _base: base,
    }
}

/// The version `addr` serves on the route, if it answers 200.
fn served(addr: SocketAddr) -> Option<String> {
    let reply = std::panic::catch_unwind(|| crate::http::get(addr, "/rollout/version")).ok()?;
    (reply.status == 200).then(|| reply.json()["version"].as_str().unwrap().to_owned())
}

/// A loopback port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// haproxy in front of `replicas` on `port`: round robin, each replica in rotation only while
/// its `/-/readyz` answers 200 (checked every 200 ms).
fn haproxy(dir: &Path, port: u16, replicas: &[SocketAddr]) -> Process {
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("    server replica{i} {addr} check\n"))
        .collect();
    let config = format!(
        "global\n    maxconn 512\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    retries 2\n    option redispatch\n\
         frontend fleet\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /-/readyz\n    http-check expect status 200\n    default-server inter 200ms fall 1 rise 1\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
        .spawn()
        .expect("run haproxy");
    Process(child)
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// What the client loop saw.
#[derive(Default)]
struct Seen {
    requests: u64,
    failed: Vec<String>,
    versions: std::collections::BTreeMap<String, u64>,
}

/// Requests through `front` until `stop`, at most 200,000 and 180 s.
fn client(front: SocketAddr, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let began = Instant::now();
    for _ in 0..200_000 {
        if stop.load(Ordering::Acquire) || began.elapsed() > Duration::from_secs(180) {
            return;
        }
        let reply = std::panic::catch_unwind(|| crate::http::get(front, "/rollout/version"));
        let mut seen = seen.lock().unwrap();
        seen.requests += 1;
        match reply {
            Ok(reply) if reply.status == 200 => {
                let version = reply.json()["version"].as_str().unwrap().to_owned();
                *seen.versions.entry(version).or_default() += 1;
            }
            Ok(reply) => seen
                .failed
                .push(format!("{}: {}", reply.status, reply.text())),
            Err(_) => seen.failed.push("no answer".into()),
        }
    }
}

/// Moves `stable` to `version` and waits until every replica serves it; returns how long
/// each took.
fn roll(host: &str, version: &str, replicas: &[Replica]) -> Vec<Duration> {
    crate::hub::retag(host, "team/rollout", version, "stable");
    let moved = Instant::now();
    replicas
        .iter()
        .map(|replica| {
            crate::harness::eventually(
                &format!("{} serving {version}", replica.plugins),
                CONVERGED_WITHIN + Duration::from_secs(10),
                || served(replica.plugins).as_deref() == Some(version),
            );
            moved.elapsed()
        })
        .collect()
}

// Long: one scenario, read top to bottom, each step starting from the state the last left.
#[test]
fn a_fleet_rolls_out_five_versions_and_back_without_a_failed_request() {
    if !tool_present(
        "GP_FLEET_TESTS",
        (!Command::new("sh")
            .args(["-c", "command -v haproxy"])
            .output()
            .is_ok_and(|o| o.status.success()))
        .then(|| "haproxy".to_owned()),
        "apt-get install haproxy",
    ) {
        return;
    }
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let work = base_dir();
    let (trusted, untrusted) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let public_key = work.path().join("release.pub");
    std::fs::write(&public_key, trusted.public_key().to_string()).unwrap();
    let client_ = gp_host::hub::Client::new(anonymous());
    let namespace = gp_host::hub::Namespace::parse(&format!("{host}/team")).unwrap();
    for (_, package) in packages(work.path(), &trusted, &untrusted) {
        client_
            .push(
                &package,
                &namespace.reference("rollout"),
                &Default::default(),
            )
            .unwrap();
    }
    crate::hub::retag(&host, "team/rollout", "1.0.0", "stable");
    let reference = format!("oci://{host}/team/rollout:stable");
    let replicas: Vec<Replica> = (0..3).map(|_| replica(&reference, &public_key)).collect();
    for replica in &replicas {
        crate::harness::eventually(
            "a replica ready with 1.0.0",
            Duration::from_secs(30),
            || crate::http::get(replica.plugins, "/-/readyz").status == 200,
        );
        assert_eq!(served(replica.plugins).as_deref(), Some("1.0.0"));
    }
    let port = free_port();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.plugins).collect();
    let _haproxy = haproxy(work.path(), port, &addrs);
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let said = || std::fs::read_to_string(work.path().join("haproxy.log")).unwrap_or_default();
    for _ in 0..100 {
        if served(front).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        served(front).is_some(),
        "haproxy does not answer on {front}:\n{}",
        said()
    );

    let stop = Arc::new(AtomicBool::new(false));
    // However the test ends, the client loop ends with it.
    let _stop_on_exit = StopOnDrop(Arc::clone(&stop));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let looping = {
        let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
        std::thread::spawn(move || client(front, stop, seen))
    };
    let mut rounds = Vec::new();
    for version in ["2.0.0", "3.0.0", "4.0.0"] {
        rounds.push((version, roll(&host, version, &replicas)));
    }
    // A version signed by a key the replicas do not trust: each refuses it, keeps serving
    // 4.0.0, stays ready, and says why in its /-/readyz.
    crate::hub::retag(&host, "team/rollout", "7.0.0", "stable");
    for replica in &replicas {
        crate::harness::eventually(
            "the untrusted version refused",
            Duration::from_secs(10),
            || {
                !crate::http::get(replica.plugins, "/-/readyz").json()["refusing"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            },
        );
        let ready = crate::http::get(replica.plugins, "/-/readyz");
        assert_eq!(ready.status, 200);
        let refusal = &ready.json()["refusing"][0];
        assert_eq!(refusal["plugin"], "rollout");
        let reason = refusal["reason"].as_str().unwrap();
        assert!(
            reason.contains("its signature does not verify with any trusted key"),
            "{reason}"
        );
        assert_eq!(served(replica.plugins).as_deref(), Some("4.0.0"));
    }
    for version in ["5.0.0", "6.0.0"] {
        rounds.push((version, roll(&host, version, &replicas)));
    }
    // The rollback: the tag moved back.
    rounds.push(("5.0.0 (rollback)", roll(&host, "5.0.0", &replicas)));
    // A last stretch on the version rolled back to, then the loop ends.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Release);
    looping.join().unwrap();

    let seen = seen.lock().unwrap();
    let mut report = format!(
        "fleet: {} requests through haproxy, {} failed; versions answered {:?}\n",
        seen.requests,
        seen.failed.len(),
        seen.versions
    );
    for (version, times) in &rounds {
        let times: Vec<String> = times
            .iter()
            .map(|t| format!("{} ms", t.as_millis()))
            .collect();
        report.push_str(&format!(
            "fleet: stable -> {version}: replicas converged after {}\n",
            times.join(", ")
        ));
    }
    // Not eprintln!: the harness hides what a passing test prints.
    let _ = std::io::stderr().write_all(report.as_bytes());
    assert!(
        seen.failed.is_empty(),
        "{:?}\n{report}",
        &seen.failed[..seen.failed.len().min(10)]
    );
    assert!(seen.requests > 100, "{report}");
    assert!(!seen.versions.contains_key("7.0.0"), "{report}");
    for (version, times) in &rounds {
        for time in times {
            assert!(
                *time <= CONVERGED_WITHIN,
                "stable -> {version}: {time:?}\n{report}"
            );
        }
    }
}
