//! Nothing in a registry is lost or swapped by accident: a version tag names one package for
//! good (`gp push --force` replaces it, and says so), a moving tag moves, and `gp delete`
//! names every tag it would take along, refusing unless `--all-tags`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gp_host::hub::{Client, Reference};
use gp_host::package::{self, SecretKey};

use super::{
    anonymous, packed, push_counters, pushed_digest, retag, sha256, start_registry, Auth, Env,
};
use crate::harness::base_dir;

/// `counter-v1` (counter 1.0.0) packed and signed: the same version as [`packed`]'s, other
/// bytes.
fn packed_signed(into: &Path) -> PathBuf {
    let staging = base_dir();
    let folder = crate::harness::install_lifecycle(staging.path(), "counter-v1", "counter-v1");
    let path = into.join("counter-v1-signed.plg");
    package::pack(&folder, &path, Some(&SecretKey::generate().unwrap())).unwrap();
    path
}

/// What `tag` of `team/counter` names now.
fn tagged(host: &str, tag: &str) -> Option<String> {
    let reference = Reference::parse(&format!("oci://{host}/team/counter:{tag}")).unwrap();
    Client::new(anonymous()).digest(&reference).unwrap()
}

/// Item 3: a version tag is immutable. Other bytes under it are refused, naming both
/// manifests; the same bytes again are fine; `--force` replaces and says what it replaced;
/// a moving tag moves without `--force`, and says so too.
// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn a_version_tag_keeps_its_package_unless_forced() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (unsigned, unsigned_bytes) = packed("counter-v1", scratch.path());
    let signed = packed_signed(scratch.path());
    let signed_size = std::fs::metadata(&signed).unwrap().len();
    let ns = format!("{host}/team");
    let push = |package: &Path, extra: &[&str]| {
        let mut args = vec!["push", package.to_str().unwrap()];
        args.extend_from_slice(extra);
        env.gp(&args, "")
    };

    let first = pushed_digest(&push(&unsigned, &["--registry", &ns]));
    // The signed package's manifest digest, from a namespace of its own (a manifest does not
    // name its repository).
    let other = pushed_digest(&push(
        &signed,
        &["--registry", &format!("{host}/elsewhere")],
    ));
    assert_ne!(first, other);

    let run = push(&signed, &["--registry", &ns]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr),
        (
            1,
            "",
            format!("error: oci://{ns}/counter:1.0.0: the version tag `1.0.0` already holds another package (manifest {first}); this one's manifest is {other}: a published version is immutable, so publish this one as a new version, or replace it for everyone with --force (PushOptions::force)\n")
        )
    );
    assert_eq!(tagged(host, "1.0.0"), Some(first.clone()));

    // The same bytes again: nothing to replace, nothing said of it.
    let run = push(&unsigned, &["--registry", &ns]);
    assert_eq!(
        run.stdout,
        format!(
            "pushed counter 1.0.0 ({} bytes, not signed) to oci://{ns}/counter:1.0.0\ndigest {first}\n",
            unsigned_bytes.len()
        ),
        "{}",
        run.stderr
    );

    let run = push(&signed, &["--registry", &ns, "--force"]);
    assert_eq!(
        run.stdout,
        format!(
            "pushed counter 1.0.0 ({signed_size} bytes, signed) to oci://{ns}/counter:1.0.0\ndigest {other}\nreplaced version 1.0.0: {first} -> {other}\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(tagged(host, "1.0.0"), Some(other.clone()));

    // A tag that is not a version moves freely, and says where from.
    let stable = format!("oci://{ns}/counter:stable");
    pushed_digest(&push(&unsigned, &[&stable]));
    let run = push(&signed, &[&stable]);
    assert_eq!(
        run.stdout,
        format!(
            "pushed counter 1.0.0 ({signed_size} bytes, signed) to {stable}\ndigest {other}\nmoved tag stable: {first} -> {other}\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(tagged(host, "stable"), Some(other));
}

/// Item 3: `gp delete` of a tag whose manifest other tags name too is refused, naming every
/// one (Docker Distribution cannot delete a tag alone: it answers 400), and nothing goes;
/// `--all-tags` deletes the manifest and names every tag removed.
#[test]
fn deleting_a_shared_digest_names_every_tag_and_needs_all_tags() {
    let Some(registry) = start_registry(Auth::None, true) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let ns = format!("{host}/team");
    let two = &push_counters(host)[1].1;
    retag(host, "team/counter", "2.0.0", "stable");
    let tags = || {
        let mut tags = Client::new(anonymous())
            .tags(&Reference::parse(&format!("oci://{ns}/counter")).unwrap())
            .unwrap();
        tags.sort();
        tags
    };

    let run = env.gp(
        &["delete", &format!("oci://{ns}/counter:stable"), "--yes"],
        "",
    );
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr),
        (
            1,
            "",
            format!("error: oci://{ns}/counter:stable@{two}: its manifest {two} carries the tags 2.0.0, stable: deleting it removes all of them (the registry cannot delete one tag alone); pass --all-tags to delete them all\n")
        )
    );
    assert_eq!(tags(), ["1.0.0", "2.0.0", "stable"]);

    let run = env.gp(
        &[
            "delete",
            &format!("oci://{ns}/counter:stable"),
            "--yes",
            "--all-tags",
        ],
        "",
    );
    assert_eq!(
        run.stdout,
        format!("deleted oci://{ns}/counter:stable@{two}\ntags removed: 2.0.0, stable\n"),
        "{}",
        run.stderr
    );
    assert_eq!(tags(), ["1.0.0"]);
}

/// One canned answer of [`fake_registry`]: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// A registry on 127.0.0.1 answering `routes` (`"METHOD /path"`; 404 otherwise), for what
/// Docker Distribution does not do. Returns its `HOST:PORT` and the requests it saw.
fn fake_registry(routes: HashMap<String, Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let request = request
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            log.lock().unwrap().push(request.clone());
            let (status, headers, body) =
                routes
                    .get(&request)
                    .cloned()
                    .unwrap_or((404, Vec::new(), Vec::new()));
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut reply = head.into_bytes();
            if !request.starts_with("HEAD ") {
                reply.extend_from_slice(&body);
            }
            let _ = stream.write_all(&reply);
        }
    });
    (host, seen)
}

/// Item 3: where the registry can delete a tag alone (OCI distribution 1.1), `gp delete` of a
/// tag that shares its manifest deletes that tag only, and says so; the manifest stays.
#[test]
fn a_tag_is_deleted_alone_where_the_registry_can() {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.gp.plugin.v1","config":{{"mediaType":"application/vnd.gp.plugin.config.v1+json","digest":"sha256:{}","size":2}},"layers":[{{"mediaType":"application/vnd.gp.plugin.package.v1.tar+gzip","digest":"sha256:{}","size":1}}]}}"#,
        sha256(b"{}"),
        sha256(b"x")
    );
    let digest = format!("sha256:{}", sha256(manifest.as_bytes()));
    let named = || vec![("Docker-Content-Digest", digest.clone())];
    let path = "/v2/team/counter";
    let routes: HashMap<String, Answer> = [
        (
            format!("GET {path}/manifests/stable"),
            (200, named(), manifest.clone().into_bytes()),
        ),
        (
            format!("GET {path}/tags/list?n=1000"),
            (200, Vec::new(), br#"{"tags":["2.0.0","stable"]}"#.to_vec()),
        ),
        (
            format!("HEAD {path}/manifests/2.0.0"),
            (200, named(), Vec::new()),
        ),
        (
            format!("HEAD {path}/manifests/stable"),
            (200, named(), Vec::new()),
        ),
        (
            format!("DELETE {path}/manifests/stable"),
            (202, Vec::new(), Vec::new()),
        ),
    ]
    .into_iter()
    .collect();
    let (host, seen) = fake_registry(routes);
    let env = Env::new();
    let run = env.gp(
        &[
            "delete",
            &format!("oci://{host}/team/counter:stable"),
            "--yes",
        ],
        "",
    );
    assert_eq!(
        run.stdout,
        format!("deleted the tag oci://{host}/team/counter:stable@{digest} (the manifest stays under its other tags)\ntags removed: stable\n"),
        "{}",
        run.stderr
    );
    let deletes: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("DELETE"))
        .cloned()
        .collect();
    assert_eq!(deletes, [format!("DELETE {path}/manifests/stable")]);
}
