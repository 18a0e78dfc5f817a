//! What the registry commands refuse before any registry is asked: a missing registry, a
//! reference or range that cannot be, a plugin name no repository can carry.

use super::{packed, Env};
use crate::harness::base_dir;

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
