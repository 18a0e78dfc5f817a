//! Bad and lying registries: every reference that cannot be installed, and every registry that
//! sends something other than it declares, gets its message, and nothing is installed.

use std::collections::HashMap;

use gp_host::hub::{Client, Namespace};
use gp_host::package::Limits;
use gp_host::{Error, Manager};

use super::{
    anonymous, copy_across, entries, packed, push_image, retag, sha256, start_registry, Auth,
};
use crate::harness::{base_dir, http_server, Reply};

/// Item 5: what bad registries get, through `Manager::install` (the library's door): each a
/// clear error, nothing left in the base directory, the plugins already there still loaded.
// Long: a table of cases, each with the exact message a user sees, in one place.
#[test]
fn bad_registries_are_refused_by_name_and_nothing_is_installed() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = registry.host.clone();
    let scratch = base_dir();
    let (sample, sample_bytes) = packed("sample", scratch.path());
    let client = Client::new(anonymous());
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
    let manifest = copy_across(&host, "team/sample", "0.1.0", "team/dispatch");
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
        .install(&resolved.reference.to_string(), &{
            let mut options = gp_host::InstallOptions::default();
            options.hub = Some(&client);
            options
        })
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
        // The transfer's fault, not the artifact's: a follower tries again.
        assert!(matches!(error, Error::Transfer { .. }), "{error:?}");
        assert_eq!(entries(base.path()), Vec::<String>::new(), "{reference}");
    }
    let client = Client::new(anonymous());
    let error = client
        .search(&Namespace::parse(&format!("{host}/team")).unwrap(), "")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("oci://{host}/team: the registry has no catalog endpoint (GET /v2/_catalog answered 404), so it cannot be searched; install by name still works: gp install NAME@RANGE --registry {host}/team")
    );
}
