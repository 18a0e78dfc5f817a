//! Installing a package from a URL: downloaded, verified and loaded, and every bad download
//! refused with nothing installed.

use gp_host::package::{self, Limits, SecretKey, Trust};
use gp_host::{Error, Manager};

use super::{dispatch_folder, hex};
use crate::harness::{assert_sample_serves, base_dir, base_dir_with};

/// Installs `url` into a fresh base directory holding `sample`; returns the manager, the
/// result, and what was left in the base directory besides `sample` and the runtime dir.
fn install_into_fresh(
    url: &str,
    trust: Option<Trust>,
    limits: Limits,
    sha256: Option<String>,
) -> (
    Manager,
    Result<gp_host::Spec, Error>,
    Vec<String>,
    tempfile::TempDir,
) {
    let base = base_dir_with(&["sample"]);
    let manager = Manager::builder(base.path()).package_limits(limits).build();
    assert!(manager.load_plugins().is_ok());
    let mut options = gp_host::InstallOptions::default();
    options.sha256 = sha256;
    options.trust = trust;
    let result = manager.install(url, &options);
    let left: Vec<String> = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sample" && n != ".gp-runtime")
        .collect();
    (manager, result, left, base)
}

// Long: a table of cases, each with the exact message a user sees, in one place.
#[test]
fn install_downloads_verifies_and_loads_and_refuses_every_bad_download() {
    use crate::harness::{http_server, Reply};
    let key = SecretKey::generate().unwrap();
    let other = SecretKey::generate().unwrap();
    let (_staging, dir) = dispatch_folder();
    let scratch = base_dir();
    let pack = |name: &str, key: Option<&SecretKey>| {
        let path = scratch.path().join(name);
        package::pack(&dir, &path, key).unwrap();
        std::fs::read(path).unwrap()
    };
    let good = pack("good.plg", Some(&key));
    let mut corrupted = good.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    let files = [
        ("/good.plg", Reply::Body(good.clone())),
        ("/good-unsized.plg", Reply::Unsized(good.clone())),
        ("/corrupted.plg", Reply::Body(corrupted)),
        ("/unsigned.plg", Reply::Body(pack("unsigned.plg", None))),
        (
            "/other-key.plg",
            Reply::Body(pack("other.plg", Some(&other))),
        ),
    ];
    let url = http_server(files.into_iter().map(|(p, r)| (p.to_owned(), r)).collect());
    let trusted = || Some(Trust::signed_by([key.public_key()]));

    // The good one, with its hash pinned.
    let (manager, result, left, base) = install_into_fresh(
        &format!("{url}/good.plg"),
        trusted(),
        Limits::default(),
        Some(hex(&good)),
    );
    let spec = result.unwrap();
    assert_eq!(spec.name(), "dispatch");
    assert_eq!(spec.origin, base.path().join("dispatch.plg"));
    assert_eq!(left, ["dispatch.plg"]);
    assert!(manager.executor("dispatch").is_ok());
    assert_sample_serves(&manager);

    let small = Limits {
        max_entries: 16,
        max_bytes: 1 << 20,
    };
    // Path, trust, limits, pinned hash, the error's start.
    type Case = (&'static str, Option<Trust>, Limits, Option<String>, String);
    let cases: Vec<Case> = vec![
        (
            "/missing.plg",
            trusted(),
            Limits::default(),
            None,
            format!("{url}/missing.plg: the server answered HTTP 404 (not found)"),
        ),
        (
            "/good.plg",
            trusted(),
            Limits::default(),
            Some("ab".repeat(32)),
            format!(
                "{url}/good.plg: its SHA-256 is {}, not the {} expected; the file was not installed",
                hex(&good),
                "ab".repeat(32)
            ),
        ),
        (
            "/good.plg",
            trusted(),
            small,
            None,
            format!("{url}/good.plg: the package is larger than 1048576 bytes (the limit); nothing was installed"),
        ),
        (
            "/good-unsized.plg",
            trusted(),
            small,
            None,
            format!("{url}/good-unsized.plg: the package is larger than 1048576 bytes (the limit); nothing was installed"),
        ),
        (
            "/corrupted.plg",
            trusted(),
            Limits::default(),
            None,
            // A flipped byte shows up as corrupt deflate data or, where the data still
            // inflates, as a checksum mismatch, depending on where it lands.
            format!("{url}/corrupted.plg: package refused: "),
        ),
        (
            "/unsigned.plg",
            trusted(),
            Limits::default(),
            None,
            format!("{url}/unsigned.plg: package refused: it is not signed, and this host accepts signed packages only"),
        ),
        (
            "/other-key.plg",
            trusted(),
            Limits::default(),
            None,
            format!("{url}/other-key.plg: package refused: its signature does not verify with any trusted key: it was signed by another key, or changed after signing"),
        ),
    ];
    for (path, trust, limits, sha256, expected) in cases {
        let (manager, result, left, _base) =
            install_into_fresh(&format!("{url}{path}"), trust, limits, sha256);
        let message = result.unwrap_err().to_string();
        assert!(
            message.starts_with(&expected),
            "{path}:\n  got      {message}\n  expected {expected}"
        );
        if path == "/corrupted.plg" {
            assert!(
                message.contains("checksum mismatch for `")
                    || message.contains("not a gzip-compressed tar archive, or a corrupt one"),
                "{message}"
            );
        }
        assert!(left.is_empty(), "{path} left {left:?}");
        assert!(manager.executor("dispatch").is_err());
        assert_sample_serves(&manager);
    }
}
