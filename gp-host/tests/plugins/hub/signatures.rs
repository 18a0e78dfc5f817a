//! Signatures through a registry: `--public-key` means for a pushed package what it means for a
//! `.plg` file.

use gp_host::package;

use super::{entries, packed, pushed_digest, start_registry, Auth, Env};
use crate::harness::{base_dir, example};

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
