//! Following a tag or a range: upgrades when it moves forward, refusals of bad moves logged
//! once and never retried, failures on the way retried at each check.

use std::collections::HashMap;
use std::time::Duration;

use gp_host::hub::{Client, Namespace};
use gp_host::Manager;

use super::{anonymous, entries, push_counters, push_image, retag, sha256, start_registry, Auth};
use crate::harness::{base_dir, eventually, http_server, Reply};

/// Waits (at most 20 s) until `done` holds; panics with `what`.
fn wait_for(what: &str, done: impl FnMut() -> bool) {
    eventually(what, Duration::from_secs(20), done);
}

/// Item 4: following a tag that moves. The plugin is installed, upgraded when the tag moves
/// to a newer version, and kept when the tag moves to something refused (a container image,
/// an older version): each refusal logged once, never retried, the loaded version serving.
// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn following_a_moving_tag_upgrades_and_shrugs_off_bad_moves() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let client = Client::new(anonymous());
    let ns = Namespace::parse(&format!("{host}/team")).unwrap();
    push_counters(&host);
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
    // What the upgrade replaced is kept, for a roll-back.
    assert_eq!(
        entries(base.path()),
        [".counter.plg.previous", "counter.plg"]
    );

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

/// A fleet rolls back by moving its tag back: a follower allowed to downgrade follows it
/// there; one that is not keeps serving what it has, ready, with the refusal in its readiness
/// (what `/-/readyz` and `gp_follow_refusing` show), until the tag names something it takes.
#[test]
fn a_tag_moved_back_is_followed_only_where_downgrades_are_allowed() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let client = Client::new(anonymous());
    push_counters(&host);
    retag(&host, "team/counter", "2.0.0", "stable");
    let stable =
        gp_host::hub::Reference::parse(&format!("oci://{host}/team/counter:stable")).unwrap();
    let version = |manager: &Manager| {
        manager
            .get_plugin("counter")
            .ok()
            .map(|(spec, _)| spec.version().to_string())
    };
    let (strict_base, rolling_base) = (base_dir(), base_dir());
    let strict = Manager::new(strict_base.path());
    let rolling = Manager::new(rolling_base.path());
    // As gp serve does: the base directory loaded (empty here), then followed.
    let _ = (strict.load_plugins(), rolling.load_plugins());
    let every =
        gp_host::FollowOptions::every(Duration::from_millis(100)).jitter(Duration::from_millis(50));
    let follow = |manager: &Manager, allow: bool| {
        manager.follow_with(
            gp_host::Follow::Tag(stable.clone()),
            client.clone(),
            every.clone().allow_downgrade(allow),
        )
    };
    // Logged as a fleet's operator reads it: the refusal once, however many checks see it.
    let ((), log) = crate::harness::with_captured_log(|| {
        let (_strict, _rolling) = (follow(&strict, false), follow(&rolling, true));
        for manager in [&strict, &rolling] {
            wait_for("2.0.0 installed", || {
                version(manager).as_deref() == Some("2.0.0")
            });
        }
        retag(&host, "team/counter", "1.0.0", "stable");
        wait_for("the rollback to 1.0.0", || {
            version(&rolling).as_deref() == Some("1.0.0")
        });
        wait_for("1.0.0 refused", || !strict.readiness().refusing.is_empty());
        let readiness = strict.readiness();
        assert!(
            readiness.ready,
            "a refusal leaves the loaded version serving"
        );
        let refusal = &readiness.refusing[0];
        assert_eq!(refusal.plugin, "counter");
        assert_eq!(refusal.target, format!("oci://{host}/team/counter:stable"));
        assert!(refusal.digest.starts_with("sha256:"), "{refusal:?}");
        assert_eq!(
            refusal.reason,
            "it is version 1.0.0, older than the 2.0.0 loaded"
        );
        assert!(strict
            .prometheus()
            .contains(&format!("gp_follow_refusing{{plugin=\"counter\",target=\"oci://{host}/team/counter:stable\",digest=\"{}\"}} 1", refusal.digest)));
        assert_eq!(version(&strict).as_deref(), Some("2.0.0"));
        assert!(rolling.readiness().refusing.is_empty());
        // The tag moves forward again: nothing is refused any more.
        retag(&host, "team/counter", "2.0.0", "stable");
        wait_for("the refusal cleared", || {
            strict.readiness().refusing.is_empty()
        });
        wait_for("2.0.0 again", || {
            version(&rolling).as_deref() == Some("2.0.0")
        });
    });
    assert_eq!(
        log.matches("not installed; what is loaded keeps serving")
            .count(),
        1,
        "{log}"
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
    let client = Client::new(anonymous());
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

/// Item 4: a package that fails its digest check once (here the registry's stored blob,
/// tampered with, then put back) is the transfer's fault, not a verdict: the follower retries
/// with back-off, refuses nothing, and reaches the version once the registry serves the right
/// bytes again.
#[test]
fn following_heals_after_a_transient_digest_failure() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let client = Client::new(anonymous());
    let packages: Vec<Vec<u8>> = push_counters(&host).into_iter().map(|(b, _)| b).collect();
    retag(&host, "team/counter", "1.0.0", "stable");
    let base = base_dir();
    let manager = Manager::new(base.path());
    let version = || {
        manager
            .get_plugin("counter")
            .ok()
            .map(|(spec, _)| spec.version().to_string())
    };
    let stable =
        gp_host::hub::Reference::parse(&format!("oci://{host}/team/counter:stable")).unwrap();
    let blob = registry.blob_file(&format!("sha256:{}", sha256(&packages[1])));
    let ((), log) = crate::harness::with_captured_log(|| {
        let following = manager.follow(
            gp_host::Follow::Tag(stable),
            client.clone(),
            Duration::from_millis(100),
        );
        wait_for("1.0.0 installed", || version().as_deref() == Some("1.0.0"));
        // 2.0.0's package, one bit flipped where the registry stores it: same size, another
        // digest.
        let mut tampered = packages[1].clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        replace_file(&blob, &tampered);
        retag(&host, "team/counter", "2.0.0", "stable");
        wait_for("the digest failure", || {
            following
                .status()
                .last_error
                .is_some_and(|e| e.contains("is not the one its manifest declares"))
        });
        let checks = following.status().checks;
        wait_for("two retries", || following.status().checks >= checks + 2);
        assert!(
            following.status().refused.is_empty(),
            "{:?}",
            following.status()
        );
        assert_eq!(version().as_deref(), Some("1.0.0"));
        replace_file(&blob, &packages[1]);
        // The follower records its success just after the swap it waits for.
        wait_for("the upgrade to 2.0.0", || {
            version().as_deref() == Some("2.0.0") && following.status().last_error.is_none()
        });
        let status = following.status();
        assert!(status.refused.is_empty(), "{status:?}");
        assert_eq!(status.last_error, None);
    });
    // The digest failure is logged once, however many checks met it.
    let digest_failures = log
        .lines()
        .filter(|l| {
            l.contains("cannot install it now; the next check tries again")
                && l.contains("is not the one its manifest declares")
        })
        .count();
    assert_eq!(digest_failures, 1, "{log}");
    // What the upgrade replaced is kept, for a roll-back.
    assert_eq!(
        entries(base.path()),
        [".counter.plg.previous", "counter.plg"]
    );
    assert_eq!(
        std::fs::read(base.path().join("counter.plg")).unwrap(),
        packages[1]
    );
}

/// Replaces the file at `path` with `bytes` by a rename, so that the registry, which may be
/// sending it, sends either the old file whole or the new one: written in place, a transfer
/// that began before the write could read it truncated (0 bytes, a digest failure of its own).
fn replace_file(path: &std::path::Path, bytes: &[u8]) {
    let fresh = path.with_extension("replacing");
    std::fs::write(&fresh, bytes).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}
