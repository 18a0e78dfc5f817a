//! The hub against a real registry on loopback: pushing, pulling and installing
//! `bench-getset` (its release build packed as a `.plg`) through Debian's `docker-registry`
//! (Docker Distribution 2.8), next to installing the same package over plain HTTP and from a
//! local file.
//!
//! Needs `docker-registry` on the PATH (`apt-get install docker-registry`); without it the
//! bench says so and measures nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use gp_benches::{BenchPlugins, GETSET};
use gp_host::hub::{Client, ClientOptions, Credentials, Namespace};
use gp_host::{InstallOptions, Manager};

/// A `docker-registry` on a loopback port, storing into a temporary folder; killed on drop.
struct Registry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Option<Registry> {
    let program = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("docker-registry"))
            .find(|p| p.is_file())
    });
    let Some(program) = program else {
        eprintln!("hub bench skipped: `docker-registry` is not on the PATH (apt-get install docker-registry)");
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("gp-bench-registry-")
        .tempdir()
        .expect("temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .expect("registry config");
    let child = Command::new(program)
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry starts");
    let registry = Registry {
        child,
        host: format!("127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&registry.host).is_ok() {
            return Some(registry);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("docker-registry did not start on {}", registry.host);
}

/// A static HTTP/1.1 server on loopback answering every request with `body`. Returns its
/// base URL.
fn static_server(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("a stream"));
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )
                .and_then(|()| stream.write_all(&body));
        }
    });
    url
}

/// `bench-getset` packed, in `dir`.
fn package(dir: &Path) -> PathBuf {
    let plugins = BenchPlugins::get();
    let path = dir.join(format!("{GETSET}.plg"));
    gp_host::package::pack(&plugins.plugin_dir(GETSET), &path, None).expect("pack");
    path
}

/// Installs `url` into a fresh base directory with a fresh manager.
fn install(url: &str, options: &InstallOptions<'_>) {
    let base = tempfile::Builder::new()
        .prefix("gp-bench-install-")
        .tempdir()
        .expect("temporary directory");
    let manager = Manager::new(base.path());
    manager.install(url, options).expect("install");
}

fn hub(c: &mut Criterion) {
    let Some(registry) = start_registry() else {
        return;
    };
    let scratch = tempfile::Builder::new()
        .prefix("gp-bench-hub-")
        .tempdir()
        .expect("temporary directory");
    let plg = package(scratch.path());
    let bytes = std::fs::read(&plg).expect("the package");
    let library = std::fs::metadata(BenchPlugins::get().installed_library(GETSET))
        .expect("the library")
        .len();
    println!(
        "hub bench: {GETSET}, library {library} bytes, package {} bytes, registry {}",
        bytes.len(),
        registry.host
    );
    let mut client_options = ClientOptions::default();
    client_options.credentials = Credentials::Anonymous;
    let client = Client::new(client_options);
    let namespace = Namespace::parse(&format!("{}/bench", registry.host)).expect("namespace");
    let pinned = client
        .push(&plg, &namespace.reference(GETSET), &Default::default())
        .expect("push")
        .reference
        .to_string();
    let http = format!("{}/{GETSET}.plg", static_server(bytes));
    let mut options = InstallOptions::default();
    options.hub = Some(&client);

    let mut group = c.benchmark_group("hub");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    // Every iteration a repository of its own: both blobs uploaded, then the manifest.
    let fresh = AtomicUsize::new(0);
    group.bench_function("push/new_repository", |b| {
        b.iter(|| {
            let n = fresh.fetch_add(1, Ordering::Relaxed);
            let namespace =
                Namespace::parse(&format!("{}/push{n}", registry.host)).expect("namespace");
            client
                .push(&plg, &namespace.reference(GETSET), &Default::default())
                .expect("push")
        })
    });
    // The registry has both blobs: two HEADs and the manifest.
    group.bench_function("push/unchanged", |b| {
        b.iter(|| {
            client
                .push(&plg, &namespace.reference(GETSET), &Default::default())
                .expect("push")
        })
    });
    let reference = gp_host::hub::Reference::parse(&pinned).expect("reference");
    group.bench_function("pull", |b| {
        b.iter(|| {
            let file = tempfile::tempfile_in(scratch.path()).expect("a file");
            client.pull(&reference, &file, None).expect("pull")
        })
    });
    group.bench_function("install/oci", |b| b.iter(|| install(&pinned, &options)));
    group.bench_function("install/http", |b| {
        b.iter(|| install(&http, &InstallOptions::default()))
    });
    let local = plg.to_string_lossy().into_owned();
    group.bench_function("install/file", |b| {
        b.iter(|| install(&local, &InstallOptions::default()))
    });
    group.finish();
}

criterion_group!(benches, hub);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
