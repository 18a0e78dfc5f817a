//! The hub against a real registry: Debian's `docker-registry` (Docker Distribution 2.8),
//! started on 127.0.0.1 with a storage folder of its own, anonymous or behind Basic auth
//! (htpasswd, bcrypt). Real plugins are built, packed, pushed, found, installed by name and
//! range into a clean GP_HOME, and called; every bad registry gets its message and leaves
//! nothing installed. What a real registry will not do (lie about digests and sizes, lack a
//! catalog) is served by a small fake one on 127.0.0.1.
//!
//! Without `docker-registry` on the PATH these tests say so loudly and pass; with
//! `GP_REGISTRY_TESTS=required` (as `.ci/run` sets) they fail instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gp_host::hub::{Client, ClientOptions, Credentials, Namespace};
use gp_host::package::{self, Limits};
use gp_host::{Error, Manager};
use sha2::{Digest, Sha256};

use crate::harness::{base_dir, example, http_server, Reply};

const USER: &str = "alice";
const PASSWORD: &str = "correct-horse";
/// `htpasswd -Bbn -C 5 alice correct-horse`.
const HTPASSWD: &str = "alice:$2y$05$Vbhb8HDFCswNaHZXZOS3mu/XLaVB1S7fUgXkXgccLMngYrr0hRsEm\n";

/// A running `docker-registry`, killed when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `docker-registry` program, or `None` (said loudly) when it is missing and not required.
fn registry_program() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("docker-registry"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = std::env::var("GP_REGISTRY_TESTS").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "GP_REGISTRY_TESTS=required but `docker-registry` is not on the PATH: apt-get install docker-registry"
        );
        eprintln!(
            "\n\n*** SKIPPED: the hub's registry tests need Debian's `docker-registry` package (apt-get install docker-registry) ***\n"
        );
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
                    return Some(Registry {
                        child,
                        host,
                        _dir: dir,
                    });
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
        use std::io::Write;
        let mut command = Command::new(env!("CARGO_BIN_EXE_gp"));
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

/// Item 1 and the issue's "done when": push → search → install by name and range on a clean
/// GP_HOME → call; an upgrade by name; a pull pinned by digest gives the pushed bytes back;
/// a delete.
#[test]
fn push_search_install_by_range_call_pull_and_delete() {
    let Some(registry) = start_registry(Auth::None, true) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (counter1, counter1_bytes) = packed("counter-v1", scratch.path());
    let (counter2, counter2_bytes) = packed("counter-v2", scratch.path());
    let (sample, sample_bytes) = packed("sample", scratch.path());
    let ns = format!("{host}/team");

    let run = env.gp(&["push", counter1.to_str().unwrap(), "--registry", &ns], "");
    let digest1 = pushed_digest(&run);
    assert_eq!(
        run.stdout,
        format!(
            "pushed counter 1.0.0 ({} bytes, not signed) to oci://{ns}/counter:1.0.0\ndigest {digest1}\n",
            counter1_bytes.len()
        )
    );
    let digest2 =
        pushed_digest(&env.gp(&["push", counter2.to_str().unwrap(), "--registry", &ns], ""));
    // An explicit reference, its tag defaulting to the version.
    let run = env.gp(
        &[
            "push",
            sample.to_str().unwrap(),
            &format!("oci://{ns}/sample"),
        ],
        "",
    );
    let sample_digest = pushed_digest(&run);
    assert!(
        run.stdout.contains(&format!(
            "({} bytes, not signed) to oci://{ns}/sample:0.1.0\n",
            sample_bytes.len()
        )),
        "{}",
        run.stdout
    );
    // Pushing the same package again gives the same digest (nothing time-dependent in it).
    let again = env.gp(&["push", counter1.to_str().unwrap(), "--registry", &ns], "");
    assert_eq!(pushed_digest(&again), digest1);
    // A repository not named after the plugin is refused before anything is sent.
    let run = env.gp(
        &[
            "push",
            sample.to_str().unwrap(),
            &format!("oci://{ns}/other"),
        ],
        "",
    );
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/other: the repository's last component is `other` but the package holds the plugin `sample`: push it to a repository named after the plugin (`gp install sample@…` looks for it there)\n")
    );

    // A tag that names another version than the package's is refused.
    let run = env.gp(
        &[
            "push",
            counter1.to_str().unwrap(),
            &format!("oci://{ns}/counter:2.0.0"),
        ],
        "",
    );
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/counter:2.0.0: the tag `2.0.0` names version 2.0.0, but the package holds counter 1.0.0: a version tag must be the plugin's own version (gp install NAME@RANGE trusts it); tag it 1.0.0 or give a tag that is not a version, such as `stable`\n")
    );

    // Search: the catalog, tags and annotations.
    let run = env.gp(&["search", "--registry", &ns], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "NEWEST", "VERSIONS", "DESCRIPTION"]);
    assert_eq!(rows[1][..3], ["counter", "2.0.0", "2"], "{}", run.stdout);
    assert_eq!(rows[2][..3], ["sample", "0.1.0", "1"], "{}", run.stdout);
    assert_eq!(rows.len(), 3, "{}", run.stdout);
    assert!(
        run.stdout.contains("The seed's sample plugin"),
        "{}",
        run.stdout
    );
    let run = env.gp(&["search", "COUNT", "--registry", &ns, "--json"], "");
    let found: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["name"], "counter");
    assert_eq!(found[0]["versions"], serde_json::json!(["2.0.0", "1.0.0"]));
    let run = env.gp(&["search", "nothing-like-it", "--registry", &ns], "");
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            format!("no plugin in oci://{ns} matches `nothing-like-it`\n").as_str()
        )
    );

    // Install by range into a clean GP_HOME, then call.
    let run = env.gp(&["install", "counter@^1", "--registry", &ns], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "resolved counter@^1 to 1.0.0: oci://{ns}/counter:1.0.0@{digest1}\n"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stdout,
        format!(
            "installed counter 1.0.0 -> {}\n",
            env.plugins().join("counter.plg").display()
        )
    );
    let run = env.gp(&["call", "counter", "--no-preflight"], "");
    assert!(
        run.stdout.contains("\"version\": \"1.0.0\""),
        "{}{}",
        run.stdout,
        run.stderr
    );
    // A bare name is the newest version: an upgrade in place.
    let run = env.gp(
        &["install", "counter", "--registry", &ns, "--no-preflight"],
        "",
    );
    assert!(
        run.stderr.contains(&format!(
            "resolved counter@* to 2.0.0: oci://{ns}/counter:2.0.0@{digest2}\n"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(entries(&env.plugins()), ["counter.plg"]);
    assert_eq!(
        std::fs::read(env.plugins().join("counter.plg")).unwrap(),
        counter2_bytes
    );

    // A pull pinned by digest gives the pushed bytes back, verified.
    let out = scratch.path().join("out");
    let run = env.gp(
        &[
            "pull",
            &format!("oci://{ns}/counter@{digest1}"),
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        run.stdout,
        format!(
            "pulled counter 1.0.0 -> {}\nfrom oci://{ns}/counter@{digest1}\nsha256 {}\n",
            out.join("counter-1.0.0.plg").display(),
            sha256(&counter1_bytes)
        )
    );
    assert_eq!(
        std::fs::read(out.join("counter-1.0.0.plg")).unwrap(),
        counter1_bytes
    );
    assert_eq!(entries(&out), ["counter-1.0.0.plg"]);

    // Delete: asked for --yes without a terminal, then gone with its tag.
    let run = env.gp(&["delete", &format!("oci://{ns}/sample:0.1.0")], "");
    assert_eq!(
        run.stderr,
        format!("error: gp: deleting oci://{ns}/sample:0.1.0 removes it for everyone: pass --yes to delete without being asked\n")
    );
    let run = env.gp(
        &["delete", &format!("oci://{ns}/sample:0.1.0"), "--yes"],
        "",
    );
    assert_eq!(
        run.stdout,
        format!("deleted oci://{ns}/sample:0.1.0@{sample_digest}\n"),
        "{}",
        run.stderr
    );
    let run = env.gp(&["install", "sample", "--registry", &ns], "");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample: no version matches `*` (it has no version tags)\n")
    );
}

/// Item 3: Basic auth. Without credentials, with wrong ones (never printed), with
/// `--username` + `--password-stdin`, and from the Docker config file `docker login` writes;
/// a registry that does not allow deletes says so.
#[test]
fn a_registry_behind_basic_auth_takes_credentials_and_never_shows_them() {
    let Some(registry) = start_registry(Auth::Basic, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (sample, _) = packed("sample", scratch.path());
    let ns = format!("{host}/team");
    let push = |extra: &[&str], stdin: &str| {
        let mut args = vec!["push", sample.to_str().unwrap(), "--registry", &ns];
        args.extend_from_slice(extra);
        env.gp(&args, stdin)
    };

    let run = push(&[], "");
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry wants credentials (401): log in with `docker login HOST`, or pass --username and --password-stdin\n")
    );
    let run = push(
        &["--username", USER, "--password-stdin"],
        "not-the-password\n",
    );
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry refused the credentials of user `alice` (401)\n")
    );
    let run = push(&["--username", USER], "");
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    let mut seen = format!("{}{}", run.stdout, run.stderr);
    // Logged at the most verbose level: the secret is in no line.
    let verbose = push_as_alice(&env, &sample, &ns);
    let digest = pushed_digest(&verbose);
    assert!(verbose.stderr.lines().count() > 10, "{}", verbose.stderr);
    seen.push_str(&verbose.stderr);

    // The Docker config file (`auths`, as `docker login` writes it).
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        env.docker.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let run = env.gp_with_log(&["search", "--registry", &ns], "");
    assert!(
        run.stdout.contains("sample  0.1.0"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    seen.push_str(&run.stderr);
    let run = env.gp_with_log(
        &["install", "sample@0.1", "--registry", &ns, "--no-preflight"],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    seen.push_str(&run.stderr);
    assert!(
        run.stderr
            .contains(&format!("oci://{ns}/sample:0.1.0@{digest}")),
        "{}",
        run.stderr
    );
    assert_eq!(entries(&env.plugins()), ["sample.plg"]);
    let run = env.gp(
        &["delete", &format!("oci://{ns}/sample:0.1.0"), "--yes"],
        "",
    );
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0@{digest}: the registry does not allow deleting (405); Docker Distribution needs storage.delete.enabled: true\n")
    );
    seen.push_str(&run.stderr);
    assert_no_secret(&seen, &[PASSWORD, &auth]);
}

/// Asserts that none of `secrets` is in `output`, also once the lines of a byte dump (as
/// ureq's transport traces requests, 16 characters a line) are joined back together.
fn assert_no_secret(output: &str, secrets: &[&str]) {
    let joined: String = output
        .lines()
        .map(|line| line.rsplit_once("  ").map_or(line, |(_, tail)| tail))
        .collect();
    for text in [output, joined.as_str()] {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret was printed: {output}");
        }
    }
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

/// Item 5: what bad registries get, through `Manager::install` (the library's door): each a
/// clear error, nothing left in the base directory, the plugins already there still loaded.
#[test]
fn bad_registries_are_refused_by_name_and_nothing_is_installed() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let scratch = base_dir();
    let (sample, sample_bytes) = packed("sample", scratch.path());
    let client = Client::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    });
    let ns = Namespace::parse(&format!("{host}/team")).unwrap();
    let pushed = client
        .push(&sample, &ns.reference("sample"), &Default::default())
        .unwrap();
    let pinned = pushed.reference.to_string();

    // A container image pushed under a plugin's name.
    let image = push_image(&host, "team/nginx", "latest");

    // Written by something other than gp push: the same sample under a tag that names another
    // version, and under another plugin's name (its blobs mounted across, as registries do).
    retag(&host, "team/sample", "0.1.0", "7.7.7");
    let manifest = ureq::get(format!("http://{host}/v2/team/sample/manifests/0.1.0"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    for blob in [&parsed["config"], &parsed["layers"][0]] {
        let digest = blob["digest"].as_str().unwrap();
        let mounted = ureq::post(format!(
            "http://{host}/v2/team/dispatch/blobs/uploads/?mount={digest}&from=team/sample"
        ))
        .send_empty()
        .unwrap();
        assert_eq!(mounted.status().as_u16(), 201);
    }
    ureq::put(format!("http://{host}/v2/team/dispatch/manifests/0.1.0"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .unwrap();
    let manifest_digest = format!("sha256:{}", sha256(&manifest));

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let zero = format!("sha256:{}", "0".repeat(64));
    let cases: Vec<(String, Option<u64>, String)> = vec![
        (
            format!("oci://{host}/team/sample:9.9.9"),
            None,
            format!("oci://{host}/team/sample:9.9.9: the registry has no tag `9.9.9` in `team/sample` (see `gp search`)"),
        ),
        (
            format!("oci://{host}/team/sample@{zero}"),
            None,
            format!("oci://{host}/team/sample@{zero}: the registry has no manifest with that digest"),
        ),
        (
            pinned.clone(),
            Some(100_000),
            format!(
                "{pinned}: its package is {} bytes, more than the limit of 100000 bytes; nothing was installed",
                sample_bytes.len()
            ),
        ),
        (
            format!("oci://{host}/team/nginx:latest"),
            None,
            format!("oci://{host}/team/nginx:latest@sha256:{}: it is a container image (config `application/vnd.oci.image.config.v1+json`), not a gp plugin (artifact type application/vnd.gp.plugin.v1)", sha256(image.as_bytes())),
        ),
        (
            format!("oci://{host}/team/sample"),
            None,
            format!("oci://{host}/team/sample: it names no tag and no digest: add :TAG (a version) or @sha256:…"),
        ),
        (
            format!("oci://{host}/team/sample:7.7.7"),
            None,
            format!("oci://{host}/team/sample:7.7.7@{manifest_digest}: the package holds sample 0.1.0, but its tag says 7.7.7; nothing was installed"),
        ),
        (
            format!("oci://{host}/team/dispatch:0.1.0"),
            None,
            format!("oci://{host}/team/dispatch:0.1.0@{manifest_digest}: the package holds the plugin `sample`, not `dispatch` as the repository's name says; nothing was installed"),
        ),
        (
            format!("oci://{host}/Team/sample:1"),
            None,
            format!("oci://{host}/Team/sample:1: `Team/sample` is not a repository name (lowercase letters, digits and . _ - between them, components joined by /)"),
        ),
    ];
    for (url, limit, expected) in cases {
        let base = crate::harness::base_dir_with(&["dispatch"]);
        let mut builder = Manager::builder(base.path());
        if let Some(limit) = limit {
            builder = builder.package_limits(Limits {
                max_bytes: limit,
                ..Limits::default()
            });
        }
        let manager = builder.build();
        assert!(manager.load_plugins().is_ok());
        let error = manager
            .install(&url, &gp_host::InstallOptions::default())
            .unwrap_err();
        assert_eq!(error.to_string(), expected);
        assert!(
            matches!(error, Error::Hub { .. } | Error::Artifact { .. }),
            "{error:?}"
        );
        assert_eq!(entries(base.path()), ["dispatch"], "{url}");
        let names: Vec<String> = manager.list().iter().map(|s| s.name().to_owned()).collect();
        assert_eq!(names, ["dispatch"], "{url}");
    }

    // A registry that is down: the same, through the manager.
    let base = crate::harness::base_dir_with(&["dispatch"]);
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().is_ok());
    let down = format!("oci://127.0.0.1:{closed}/team/sample:0.1.0");
    let error = manager
        .install(&down, &gp_host::InstallOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("{down}: cannot reach the registry: ")),
        "{error}"
    );
    assert_eq!(entries(base.path()), ["dispatch"]);
    // Names and ranges that find nothing.
    let error = client
        .resolve(&ns, "nope", &"*".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("oci://{host}/team/nope: the registry has no repository `team/nope` (no plugin of that name was pushed there)")
    );
    let error = client
        .resolve(&ns, "sample", &"^2".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("oci://{host}/team/sample: no version matches `^2` (its versions: 0.1.0, 7.7.7)")
    );
    // The library resolves and installs by range as the CLI does.
    let resolved = client
        .resolve(&ns, "sample", &"~0.1".parse().unwrap())
        .unwrap();
    assert_eq!(resolved.reference.to_string(), pinned);
    let base = base_dir();
    let manager = Manager::builder(base.path()).build();
    let spec = manager
        .install(
            &resolved.reference.to_string(),
            &gp_host::InstallOptions {
                hub: Some(&client),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (spec.name(), spec.version().to_string()),
        ("sample", "0.1.0".to_owned())
    );
    crate::harness::assert_sample_serves(&manager);
}

/// What a real registry will not do, from a fake one: send another manifest than the digest
/// asked for, a package that is not the one its manifest declares or longer than declared,
/// and have no catalog.
#[test]
fn a_lying_registry_is_caught_and_nothing_is_installed() {
    let scratch = base_dir();
    let (_, package) = packed("sample", scratch.path());
    let digest = |bytes: &[u8]| format!("sha256:{}", sha256(bytes));
    let manifest = |layer: &[u8]| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.gp.plugin.v1","config":{{"mediaType":"application/vnd.gp.plugin.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.gp.plugin.package.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
            digest(b"{}"),
            digest(layer),
            layer.len()
        )
        .into_bytes()
    };
    let honest = manifest(&package);
    let mut tampered = package.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut longer = package.clone();
    longer.extend_from_slice(&[0; 100]);
    let asked = digest(b"what was asked for");
    let files: HashMap<String, Reply> = [
        // Any digest asked for answers the honest manifest: not the bytes asked for.
        (format!("/v2/team/sample/manifests/{asked}"), honest.clone()),
        ("/v2/team/sample/manifests/1.0.0".to_owned(), honest.clone()),
        ("/v2/team/longer/manifests/1.0.0".to_owned(), honest.clone()),
        (
            format!("/v2/team/sample/blobs/{}", digest(&package)),
            tampered,
        ),
        (
            format!("/v2/team/longer/blobs/{}", digest(&package)),
            longer,
        ),
    ]
    .into_iter()
    .map(|(path, body)| (path, Reply::Body(body)))
    .collect();
    let url = http_server(files);
    let host = url.trim_start_matches("http://");
    let pinned = format!("oci://{host}/team/sample:1.0.0@{}", digest(&honest));
    let cases = [
        (
            format!("oci://{host}/team/sample@{asked}"),
            format!(
                "oci://{host}/team/sample@{asked}: the manifest the registry sent has the digest {}, not the {asked} asked for; nothing was installed",
                digest(&honest)
            ),
        ),
        (
            format!("oci://{host}/team/sample:1.0.0"),
            format!(
                "{pinned}: the package the registry sent ({n} bytes, {}) is not the one its manifest declares ({n} bytes, {}); nothing was installed",
                digest(&{
                    let mut t = package.clone();
                    t[last] ^= 1;
                    t
                }),
                digest(&package),
                n = package.len()
            ),
        ),
        (
            format!("oci://{host}/team/longer:1.0.0"),
            format!(
                "oci://{host}/team/longer:1.0.0@{}: the registry sent more than the {} bytes its manifest declares for the package; nothing was installed",
                digest(&honest),
                package.len()
            ),
        ),
    ];
    for (reference, expected) in cases {
        let base = base_dir();
        let manager = Manager::builder(base.path()).build();
        let error = manager
            .install(&reference, &gp_host::InstallOptions::default())
            .unwrap_err();
        assert_eq!(error.to_string(), expected);
        assert_eq!(entries(base.path()), Vec::<String>::new(), "{reference}");
    }
    let client = Client::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    });
    let error = client
        .search(&Namespace::parse(&format!("{host}/team")).unwrap(), "")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("oci://{host}/team: the registry has no catalog endpoint (GET /v2/_catalog answered 404), so it cannot be searched; install by name still works: gp install NAME@RANGE --registry {host}/team")
    );
}

const TOKEN_SERVICE: &str = "gp-test-registry";
const TOKEN_ISSUER: &str = "gp-test-issuer";

/// A token service for a registry's bearer auth, on 127.0.0.1: it checks Basic credentials
/// (`alice`), then issues a JWT (ES256, its certificate in `x5c`) granting the scope asked
/// for. Serves at most 200 requests. Returns its realm, the certificate (PEM) the registry
/// must trust, and the scopes it was asked for.
fn token_service() -> (
    String,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use std::io::{BufRead, BufReader, Write};
    let certified = rcgen::generate_simple_self_signed(vec!["gp-test-token".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let x5c = STANDARD.encode(certified.cert.der());
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &certified.key_pair.serialize_der(),
        &rng,
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let scopes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let asked = scopes.clone();
    let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut authorization = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("authorization") {
                        authorization = value.trim().to_owned();
                    }
                }
            }
            let target = request.split_whitespace().nth(1).unwrap_or("/");
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let scope = params.get("scope").cloned().unwrap_or_default();
            asked.lock().unwrap().push(scope.clone());
            let reply = if authorization != expected
                || params.get("service").map(String::as_str) != Some(TOKEN_SERVICE)
            {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            } else {
                let access: Vec<serde_json::Value> = scope
                    .split(' ')
                    .filter_map(|s| {
                        let (rest, actions) = s.rsplit_once(':')?;
                        let (kind, name) = rest.split_once(':')?;
                        Some(serde_json::json!({
                            "type": kind, "name": name,
                            "actions": actions.split(',').collect::<Vec<_>>(),
                        }))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": TOKEN_ISSUER, "sub": USER, "aud": TOKEN_SERVICE,
                    "exp": now + 300, "nbf": now - 10, "iat": now - 10,
                    "jti": format!("{now}-{}", asked.lock().unwrap().len()),
                    "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
                let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
                let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (realm, pem, scopes)
}

/// Item 3: the registry bearer-token flow, against a real registry configured for token auth
/// and a token service that checks Basic credentials: a push takes one token for its scope
/// and reuses it; no credentials and wrong ones get their messages; search asks for the
/// catalog scope; install resolves and pulls with tokens of its own.
#[test]
fn a_registry_with_bearer_tokens_gets_them_from_its_realm() {
    let (realm, pem, scopes) = token_service();
    let Some(registry) = start_registry(Auth::Token { realm, pem }, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (sample, _) = packed("sample", scratch.path());
    let ns = format!("{host}/team");
    let push = |stdin: Option<&str>| {
        let mut args = vec!["push", sample.to_str().unwrap(), "--registry", &ns];
        if stdin.is_some() {
            args.extend(["--username", USER, "--password-stdin"]);
        }
        env.gp(&args, stdin.unwrap_or(""))
    };
    let run = push(None);
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry wants credentials (401): log in with `docker login HOST`, or pass --username and --password-stdin\n")
    );
    let run = push(Some("wrong\n"));
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry refused the credentials of user `alice` (401)\n")
    );
    scopes.lock().unwrap().clear();
    let run = push_as_alice(&env, &sample, &ns);
    let digest = pushed_digest(&run);
    assert_no_secret(&format!("{}{}", run.stdout, run.stderr), &[PASSWORD]);
    // Two blobs checked and uploaded and a manifest put, on one token.
    assert_eq!(
        *scopes.lock().unwrap(),
        ["repository:team/sample:pull,push"]
    );
    scopes.lock().unwrap().clear();
    let run = env.gp(
        &[
            "search",
            "--registry",
            &ns,
            "--username",
            USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        run.stdout.contains("sample  0.1.0"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        *scopes.lock().unwrap(),
        ["registry:catalog:*", "repository:team/sample:pull"]
    );
    let run = env.gp(
        &[
            "install",
            "sample@~0.1",
            "--registry",
            &ns,
            "--no-preflight",
            "--username",
            USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("oci://{ns}/sample:0.1.0@{digest}")),
        "{}",
        run.stderr
    );
    assert_eq!(entries(&env.plugins()), ["sample.plg"]);
}

/// Waits (at most 20 s) until `done` holds, checking every 50 ms; panics with `what`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Puts the manifest `tag` of `repository` pointing at what `from` (a tag of the same
/// repository) points at, as `docker tag` + push or `oras tag` do.
fn retag(host: &str, repository: &str, from: &str, tag: &str) {
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let manifest = ureq::get(format!("http://{host}/v2/{repository}/manifests/{from}"))
        .header("accept", accept)
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    ureq::put(format!("http://{host}/v2/{repository}/manifests/{tag}"))
        .header("content-type", accept)
        .send(&manifest[..])
        .unwrap();
}

/// Item 4: following a tag that moves. The plugin is installed, upgraded when the tag moves
/// to a newer version, and kept when the tag moves to something refused (a container image,
/// an older version): each refusal logged once, never retried, the loaded version serving.
#[test]
fn following_a_moving_tag_upgrades_and_shrugs_off_bad_moves() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let scratch = base_dir();
    let client = Client::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    });
    let ns = Namespace::parse(&format!("{host}/team")).unwrap();
    for fixture in ["counter-v1", "counter-v2"] {
        let (package, _) = packed(fixture, scratch.path());
        client
            .push(&package, &ns.reference("counter"), &Default::default())
            .unwrap();
    }
    // A container image in the same repository, under `image`.
    push_image(&host, "team/counter", "image");
    retag(&host, "team/counter", "1.0.0", "stable");

    let base = base_dir();
    let manager = Manager::new(base.path());
    let version = |manager: &Manager| {
        manager
            .get_plugin("counter")
            .ok()
            .map(|(spec, _)| spec.version().to_string())
    };
    let stable =
        gp_host::hub::Reference::parse(&format!("oci://{host}/team/counter:stable")).unwrap();
    let ((), log) = crate::harness::with_captured_log(|| {
        let following = manager.follow(
            gp_host::Follow::Tag(stable),
            client.clone(),
            Duration::from_millis(100),
        );
        wait_for("1.0.0 installed", || {
            version(&manager).as_deref() == Some("1.0.0")
        });
        retag(&host, "team/counter", "2.0.0", "stable");
        wait_for("the upgrade to 2.0.0", || {
            version(&manager).as_deref() == Some("2.0.0")
        });
        retag(&host, "team/counter", "image", "stable");
        wait_for("the image refused", || {
            !following.status().refused.is_empty()
        });
        retag(&host, "team/counter", "1.0.0", "stable");
        wait_for("1.0.0 refused", || following.status().refused.len() == 2);
        // Several more checks: nothing is retried, nothing changes.
        let checks = following.status().checks;
        wait_for("five more checks", || {
            following.status().checks >= checks + 5
        });
        let status = following.status();
        assert_eq!(status.refused.len(), 2, "{status:?}");
        assert!(
            status.refused[0].1.ends_with("it is a container image (config `application/vnd.oci.image.config.v1+json`), not a gp plugin (artifact type application/vnd.gp.plugin.v1)"),
            "{status:?}"
        );
        assert_eq!(
            status.refused[1].1,
            "it is version 1.0.0, older than the 2.0.0 loaded"
        );
        assert_eq!(
            status.current.as_ref().map(|c| c.version.to_string()),
            Some("2.0.0".to_owned())
        );
        assert_eq!(version(&manager).as_deref(), Some("2.0.0"));
        let mut ctx = gp_host::Context::new();
        manager
            .executor("counter")
            .unwrap()
            .execute(&mut ctx)
            .unwrap();
        assert_eq!(ctx.get("version"), Some(&gp_host::Value::from("2.0.0")));
        drop(following);
    });
    assert_eq!(
        log.matches("not installed; what is loaded keeps serving")
            .count(),
        2,
        "{log}"
    );
    assert_eq!(entries(base.path()), ["counter.plg"]);

    // A range: the highest version it accepts, not the highest there is.
    let other = base_dir();
    let ranged = Manager::new(other.path());
    let following = ranged.follow(
        gp_host::Follow::Range {
            namespace: ns.clone(),
            name: "counter".into(),
            range: "^1".parse().unwrap(),
        },
        client.clone(),
        Duration::from_millis(100),
    );
    wait_for("1.0.0 by range", || {
        version(&ranged).as_deref() == Some("1.0.0")
    });
    let checks = following.status().checks;
    wait_for("two more checks", || {
        following.status().checks >= checks + 2
    });
    assert_eq!(version(&ranged).as_deref(), Some("1.0.0"));
    drop(following);
    // Disabled by an operator: a newer version is not even downloaded until it is enabled.
    ranged.disable("counter", "maintenance").unwrap();
    let installed = std::fs::read(other.path().join("counter.plg")).unwrap();
    let following = ranged.follow(
        gp_host::Follow::Range {
            namespace: ns.clone(),
            name: "counter".into(),
            range: "*".parse().unwrap(),
        },
        client.clone(),
        Duration::from_millis(100),
    );
    wait_for("three checks", || following.status().checks >= 3);
    let status = following.status();
    let why = status.last_error.unwrap_or_default();
    assert!(
        why.starts_with("plugin `counter` is disabled (maintenance): enable it to install oci://")
            && why.contains("/team/counter:2.0.0@sha256:"),
        "{why}"
    );
    assert!(status.refused.is_empty());
    drop(following);
    assert_eq!(version(&ranged), None);
    assert_eq!(
        std::fs::read(other.path().join("counter.plg")).unwrap(),
        installed
    );

    // A registry that goes away: the error is logged once, however many checks fail.
    let stable =
        gp_host::hub::Reference::parse(&format!("oci://{host}/team/counter:stable")).unwrap();
    drop(registry);
    let ((), log) = crate::harness::with_captured_log(|| {
        let following = manager.follow(
            gp_host::Follow::Tag(stable),
            client.clone(),
            Duration::from_millis(50),
        );
        wait_for("five failed checks", || following.status().checks >= 5);
        let status = following.status();
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("cannot reach the registry")),
            "{status:?}"
        );
    });
    assert_eq!(log.matches("cannot check the registry").count(), 1, "{log}");
    assert_eq!(version(&manager).as_deref(), Some("2.0.0"));
}

/// The registry commands' own refusals, before any registry is asked: each the line a user
/// sees.
#[test]
fn registry_commands_refuse_what_they_cannot_use() {
    let env = Env::new();
    let digest = format!("sha256:{}", "a".repeat(64));
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["install".into(), "sample".into()],
            "error: gp: `sample` needs a registry: pass --registry HOST[:PORT]/NAMESPACE or set GP_REGISTRY\n".into(),
        ),
        (
            vec!["push".into(), "sample.plg".into()],
            "error: gp: `gp push` without an oci:// reference needs a registry: pass --registry HOST[:PORT]/NAMESPACE or set GP_REGISTRY\n".into(),
        ),
        (
            vec!["search".into()],
            "error: gp: `gp search` needs a registry: pass --registry HOST[:PORT]/NAMESPACE or set GP_REGISTRY\n".into(),
        ),
        (
            vec!["delete".into(), "localhost:5000/team/sample:1.0.0".into(), "--yes".into()],
            "error: localhost:5000/team/sample:1.0.0: not a registry reference: it must start with oci:// (oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST])\n".into(),
        ),
        (
            vec!["pull".into(), "oci://localhost:5000/team/sample:1+2".into()],
            "error: oci://localhost:5000/team/sample:1+2: `1+2` is not a tag (up to 128 letters, digits, _ . -; a version's + is written _)\n".into(),
        ),
        (
            vec!["search".into(), "--registry".into(), "local host".into()],
            "error: gp: registry `local host`: `local host` is not a registry host (HOST[:PORT])\n".into(),
        ),
        (
            vec![
                "serve".into(),
                env.home.path().to_string_lossy().into_owned(),
                "--follow".into(),
                format!("oci://localhost:5000/team/sample@{digest}"),
            ],
            format!("error: gp: --follow oci://localhost:5000/team/sample@{digest}: follow a tag (oci://HOST/NAMESPACE/NAME:TAG, such as :stable), not a digest, which never moves\n"),
        ),
        (
            vec![
                "serve".into(),
                env.home.path().to_string_lossy().into_owned(),
                "--follow".into(),
                "sample@^1".into(),
                "--registry".into(),
                "localhost:5000/team".into(),
                "--follow-every".into(),
                "0s".into(),
            ],
            "error: gp: --follow-every 0s: check a registry at most once a second\n".into(),
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = env.gp(&args, "");
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (1, expected.as_str()),
            "{args:?}"
        );
    }
    // A plugin named with capitals: refused before anything is sent.
    let scratch = base_dir();
    let (capital, _) = packed("counter-capital", scratch.path());
    let run = env.gp(
        &[
            "push",
            capital.to_str().unwrap(),
            "--registry",
            "localhost:5000/team",
        ],
        "",
    );
    assert_eq!(
        run.stderr,
        "error: oci://localhost:5000/team/Counter: OCI repository names are lowercase, so the plugin `Counter` cannot be published under its name; rename it in lowercase\n"
    );
    let run = env.gp(
        &["install", "sample@>>1", "--registry", "localhost:5000/team"],
        "",
    );
    assert!(
        run.stderr.starts_with(
            "error: gp: `>>1` is not a version range (examples: ^1.2, ~0.3, =1.0.0, *): "
        ),
        "{}",
        run.stderr
    );
}

/// Item 4: what fails on the way (here a registry whose manifest names a package it cannot
/// serve: 404) is not a verdict on the version: the follower keeps trying at each check and
/// refuses nothing, and it says so once.
#[test]
fn following_retries_what_failed_on_the_way() {
    let package = b"not served";
    let digest = format!("sha256:{}", sha256(package));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.gp.plugin.v1","config":{{"mediaType":"application/vnd.gp.plugin.config.v1+json","digest":"sha256:{}","size":2}},"layers":[{{"mediaType":"application/vnd.gp.plugin.package.v1.tar+gzip","digest":"{digest}","size":{}}}],"annotations":{{"org.opencontainers.image.version":"1.0.0"}}}}"#,
        sha256(b"{}"),
        package.len()
    );
    let by_digest = format!(
        "/v2/team/counter/manifests/sha256:{}",
        sha256(manifest.as_bytes())
    );
    let files: HashMap<String, Reply> = [
        (
            "/v2/team/counter/manifests/stable".to_owned(),
            manifest.clone(),
        ),
        (by_digest, manifest),
    ]
    .into_iter()
    .map(|(path, body)| (path, Reply::Body(body.into_bytes())))
    .collect();
    let url = http_server(files);
    let host = url.trim_start_matches("http://");
    let base = base_dir();
    let manager = Manager::new(base.path());
    let client = Client::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    });
    let stable =
        gp_host::hub::Reference::parse(&format!("oci://{host}/team/counter:stable")).unwrap();
    let ((), log) = crate::harness::with_captured_log(|| {
        let following = manager.follow(
            gp_host::Follow::Tag(stable),
            client,
            Duration::from_millis(50),
        );
        wait_for("four checks", || following.status().checks >= 4);
        let status = following.status();
        assert!(status.refused.is_empty(), "{status:?}");
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.ends_with("the registry answered HTTP 404")),
            "{status:?}"
        );
    });
    assert_eq!(
        log.matches("cannot install it now; the next check tries again")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(entries(base.path()), Vec::<String>::new());
}

/// Item 1: the signature travels inside the package, so `--public-key` means through a
/// registry what it means for a `.plg` file: a package signed by the key is pulled and
/// installed, one signed by another key or not at all is refused, and nothing is written.
#[test]
fn signatures_travel_with_the_package_through_the_registry() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let ns = format!("{}/signed", registry.host);
    let unsigned_ns = format!("{}/unsigned", registry.host);
    let env = Env::new();
    let scratch = base_dir();
    let (unsigned, _) = packed("sample", scratch.path());
    let staging = base_dir();
    gp_host::build::install_library(example("sample"), staging.path()).unwrap();
    let key = package::SecretKey::generate().unwrap();
    let other = package::SecretKey::generate()
        .unwrap()
        .public_key()
        .to_string();
    let signed = scratch.path().join("signed.plg");
    package::pack(&staging.path().join("sample"), &signed, Some(&key)).unwrap();
    let public = key.public_key().to_string();

    let run = env.gp(&["push", signed.to_str().unwrap(), "--registry", &ns], "");
    assert!(run.stdout.contains(" bytes, signed) to "), "{}", run.stdout);
    let signed_digest = pushed_digest(&run);
    let unsigned_digest = pushed_digest(&env.gp(
        &[
            "push",
            unsigned.to_str().unwrap(),
            "--registry",
            &unsigned_ns,
        ],
        "",
    ));

    let out = scratch.path().join("out");
    let pull = |registry: &str, key: &str| {
        env.gp(
            &[
                "pull",
                "sample",
                "--registry",
                registry,
                "--public-key",
                key,
                "-o",
                out.to_str().unwrap(),
            ],
            "",
        )
    };
    let run = pull(&ns, &public);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("pulled sample 0.1.0 -> "),
        "{}",
        run.stdout
    );
    std::fs::remove_dir_all(&out).unwrap();
    let run = pull(&ns, &other);
    let pinned = format!("oci://{ns}/sample:0.1.0@{signed_digest}");
    assert_eq!(
        run.stderr,
        format!("resolved sample@* to 0.1.0: {pinned}\nerror: {pinned}: the package it holds is refused: its signature does not verify with any trusted key: it was signed by another key, or changed after signing\n")
    );
    assert_eq!(entries(&out), Vec::<String>::new());
    let run = env.gp(
        &[
            "install",
            "sample",
            "--registry",
            &unsigned_ns,
            "--public-key",
            &public,
            "--no-preflight",
        ],
        "",
    );
    let pinned = format!("oci://{unsigned_ns}/sample:0.1.0@{unsigned_digest}");
    assert_eq!(
        run.stderr,
        format!("resolved sample@* to 0.1.0: {pinned}\nerror: {pinned}: package refused: it is not signed, and this host accepts signed packages only\n")
    );
    assert_eq!(entries(&env.plugins()), Vec::<String>::new());
}
