//! A plugin's way through a registry, end to end: push, search, install by name and range
//! into a clean GP_HOME, call, upgrade, pull pinned by digest, delete.

use super::{entries, packed, pushed_digest, sha256, start_registry, Auth, Env};
use crate::harness::base_dir;

/// Item 1 and the "done when": push → search → install by name and range on a clean
/// GP_HOME → call; an upgrade by name; a pull pinned by digest gives the pushed bytes back;
/// a delete.
// Long: one scenario, read top to bottom: each step starts from the state the last one left.
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
    // What the upgrade replaced is kept, for a roll-back.
    assert_eq!(
        entries(&env.plugins()),
        [".counter.plg.previous", "counter.plg"]
    );
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
        format!("deleted oci://{ns}/sample:0.1.0@{sample_digest}\ntags removed: 0.1.0\n"),
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
