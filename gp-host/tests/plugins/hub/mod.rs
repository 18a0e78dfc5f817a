//! The hub against a real registry: Debian's `docker-registry` (Docker Distribution 2.8),
//! started on 127.0.0.1 with a storage folder of its own, anonymous or behind Basic auth
//! (htpasswd, bcrypt). Real plugins are built, packed, pushed, found, installed by name and
//! range into a clean GP_HOME, and called; every bad registry gets its message and leaves
//! nothing installed. What a real registry will not do (lie about digests and sizes, lack a
//! catalog) is served by a small fake one on 127.0.0.1.
//!
//! Without `docker-registry` on the PATH these tests fail, saying what to install, unless
//! `GP_REGISTRY_TESTS=skip` (then they are skipped, and the skip is said on stderr).
//!
//! This file holds what the tests share: starting a registry, running `gp` with a GP_HOME
//! of the test's own, packing the plugins to push, and writing to a registry as other tools
//! do; each test file pins one behaviour.

mod auth;
mod follow;
mod immutable;
mod install_edges;
mod leftovers;
mod refusals;
mod round_trip;
mod signatures;
mod usage;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gp_host::package;
use sha2::{Digest, Sha256};

use crate::harness::{base_dir, example};

const USER: &str = "alice";

const PASSWORD: &str = "correct-horse";

/// `htpasswd -Bbn -C 5 alice correct-horse`.
const HTPASSWD: &str = "alice:$2y$05$Vbhb8HDFCswNaHZXZOS3mu/XLaVB1S7fUgXkXgccLMngYrr0hRsEm\n";

/// A running `docker-registry`, killed when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// The file the registry stores the blob `digest` in (`sha256:…`): what a test tampers
    /// with to make it serve other bytes than the digest names.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `docker-registry` program, or `None` (said on stderr) when it is missing and
/// `GP_REGISTRY_TESTS=skip`; a failure when it is missing otherwise.
fn registry_program() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("docker-registry"))
            .find(|p| p.is_file())
    });
    let missing = found.is_none().then(|| {
        "`docker-registry` (Debian's package, Docker Distribution 2.8, on the PATH)".to_owned()
    });
    if !crate::harness::tool_present(
        "GP_REGISTRY_TESTS",
        missing,
        "apt-get install docker-registry",
    ) {
        return None;
    }
    found
}

/// How a test registry authenticates.
pub enum Auth {
    None,
    /// htpasswd: `alice` / [`PASSWORD`].
    Basic,
    /// Bearer tokens from `realm`, signed by the certificate `pem` holds.
    Token {
        realm: String,
        pem: String,
    },
}

const TOKEN_SERVICE: &str = "gp-test-registry";

const TOKEN_ISSUER: &str = "gp-test-issuer";

/// Starts a registry with `auth`, allowing deletes if `delete`.
pub fn start_registry(auth: Auth, delete: bool) -> Option<Registry> {
    let program = registry_program()?;
    for _attempt in 0..3 {
        let dir = base_dir();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A header of this registry's own: the probe below knows it reached this one, not
        // another test's that took the port meanwhile.
        let marker = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {delete}\nhttp:\n  addr: 127.0.0.1:{port}\n  headers:\n    X-Gp-Test: [\"{marker}\"]\n",
            dir.path().join("data").display()
        );
        match &auth {
            Auth::None => {}
            Auth::Basic => {
                std::fs::write(dir.path().join("htpasswd"), HTPASSWD).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: gp-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                ));
            }
            Auth::Token { realm, pem } => {
                std::fs::write(dir.path().join("token.pem"), pem).unwrap();
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    dir.path().join("token.pem").display()
                ));
            }
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut child = Command::new(&program)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if let Ok(response) = ureq::get(format!("http://{host}/v2/"))
                .config()
                .http_status_as_error(false)
                .build()
                .call()
            {
                let ours = response
                    .headers()
                    .get("x-gp-test")
                    .is_some_and(|v| v.as_bytes() == marker.as_bytes());
                if ours && matches!(response.status().as_u16(), 200 | 401) {
                    return Some(Registry { child, host, dir });
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "docker-registry on port {port} did not start: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
    }
    panic!("docker-registry did not start in 3 attempts");
}

/// A GP_HOME and a Docker config folder of the test's own.
struct Env {
    home: tempfile::TempDir,
    docker: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    fn new() -> Env {
        Env {
            home: base_dir(),
            docker: base_dir(),
        }
    }

    fn gp(&self, args: &[&str], stdin: &str) -> Run {
        self.gp_logging(args, stdin, "")
    }

    /// `gp` logging everything (GP_LOG=trace), its dependencies' records included.
    fn gp_with_log(&self, args: &[&str], stdin: &str) -> Run {
        self.gp_logging(args, stdin, "trace")
    }

    fn gp_logging(&self, args: &[&str], stdin: &str, log: &str) -> Run {
        self.gp_in(None, args, stdin, log)
    }

    /// `gp` run in the folder `cwd` (default: the test's), logging at `log` (none if empty).
    fn gp_in(&self, cwd: Option<&Path>, args: &[&str], stdin: &str, log: &str) -> Run {
        use std::io::Write;
        let mut command = Command::new(env!("CARGO_BIN_EXE_gp"));
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        if log.is_empty() {
            command.env_remove("GP_LOG");
        } else {
            command.env("GP_LOG", log);
        }
        let mut child = command
            .args(args)
            .env("GP_HOME", self.home.path())
            .env("DOCKER_CONFIG", self.docker.path())
            .env_remove("GP_REGISTRY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn plugins(&self) -> PathBuf {
        self.home.path().join("plugins")
    }
}

/// Options for a client that talks to the test registries anonymously.
pub fn anonymous() -> gp_host::hub::ClientOptions {
    let mut options = gp_host::hub::ClientOptions::default();
    options.credentials = gp_host::hub::Credentials::Anonymous;
    options
}

/// A plugin packed, unsigned: `sample` (the example) or a lifecycle fixture (`counter-v1`,
/// `counter-v2`: plugin `counter` 1.0.0 and 2.0.0, which sets `version`). Returns the package
/// file and its bytes.
pub fn packed(what: &str, into: &Path) -> (PathBuf, Vec<u8>) {
    let staging = base_dir();
    let folder = if what == "sample" {
        gp_host::build::install_library(example(what), staging.path()).unwrap();
        staging.path().join("sample")
    } else {
        crate::harness::install_lifecycle(staging.path(), what, what)
    };
    let path = into.join(format!("{what}.plg"));
    package::pack(&folder, &path, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Pushes `counter` 1.0.0 and 2.0.0 (the `counter-v1` and `counter-v2` fixtures) to
/// `team/counter` at `host`, anonymously; returns each package's bytes and manifest digest.
fn push_counters(host: &str) -> Vec<(Vec<u8>, String)> {
    let scratch = base_dir();
    let client = gp_host::hub::Client::new(anonymous());
    let ns = gp_host::hub::Namespace::parse(&format!("{host}/team")).unwrap();
    ["counter-v1", "counter-v2"]
        .into_iter()
        .map(|fixture| {
            let (package, bytes) = packed(fixture, scratch.path());
            let pushed = client
                .push(&package, &ns.reference("counter"), &Default::default())
                .unwrap();
            (bytes, pushed.reference.digest.unwrap())
        })
        .collect()
}

/// `gp push PACKAGE --registry NS` as alice (`--password-stdin`), logging everything.
fn push_as_alice(env: &Env, package: &Path, ns: &str) -> Run {
    env.gp_with_log(
        &[
            "push",
            package.to_str().unwrap(),
            "--registry",
            ns,
            "--username",
            USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    )
}

/// The `digest sha256:…` line `gp push` prints.
fn pushed_digest(run: &Run) -> String {
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let digest = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .unwrap_or_else(|| panic!("no digest line: {}", run.stdout))
        .to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    digest
}

/// What is in a folder, hidden entries included (a download left behind would show).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".gp-runtime")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Uploads `blob` to `repository` (monolithic), anonymously; returns its digest.
fn put_blob(host: &str, repository: &str, blob: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256(blob));
    let started = ureq::post(format!("http://{host}/v2/{repository}/blobs/uploads/"))
        .send_empty()
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let separator = if location.contains('?') { '&' } else { '?' };
    ureq::put(format!("{location}{separator}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .send(blob)
        .unwrap();
    digest
}

/// Pushes a (layerless) container image to `repository:tag`, as `docker push` would put one
/// under a plugin's name; returns its manifest.
fn push_image(host: &str, repository: &str, tag: &str) -> String {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = put_blob(host, repository, config);
    let image = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    ureq::put(format!("http://{host}/v2/{repository}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(image.as_bytes())
        .unwrap();
    image
}

/// The manifest `reference` (a tag or a digest) of `repository` names, as it is stored.
fn manifest_bytes(host: &str, repository: &str, reference: &str) -> Vec<u8> {
    ureq::get(format!(
        "http://{host}/v2/{repository}/manifests/{reference}"
    ))
    .header("accept", "application/vnd.oci.image.manifest.v1+json")
    .call()
    .unwrap()
    .into_body()
    .read_to_vec()
    .unwrap()
}

/// Copies the manifest `from:tag` to `to:tag`, its blobs mounted across (as registries do),
/// as a tool other than `gp push` could: the same package under another plugin's name.
/// Returns the manifest.
pub fn copy_across(host: &str, from: &str, tag: &str, to: &str) -> Vec<u8> {
    let manifest = manifest_bytes(host, from, tag);
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    for blob in [&parsed["config"], &parsed["layers"][0]] {
        let digest = blob["digest"].as_str().unwrap();
        let mounted = ureq::post(format!(
            "http://{host}/v2/{to}/blobs/uploads/?mount={digest}&from={from}"
        ))
        .send_empty()
        .unwrap();
        assert_eq!(mounted.status().as_u16(), 201);
    }
    ureq::put(format!("http://{host}/v2/{to}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .unwrap();
    manifest
}

/// Puts the manifest `tag` of `repository` pointing at what `from` (a tag of the same
/// repository) points at, as `docker tag` + push or `oras tag` do.
pub fn retag(host: &str, repository: &str, from: &str, tag: &str) {
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let manifest = manifest_bytes(host, repository, from);
    ureq::put(format!("http://{host}/v2/{repository}/manifests/{tag}"))
        .header("content-type", accept)
        .send(&manifest[..])
        .unwrap();
}
