//! The `gp` binary, driven as a user would.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{base_dir_with, example, fixture, Interface};

fn gp(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
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

#[test]
fn manifest_prints_the_plugin_json_that_matches_the_binary() {
    let output = gp(&[&"manifest", &example("dispatch")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest = gp_host::Manifest::from_plugin_json(&stdout(&output)).unwrap();
    assert_eq!(manifest.name, "dispatch");
    let source = manifest.source.unwrap();
    assert_eq!(
        Path::new(&source.path),
        Path::new(example("dispatch").file_name().unwrap())
    );
}

#[test]
fn manifest_writes_a_file_a_manager_accepts() {
    let base = crate::harness::base_dir();
    let dir = base.path().join("dispatch");
    std::fs::create_dir(&dir).unwrap();
    let library = dir.join(example("dispatch").file_name().unwrap());
    std::fs::copy(example("dispatch"), &library).unwrap();
    let output = gp(&[&"manifest", &library, &"-o", &dir.join("plugin.json")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = gp_host::Manager::new(base.path()).load_plugins();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn inspect_shows_the_embedded_manifest_and_abi_version() {
    let output = gp(&[&"inspect", &example("sample")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "name:        sample\n\
             version:     0.1.0\n\
             gp-core:     {v} (this host: {v})\n\
             description: The seed's sample plugin: greets the Hello value it is given\n\
             maintainers: Steven Zou <loneghost1982@gmail.com>\n\
             home:        https://github.com/szlabs/go-plugin\n\
             routes:\n  \
             GET     /api/plugin/sample/:id           -> plugin.get\n  \
             POST    /api/plugin/samples              -> plugin.post\n\
             status:      loadable\n",
            v = gp_host::ABI_VERSION
        )
    );
}

#[test]
fn inspect_says_exactly_why_a_library_is_refused() {
    let output = gp(&[&"inspect", &fixture(Interface::OlderVersion)]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: plugin `version-mismatch` ({}) was built against an incompatible gp-core: the plugin uses gp-core 0.0.1, this host uses gp-core {}; rebuild the plugin against the host's gp-sdk\n",
            fixture(Interface::OlderVersion).display(),
            gp_host::ABI_VERSION
        )
    );
}

#[test]
fn list_prints_each_folder_with_its_status() {
    let base = base_dir_with(&["sample", "dispatch"]);
    std::fs::create_dir(base.path().join("broken")).unwrap();
    std::fs::write(base.path().join("broken/plugin.json"), "{").unwrap();
    let output = gp(&[&"list", &base.path()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed folder fails the command"
    );
    assert_eq!(
        stdout(&output),
        format!(
            "FOLDER    STATUS     PLUGIN / ERROR\n\
             broken    failed     {}: EOF while parsing an object at line 1 column 1\n\
             dispatch  loaded     dispatch 0.1.0\n\
             sample    loaded     sample 0.1.0\n",
            base.path().join("broken/plugin.json").display()
        )
    );
}

#[test]
fn call_prints_the_context_after_the_call() {
    let base = base_dir_with(&["dispatch"]);
    let output = gp(&[
        &"call",
        &base.path(),
        &"dispatch",
        &"--label",
        &"counter.add",
        &"--set",
        &"count=41",
        &"--set",
        &"note=\"kept\"",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"count": 42, "note": "kept", "result": 42})
    );
}

#[test]
fn call_reports_a_panic_through_the_host_log_only() {
    let base = base_dir_with(&["panicky"]);
    let output = gp(&[&"call", &base.path(), &"panicky", &"--label", &"boom"]);
    assert_eq!(output.status.code(), Some(1));
    // The plugin's own panic hook ("thread '...' panicked at ...") stays silent.
    assert_eq!(
        stderr(&output),
        "ERROR gp::plugin: plugin panicked: boom: asked for item 3 of 0 items (at examples/panicky/src/lib.rs:10:9) plugin=panicky\n\
         error: plugin `panicky` panicked: boom: asked for item 3 of 0 items (at examples/panicky/src/lib.rs:10:9)\n"
    );
}

#[test]
fn call_honours_the_timeout() {
    let base = base_dir_with(&["slow"]);
    let output = gp(&[&"call", &base.path(), &"slow", &"--timeout", &"50ms"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: call to plugin `slow` passed its deadline\n"
    );
}

#[test]
fn call_refuses_a_value_that_is_not_json() {
    let base = base_dir_with(&["sample"]);
    let output = gp(&[&"call", &base.path(), &"sample", &"--set", &"sample=hello"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with(
        "error: invalid value 'sample=hello' for '--set <KEY=JSON>': the value of \"sample\" is not JSON (expected value at line 1 column 1); quote strings, e.g. --set 'sample=\"text\"'\n"
    ), "{}", stderr(&output));
}

#[test]
fn call_names_the_failure_of_the_plugin_asked_for() {
    let base = base_dir_with(&["sample"]);
    let dir = base.path().join("sample");
    std::fs::write(dir.join("plugin.json"), "[]").unwrap();
    let output = gp(&[&"call", &base.path(), &"sample"]);
    assert_eq!(output.status.code(), Some(1));
    let last = stderr(&output).lines().last().unwrap().to_owned();
    assert_eq!(
        last,
        format!(
            "error: {}: a manifest is a JSON object ({{\"name\": ..., \"version\": ...}}), not an array",
            dir.join("plugin.json").display()
        )
    );
}

/// A plugin crate outside the workspace, depending on gp-sdk by path, built with plain
/// `cargo build`, given a plugin.json by `gp manifest`, and called by `gp call`.
#[test]
fn a_crate_outside_the_workspace_builds_and_is_called() {
    let library = fixture(Interface::Real);
    let base = crate::harness::base_dir();
    let dir = base.path().join("outside");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(library, dir.join(library.file_name().unwrap())).unwrap();
    let output = gp(&[&"manifest", &library, &"-o", &dir.join("plugin.json")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gp(&[&"call", &base.path(), &"outside", &"--set", &"n=21"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json, serde_json::json!({"n": 42}));
}

/// A `gp serve` process, killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// Where it serves plugin routes.
    pub plugins: String,
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
    /// Runs `gp serve BASE --watch EXTRA.. --listen 127.0.0.1:0 --admin 127.0.0.1:0`; returns
    /// the server, the admin address and what it printed before the addresses.
    pub fn start(base: &Path, extra: &[&str]) -> (Server, String, Vec<String>) {
        use std::io::BufRead;

        let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
            .arg("serve")
            .arg(base)
            .arg("--watch")
            .args(extra)
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .env_remove("GP_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run gp serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let mut plugins = String::new();
        let addr = loop {
            let line = lines.next().expect("gp serve prints its address").unwrap();
            let metrics = line
                .strip_prefix("serving metrics on http://")
                .or_else(|| line.strip_prefix("serving metrics on https://"));
            if let Some(rest) = metrics {
                let managing = lines
                    .next()
                    .expect("gp serve says where to manage")
                    .unwrap();
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
            printed.push(line);
        };
        let server = Server {
            child,
            plugins,
            lines,
        };
        (server, addr, printed)
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
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Runs `gp args` in `dir`, with cargo's target dir shared with the other test builds.
fn gp_in(dir: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(dir)
        .env_remove("GP_LOG")
        .envs(crate::harness::build_env())
        .output()
        .expect("run gp")
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

#[test]
fn new_build_pack_sign_serve_install_call_round_trip() {
    let work = crate::harness::base_dir();
    let w = work.path();
    let sdk = crate::harness::workspace().join("gp-sdk");

    let created = ok(gp_in(w, &[&"new", &"hello-gp", &"--sdk", &sdk]));
    assert!(
        created.starts_with("created plugin crate hello-gp/"),
        "{created}"
    );
    let krate = w.join("hello-gp");
    // The workspace's lock file, so the build reuses the dependencies the tests built.
    std::fs::copy(
        crate::harness::workspace().join("Cargo.lock"),
        krate.join("Cargo.lock"),
    )
    .unwrap();
    // The scaffold's own unit test passes as generated.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tested = Command::new(cargo)
        .args(["test", "--quiet"])
        .current_dir(&krate)
        .envs(crate::harness::build_env())
        .output()
        .unwrap();
    assert!(tested.status.success(), "{}", stderr(&tested));

    let built = ok(gp_in(&krate, &[&"build", &"--debug", &"-o", &"plugins"]));
    assert_eq!(built, "built hello-gp 0.1.0 -> plugins/hello-gp\n");
    let keys = ok(gp_in(w, &[&"keygen", &"signer"]));
    assert!(
        keys.starts_with("secret key: signer.key (keep it private)\npublic key: signer.pub = "),
        "{keys}"
    );
    let packed = ok(gp_in(
        w,
        &[
            &"pack",
            &"hello-gp/plugins/hello-gp",
            &"--sign",
            &"signer.key",
            &"-o",
            &"hello.plg",
        ],
    ));
    let sha256 = packed
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .expect("gp pack prints the sha256")
        .to_owned();
    assert!(
        packed.starts_with("packed hello-gp 0.1.0 -> hello.plg\n"),
        "{packed}"
    );
    let verified = ok(gp_in(
        w,
        &[&"verify", &"hello.plg", &"--public-key", &"signer.pub"],
    ));
    assert!(
        verified.starts_with(&format!(
            "hello.plg: hello-gp 0.1.0, sha256 {sha256}\nsigned by "
        )),
        "{verified}"
    );

    let url = crate::harness::http_server(
        [(
            "/plugins/hello.plg".to_owned(),
            crate::harness::Reply::Body(std::fs::read(w.join("hello.plg")).unwrap()),
        )]
        .into_iter()
        .collect(),
    );
    let installed = ok(gp_in(
        w,
        &[
            &"install",
            &format!("{url}/plugins/hello.plg"),
            &"--sha256",
            &sha256,
            &"--public-key",
            &"signer.pub",
            &"--dir",
            &"base",
        ],
    ));
    assert_eq!(
        installed,
        format!(
            "installed hello-gp 0.1.0 -> {}\n",
            w.join("base/hello-gp.plg").display()
        )
    );
    let called = ok(gp_in(
        w,
        &[
            &"call",
            &"base",
            &"hello-gp",
            &"--set",
            &"name=\"round trip\"",
        ],
    ));
    let values: serde_json::Value = serde_json::from_str(&called).unwrap();
    assert_eq!(values["greeting"], "hello round trip");

    // A wrong key is refused, and nothing is installed.
    let other = ok(gp_in(w, &[&"keygen", &"other"]));
    assert!(other.contains("other.pub"));
    let refused = gp_in(
        w,
        &[
            &"install",
            &format!("{url}/plugins/hello.plg"),
            &"--public-key",
            &"other.pub",
            &"--dir",
            &"base2",
        ],
    );
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused),
        format!("error: {url}/plugins/hello.plg: package refused: its signature does not verify with any trusted key: it was signed by another key, or changed after signing\n")
    );
    let left: Vec<_> = std::fs::read_dir(w.join("base2")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn gp_new_refuses_a_bad_name_and_an_existing_folder() {
    let work = crate::harness::base_dir();
    let bad = gp_in(work.path(), &[&"new", &"9lives"]);
    assert!(!bad.status.success());
    assert_eq!(
        stderr(&bad),
        "error: invalid plugin name \"9lives\": use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter\n"
    );
    assert!(!work.path().join("9lives").exists());
    std::fs::create_dir(work.path().join("taken")).unwrap();
    let taken = gp_in(work.path(), &[&"new", &"taken"]);
    assert_eq!(
        stderr(&taken),
        "error: taken: already exists; choose another name or remove it\n"
    );
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

    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let line = server.lines.next().unwrap().unwrap();
    assert_eq!(
        line,
        "shutting down: finishing requests in flight (up to 10s), then unloading"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gp serve did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
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
        &["--admin-tls-cert", &cert_arg, "--admin-tls-key", &key_arg],
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
}

#[test]
fn serve_closes_connections_that_do_not_finish_their_request_head_in_time() {
    use std::io::{Read, Write};

    let base = crate::harness::base_dir();
    let (server, admin, _) = Server::start(base.path(), &["--header-timeout", "300ms"]);
    for addr in [server.plugins.clone(), admin] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // A slow-loris client: a request line and one header, then nothing.
        write!(stream, "GET /-/healthz HTTP/1.1\r\nHost: {addr}\r\n").unwrap();
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
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "{addr}: {reply}"
        );
    }
}
