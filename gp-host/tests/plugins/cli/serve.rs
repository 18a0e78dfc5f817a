//! `gp serve` and `gp stats`: watching the base directory, `--dev` reloads, plugin routes and
//! the admin listener, TLS for a remote admin, slow clients, SIGTERM.

use std::path::Path;

use super::{gp, stderr, stdout};

/// A `gp serve` process, killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// Where it serves plugin routes.
    pub plugins: String,
    /// Where it serves metrics read-only (`--metrics`), if it does.
    pub scrape: Option<String>,
    /// What it prints after its addresses, line by line.
    pub lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends gp serve SIGTERM.
    pub fn terminate(&self) {
        crate::harness::send_sigterm(&self.child);
    }

    /// Its exit status, waited for until `deadline` at most.
    pub fn exit_status(&mut self, deadline: std::time::Instant) -> std::process::ExitStatus {
        crate::harness::exit_status(&mut self.child, deadline, "gp serve did not stop")
    }

    /// Runs `gp serve BASE --watch EXTRA.. --listen 127.0.0.1:0 --admin 127.0.0.1:0` and waits
    /// until every plugin folder was tried (its `ready:` line); returns the server, the admin
    /// address and what it printed after the addresses (the load report and the routes).
    pub fn start(base: &Path, extra: &[&str]) -> (Server, String, Vec<String>) {
        Server::start_logging(base, extra, std::process::Stdio::null())
    }

    /// [`Server::start`], its standard error going to `stderr`.
    pub fn start_logging(
        base: &Path,
        extra: &[&str],
        stderr: std::process::Stdio,
    ) -> (Server, String, Vec<String>) {
        let (mut server, addr) = Server::start_listening(base, extra, stderr);
        let mut printed = Vec::new();
        loop {
            let line = server
                .lines
                .next()
                .expect("gp serve says when every plugin was tried")
                .unwrap();
            if line.starts_with("ready: ") {
                break;
            }
            printed.push(line);
        }
        (server, addr, printed)
    }

    /// [`Server::start_logging`], returning as soon as both listeners listen (before the
    /// plugins have loaded), with the admin address.
    pub fn start_listening(
        base: &Path,
        extra: &[&str],
        stderr: std::process::Stdio,
    ) -> (Server, String) {
        use std::io::BufRead;

        let mut child = crate::harness::gp_serve()
            .arg(base)
            .arg("--watch")
            .args(extra)
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("run gp serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut plugins = String::new();
        let mut scrape = None;
        let addr = loop {
            let line = lines.next().expect("gp serve prints its address").unwrap();
            let metrics = line
                .strip_prefix("serving metrics on http://")
                .or_else(|| line.strip_prefix("serving metrics on https://"));
            if let Some(rest) = metrics {
                let mut managing = lines
                    .next()
                    .expect("gp serve says where to manage")
                    .unwrap();
                if let Some(at) = managing.strip_prefix("serving metrics read-only on http://") {
                    scrape = Some(at.split('/').next().unwrap().to_owned());
                    managing = lines
                        .next()
                        .expect("gp serve says where to manage")
                        .unwrap();
                }
                assert!(
                    managing.starts_with("managing plugins at http"),
                    "{managing}"
                );
                break rest.split('/').next().unwrap().to_owned();
            }
            if let Some(rest) = line.strip_prefix("serving plugin routes on http://") {
                plugins = rest.split('/').next().unwrap().to_owned();
                continue;
            }
            panic!("gp serve printed {line:?} before its addresses");
        };
        let server = Server {
            child,
            plugins,
            scrape,
            lines,
        };
        (server, addr)
    }
}

#[test]
fn serve_watches_the_directory_and_stats_reads_its_metrics() {
    let base = crate::harness::base_dir();
    crate::harness::install_lifecycle(base.path(), "counter-v1", "counter");
    let (_server, addr, printed) = Server::start(base.path(), &[]);
    assert_eq!(
        printed,
        [
            "FOLDER   STATUS     PLUGIN / ERROR",
            "counter  loaded     counter 1.0.0"
        ]
    );

    let table = gp(&[&"stats", &"--addr", &addr]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert_eq!(
        stdout(&table),
        "PLUGIN   VERSION  CALLS  ERRORS  PANICS  IN FLIGHT  P50  P90  P99  LOADS  UPGRADES  LAST ERROR\n\
         counter  1.0.0    0      0       0       0          -    -    -    1      0         -\n"
    );

    // A newer build dropped into the folder is picked up by the watcher.
    std::fs::remove_dir_all(base.path().join("counter")).unwrap();
    let staging = crate::harness::base_dir();
    let v2 = crate::harness::install_lifecycle(staging.path(), "counter-v2", "counter");
    std::fs::rename(v2, base.path().join("counter")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let json = gp(&[&"stats", &"--addr", &addr, &"--json"]);
        let stats: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        if stats[0]["version"] == "2.0.0" {
            assert_eq!(stats[0]["upgrades"], 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no upgrade: {stats}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let metrics = http_get(&format!("http://{addr}/metrics"));
    assert!(
        metrics.contains("gp_plugin_loaded{plugin=\"counter\",version=\"2.0.0\"} 1"),
        "{metrics}"
    );
}

#[test]
fn stats_says_what_to_do_when_no_server_runs() {
    let output = gp(&[&"stats", &"--addr", &"127.0.0.1:9"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.starts_with("error: http://127.0.0.1:9/stats: ")
            && message.ends_with("; is `gp serve --admin 127.0.0.1:9` running?\n"),
        "{message}"
    );
}

/// A plain HTTP GET, as a scraper would do it.
pub fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_dev_reloads_a_rebuild_of_the_same_version() {
    let base = crate::harness::base_dir();
    crate::harness::install_lifecycle(base.path(), "counter-v1", "counter");
    let (_server, addr, _) = Server::start(base.path(), &["--dev"]);
    let stats = || {
        let json = gp(&[&"stats", &"--addr", &addr, &"--json"]);
        serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap()
    };
    let first = stats()[0]["build"].clone();
    assert!(first.is_string(), "{}", stats());

    // Another build of counter 1.0.0 replaces the folder: with --dev it serves, no bump.
    std::fs::remove_dir_all(base.path().join("counter")).unwrap();
    let staging = crate::harness::base_dir();
    let rebuild = crate::harness::install_lifecycle(staging.path(), "counter-rebuild", "counter");
    std::fs::rename(rebuild, base.path().join("counter")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = stats();
        if now[0]["build"] != first {
            assert_eq!(
                (&now[0]["version"], &now[0]["upgrades"]),
                (&"1.0.0".into(), &1.into())
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reload: {now}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn serve_answers_plugin_routes_counts_them_on_the_admin_listener_and_stops_on_sigterm() {
    use std::io::{Read, Write};

    let base = crate::harness::base_dir();
    gp_host::build::install_library(crate::harness::example("sample"), base.path()).unwrap();
    let (mut server, admin, printed) = Server::start(base.path(), &[]);
    let plugins = server.plugins.clone();
    assert_eq!(
        printed[2..],
        [
            format!("route GET http://{plugins}/api/plugin/sample/:id -> sample (plugin.get)"),
            format!("route POST http://{plugins}/api/plugin/samples -> sample (plugin.post)"),
        ]
    );
    let fetch = |addr: &str, path: &str| {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let reply = fetch(&plugins, "/api/plugin/sample/7");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.ends_with(r#"{"greeting":"sample plugin says: hello, sample 7","id":"7"}"#),
        "{reply}"
    );
    assert!(fetch(&plugins, "/-/healthz").ends_with(r#"{"plugins":1,"status":"ok"}"#));
    // Metrics are on the admin listener only.
    assert!(fetch(&plugins, "/metrics").starts_with("HTTP/1.1 404 "));
    let metrics = fetch(&admin, "/metrics");
    assert!(
        metrics.contains(
            "gp_http_requests_total{plugin=\"sample\",label=\"plugin.get\",status=\"200\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("gp_plugin_calls_total{plugin=\"sample\"} 1\n"),
        "{metrics}"
    );

    server.terminate();
    let line = server.lines.next().unwrap().unwrap();
    assert_eq!(
        line,
        "shutting down: finishing requests in flight (up to 10s), then unloading"
    );
    let status = server.exit_status(std::time::Instant::now() + std::time::Duration::from_secs(20));
    assert!(status.success(), "{status}");
}

// Long: one server's life read top to bottom: a request logged, two calls that will not stop,
// SIGTERM, and what the log says at the end.
#[test]
fn serve_exits_on_sigterm_within_its_bounds_naming_the_plugins_that_ignore_cancellation() {
    use std::io::{Read, Write};

    let base = crate::harness::base_dir();
    gp_host::build::install_library(crate::web_fixture::web("web-v1"), base.path()).unwrap();
    crate::harness::install_lifecycle(base.path(), "counter-v1", "counter");
    let logs = crate::harness::base_dir();
    let log = logs.path().join("stderr");
    let bounds = [
        "--grace",
        "1s",
        "--drain-timeout",
        "1s",
        "--hook-timeout",
        "1s",
    ];
    let stderr = std::fs::File::create(&log).unwrap();
    let (mut server, admin, _) = Server::start_logging(base.path(), &bounds, stderr.into());
    // One request answered, for the access log.
    let mut stream = std::net::TcpStream::connect(&server.plugins).unwrap();
    write!(
        stream,
        "GET /web/empty HTTP/1.1\r\nHost: x\r\nX-Request-Id: logged-1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 204 "), "{reply}");
    // A call that busy-loops, ignoring cancellation (for 60 s, unless the process ends).
    let plugins = server.plugins.clone();
    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&plugins).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(stream, "GET /web/spin HTTP/1.1\r\nHost: {plugins}\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
    });
    // And a test call through the management API that sleeps 20 s, ignoring cancellation, in
    // `counter`, which has an on_unload: answered 504 at its timeout, it keeps running.
    let token = std::fs::read_to_string(base.path().join(".gp-runtime/admin-token")).unwrap();
    let body = r#"{"label": "stubborn", "values": {"ms": 20000}, "timeout_ms": 300}"#;
    let mut stream = std::net::TcpStream::connect(&admin).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/plugins/counter/invoke HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token.trim(),
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 504 ")
            && reply.ends_with(r#"{"error":"plugin `counter` did not return within 300 ms and is still running: its call was cancelled, but the plugin has not stopped (its thread stays busy until it does)"}"#),
        "{reply}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let json = gp(&[&"stats", &"--addr", &admin, &"--json"]);
        let stats: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        if stats[0]["in_flight"] == 1 && stats[1]["in_flight"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no call: {stats}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let signalled = std::time::Instant::now();
    server.terminate();
    let status = server.exit_status(signalled + std::time::Duration::from_secs(20));
    let took = signalled.elapsed();
    // --grace + --drain-timeout + --hook-timeout, and a little for the rest.
    assert!(
        took < std::time::Duration::from_secs(5),
        "gp serve stopped {took:?} after SIGTERM"
    );
    assert_eq!(status.code(), Some(3), "{status}");
    let log = std::fs::read_to_string(&log).unwrap();
    // The access line, as the text the log's other lines are.
    assert!(
        log.contains(" INFO gp::access: request method=GET path=/web/empty status=204 plugin=web label=empty request_id=logged-1 micros="),
        "{log}"
    );
    assert!(
        log.contains("error: plugin `counter` 1.0.0 still runs 1 call(s) at the end of --drain-timeout (1s): exiting without waiting for them, and without running its on_unload\n"),
        "{log}"
    );
    assert!(
        log.contains("error: plugin `web` 1.0.0 still runs 1 call(s) at the end of --drain-timeout (1s): exiting without waiting for them\n"),
        "{log}"
    );
    client.join().unwrap();
}

#[test]
fn serve_refuses_a_remote_admin_without_tls_and_signatures_and_serves_it_over_tls() {
    use std::io::{Read, Write};

    let base = crate::harness::base_dir();
    let dir = base.path().to_owned();
    let serve = |extra: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"serve", &dir, &"--listen", &"127.0.0.1:0"];
        for arg in extra {
            args.push(arg);
        }
        gp(&args)
    };
    // Refused before anything is bound.
    let plain = serve(&["--admin", "0.0.0.0:0"]);
    assert!(!plain.status.success());
    assert_eq!(
        stderr(&plain),
        "error: --admin 0.0.0.0:0 is not a loopback address, which needs TLS (--admin-tls-cert and --admin-tls-key): the management API can upgrade plugins, so a leaked token means running code on this machine\n"
    );
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (base.path().join("admin.crt"), base.path().join("admin.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let unsigned = serve(&[
        "--admin",
        "0.0.0.0:0",
        "--admin-tls-cert",
        &cert_arg,
        "--admin-tls-key",
        &key_arg,
    ]);
    assert!(!unsigned.status.success());
    assert_eq!(
        stderr(&unsigned),
        "error: --admin 0.0.0.0:0 is not a loopback address, which needs signed packages (--public-key): the management API can upgrade plugins, so a leaked token means running code on this machine\n"
    );
    let not_a_cert = serve(&["--admin-tls-cert", &key_arg, "--admin-tls-key", &key_arg]);
    assert_eq!(
        stderr(&not_a_cert),
        format!("error: {key_arg}: holds no certificate (-----BEGIN CERTIFICATE-----)\n")
    );

    // On loopback with a certificate: the API answers over TLS, to a client that trusts it.
    let (_server, admin, _) = Server::start(
        base.path(),
        &[
            "--admin-tls-cert",
            &cert_arg,
            "--admin-tls-key",
            &key_arg,
            "--idle-timeout",
            "500ms",
        ],
    );
    let token = std::fs::read_to_string(base.path().join(".gp-runtime/admin-token")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connection =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let socket = std::net::TcpStream::connect(&admin).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    write!(
        tls,
        "GET /api/v1/healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token.trim()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = tls.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with(r#"{"status":"ok"}"#), "{reply}");

    // A client that connects and never starts its handshake is closed at the idle timeout.
    let mut silent = std::net::TcpStream::connect(&admin).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let read = silent.read_to_end(&mut sink);
    let waited = started.elapsed();
    assert!(read.is_ok(), "the connection was not closed: {read:?}");
    assert!(
        waited >= std::time::Duration::from_millis(400)
            && waited < std::time::Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[test]
fn serve_closes_connections_that_do_not_finish_their_request_head_in_time() {
    use std::io::Write;

    let base = crate::harness::base_dir();
    let (server, admin, _) = Server::start(base.path(), &["--header-timeout", "300ms"]);
    for addr in [server.plugins.clone(), admin] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // A slow-loris client: a request line and one header, then nothing.
        write!(stream, "GET /-/healthz HTTP/1.1\r\nHost: {addr}\r\n").unwrap();
        let reply = closed_after_300ms(&mut stream, &addr);
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "{addr}: {reply}"
        );
    }
}

#[test]
fn serve_closes_connections_that_send_nothing_within_the_idle_timeout() {
    let base = crate::harness::base_dir();
    let (server, admin, _) = Server::start(base.path(), &["--idle-timeout", "300ms"]);
    for addr in [server.plugins.clone(), admin] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // Connected, then nothing at all.
        let reply = closed_after_300ms(&mut stream, &addr);
        assert!(
            reply.is_empty(),
            "{addr}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
}

/// Reads `stream` (from `addr`) to its end: what the server sent before closing it, having
/// asserted that it closed it, after a timeout of 300 ms (between 250 ms and 5 s).
fn closed_after_300ms(stream: &mut std::net::TcpStream, addr: &str) -> Vec<u8> {
    use std::io::Read;

    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let read = stream.read_to_end(&mut reply);
    let waited = started.elapsed();
    assert!(
        read.is_ok(),
        "{addr}: the connection was not closed: {read:?}"
    );
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(5),
        "{addr}: closed after {waited:?}"
    );
    reply
}
