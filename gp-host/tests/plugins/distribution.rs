//! Packages on real plugins: packing, verifying, loading, and every hostile package refused
//! with its message, leaving nothing behind and the registry as it was.

use std::path::{Path, PathBuf};

use gp_host::package::{self, Limits, PublicKey, SecretKey, Trust};
use gp_host::{Error, Manager};
use sha2::{Digest, Sha256};

use crate::harness::{assert_sample_serves, base_dir, base_dir_with, example};

/// A plugin folder holding `dispatch`, built from source, outside any base directory.
fn dispatch_folder() -> (tempfile::TempDir, PathBuf) {
    let staging = base_dir();
    gp_host::build::install_library(example("dispatch"), staging.path()).unwrap();
    let dir = staging.path().join("dispatch");
    (staging, dir)
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One archive entry, written with raw headers so that nothing about it is checked.
struct Entry {
    name: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<&'static str>,
}

fn file(name: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry {
        name: name.to_owned(),
        kind: tar::EntryType::Regular,
        data: data.into(),
        link: None,
    }
}

fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = entry.name.as_bytes();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(0o644);
        if let Some(link) = entry.link {
            header.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, entry.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// The files of a good `dispatch` package: plugin.json, the library, and their checksums.
fn good_files() -> Vec<Entry> {
    let (_staging, dir) = dispatch_folder();
    let json = std::fs::read(dir.join("plugin.json")).unwrap();
    let library_name = example("dispatch").file_name().unwrap().to_str().unwrap();
    let library = std::fs::read(dir.join(library_name)).unwrap();
    let checksums = format!(
        "{}  plugin.json\n{}  {library_name}\n",
        hex(&json),
        hex(&library)
    );
    vec![
        file("plugin.json", json),
        file(library_name, library),
        file("CHECKSUMS", checksums),
    ]
}

fn library_name() -> &'static str {
    example("dispatch").file_name().unwrap().to_str().unwrap()
}

/// What is in `dir`, recursively, as relative paths (for "nothing left behind").
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_packed_plugin_verifies_loads_and_is_followed_by_its_package() {
    let (_staging, dir) = dispatch_folder();
    let key = SecretKey::generate().unwrap();
    let base = base_dir_with(&["sample"]);
    let package = base.path().join("dispatch.plg");
    let packed = package::pack(&dir, &package, Some(&key)).unwrap();
    assert_eq!(packed.manifest.name, "dispatch");
    assert_eq!(packed.sha256, hex(&std::fs::read(&package).unwrap()));
    assert_eq!(packed.signed_by, Some(key.public_key()));

    let verified = package::verify(
        &package,
        &Trust::signed_by([key.public_key()]),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(verified.manifest.name, "dispatch");
    assert_eq!(verified.signed_by, Some(key.public_key()));

    let manager = Manager::builder(base.path())
        .trust(Trust::signed_by([key.public_key()]))
        .build();
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    assert!(
        report
            .to_string()
            .contains("dispatch.plg  loaded     dispatch 0.1.0"),
        "{report}"
    );
    let (spec, executor) = manager.get_plugin("dispatch").unwrap();
    assert_eq!(spec.origin, package);
    assert!(spec.dir.starts_with(manager.runtime_dir().join("packages")));
    let mut ctx = gp_host::Context::new().with_label("counter.add");
    ctx.set("count", 1);
    ctx.set("by", 2);
    executor.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("result").and_then(|v| v.as_i64()), Some(3));
    // Loading again leaves it as it is.
    assert_eq!(manager.load_plugins().unchanged.len(), 2);
    assert_sample_serves(&manager);
}

#[test]
fn hostile_and_broken_packages_are_refused_naming_the_entry_and_leave_nothing_behind() {
    let key = SecretKey::generate().unwrap();
    let other = SecretKey::generate().unwrap();
    let library = library_name();
    // A signed good package, then variants of it.
    let (_staging, dir) = dispatch_folder();
    let scratch = base_dir();
    let signed = scratch.path().join("signed.plg");
    package::pack(&dir, &signed, Some(&key)).unwrap();
    let signed_by_other = scratch.path().join("other.plg");
    package::pack(&dir, &signed_by_other, Some(&other)).unwrap();
    let unsigned = scratch.path().join("unsigned.plg");
    package::pack(&dir, &unsigned, None).unwrap();

    let with = |change: &dyn Fn(&mut Vec<Entry>)| {
        let mut entries = good_files();
        change(&mut entries);
        tar_gz(&entries)
    };
    let zeros = vec![0u8; 64 << 20];
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "absolute",
            with(&|e| e.push(file("/etc/cron.d/evil", "* * * * * root sh"))),
            "entry `/etc/cron.d/evil` is an absolute path".into(),
        ),
        (
            "dotdot",
            with(&|e| e.push(file("../../evil.so", "x"))),
            "entry `../../evil.so` climbs out of the package with `..`".into(),
        ),
        (
            "symlink",
            with(&|e| {
                e.push(Entry {
                    name: "passwd".into(),
                    kind: tar::EntryType::Symlink,
                    data: Vec::new(),
                    link: Some("/etc/passwd"),
                })
            }),
            "entry `passwd` is a symbolic link; a package holds regular files only".into(),
        ),
        (
            "hardlink",
            with(&|e| {
                e.push(Entry {
                    name: "shadow".into(),
                    kind: tar::EntryType::Link,
                    data: Vec::new(),
                    link: Some("/etc/shadow"),
                })
            }),
            "entry `shadow` is a hard link; a package holds regular files only".into(),
        ),
        (
            "device",
            with(&|e| {
                e.push(Entry {
                    name: "sda".into(),
                    kind: tar::EntryType::Block,
                    data: Vec::new(),
                    link: None,
                })
            }),
            "entry `sda` is a block device; a package holds regular files only".into(),
        ),
        (
            "fifo",
            with(&|e| {
                e.push(Entry {
                    name: "pipe".into(),
                    kind: tar::EntryType::Fifo,
                    data: Vec::new(),
                    link: None,
                })
            }),
            "entry `pipe` is a named pipe; a package holds regular files only".into(),
        ),
        (
            "subfolder",
            with(&|e| e.push(file("lib/extra.so", "x"))),
            "entry `lib/extra.so` is in a subfolder; a package holds files at its root only".into(),
        ),
        (
            "duplicate",
            with(&|e| e.push(file("plugin.json", "{}"))),
            "entry `plugin.json` appears twice".into(),
        ),
        (
            "too-many",
            with(&|e| {
                for i in 0..20 {
                    e.push(file(&format!("f{i}"), "x"));
                }
            }),
            "it has more than 16 entries (the limit)".into(),
        ),
        (
            "bomb",
            tar_gz(&[file("zeros", zeros.clone())]),
            "it holds more than 50331648 bytes once decompressed (the limit)".into(),
        ),
        (
            "unlisted",
            with(&|e| e.push(file("README", "read me"))),
            "entry `README` is not in the checksum list".into(),
        ),
        (
            "tampered",
            with(&|e| {
                let lib = e.iter_mut().find(|e| e.name == library).unwrap();
                let at = lib.data.len() / 2;
                lib.data[at] ^= 0xff;
            }),
            format!("checksum mismatch for `{library}`: CHECKSUMS says "),
        ),
        (
            "no-checksums",
            with(&|e| e.retain(|e| e.name != "CHECKSUMS")),
            "it has no CHECKSUMS file; make packages with `gp pack`".into(),
        ),
        (
            "listed-missing",
            with(&|e| {
                let json = e.iter().position(|e| e.name == "plugin.json").unwrap();
                e.remove(json);
            }),
            "`plugin.json` is in the checksum list but not in the package".into(),
        ),
        (
            "no-plugin-json",
            with(&|e| {
                e.retain(|e| e.name != "plugin.json");
                let c = e.iter_mut().find(|e| e.name == "CHECKSUMS").unwrap();
                let text = String::from_utf8(c.data.clone()).unwrap();
                c.data = text
                    .lines()
                    .filter(|l| !l.ends_with("plugin.json"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes();
            }),
            "it has no plugin.json".into(),
        ),
        (
            "no-library",
            with(&|e| {
                e.retain(|e| e.name != library);
                let c = e.iter_mut().find(|e| e.name == "CHECKSUMS").unwrap();
                let text = String::from_utf8(c.data.clone()).unwrap();
                c.data = text
                    .lines()
                    .filter(|l| !l.ends_with(library))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes();
            }),
            format!("the library `{library}` that its plugin.json names is not in the package"),
        ),
        (
            "not-gzip",
            b"PK\x03\x04 this is a zip file".to_vec(),
            "not a gzip-compressed tar archive, or a corrupt one".into(),
        ),
        (
            "truncated",
            {
                let data = std::fs::read(&unsigned).unwrap();
                data[..data.len() / 3].to_vec()
            },
            "not a gzip-compressed tar archive, or a corrupt one".into(),
        ),
        (
            "other-key",
            std::fs::read(&signed_by_other).unwrap(),
            "its signature does not verify with any trusted key: it was signed by another key, or changed after signing".into(),
        ),
        (
            "unsigned",
            std::fs::read(&unsigned).unwrap(),
            "it is not signed, and this host accepts signed packages only".into(),
        ),
    ];

    let limits = Limits {
        max_entries: 16,
        max_bytes: 48 << 20,
    };
    // A host that requires signatures by `key` (for the last two cases), and one that takes
    // any package whose checksums hold (the hand-made ones are not signed).
    let strict_trust = Trust::signed_by([key.public_key()]);
    let hosts: Vec<(tempfile::TempDir, Manager, Trust)> = [strict_trust, Trust::default()]
        .into_iter()
        .map(|trust| {
            let base = base_dir_with(&["sample"]);
            let manager = Manager::builder(base.path())
                .trust(trust.clone())
                .package_limits(limits)
                .build();
            assert!(manager.load_plugins().is_ok());
            // The good signed package loads, so each refusal below is about its one defect.
            std::fs::copy(&signed, base.path().join("good.plg")).unwrap();
            let report = manager.load_plugins();
            assert!(report.is_ok(), "{report}");
            manager.unload("dispatch").unwrap();
            std::fs::remove_file(base.path().join("good.plg")).unwrap();
            (base, manager, trust)
        })
        .collect();

    for (name, data, expected) in &cases {
        let strict = matches!(*name, "other-key" | "unsigned");
        let (base, manager, trust) = &hosts[if strict { 0 } else { 1 }];
        let before = tree(&manager.runtime_dir().join("packages"));
        let path = base.path().join(format!("{name}.plg"));
        std::fs::write(&path, data).unwrap();
        let error = manager.load_plugin(&path).unwrap_err();
        let message = error.to_string();
        let prefix = format!("{}: package refused: {expected}", path.display());
        assert!(
            matches!(error, Error::Package { .. }) && message.starts_with(&prefix),
            "{name}:\n  got      {message}\n  expected {prefix}"
        );
        // The same verdict without a manager, as `gp verify` gives it.
        let verdict = package::verify(&path, trust, &limits)
            .unwrap_err()
            .to_string();
        assert!(verdict.starts_with(&prefix), "{name} (verify): {verdict}");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            tree(&manager.runtime_dir().join("packages")),
            before,
            "{name} left something behind"
        );
        assert!(manager.executor("dispatch").is_err(), "{name} loaded");
        assert_sample_serves(manager);
    }
}

#[test]
fn keys_round_trip_through_their_files_and_bad_keys_say_why() {
    let dir = base_dir();
    let key = SecretKey::generate().unwrap();
    key.write(&dir.path().join("k.key")).unwrap();
    let again = SecretKey::read(&dir.path().join("k.key")).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    let text = key.public_key().to_string();
    assert_eq!(text.len(), 44);
    assert_eq!(
        PublicKey::from_text_or_file(&text).unwrap(),
        key.public_key()
    );
    std::fs::write(dir.path().join("k.pub"), format!("{text}\n")).unwrap();
    assert_eq!(
        PublicKey::from_text_or_file(dir.path().join("k.pub").to_str().unwrap()).unwrap(),
        key.public_key()
    );
    assert_eq!(
        PublicKey::from_text_or_file("not-a-key")
            .unwrap_err()
            .to_string(),
        "not-a-key: not a usable key: not base64 (Invalid symbol 45, offset 3.)"
    );
    assert_eq!(
        PublicKey::from_text_or_file("AAAA")
            .unwrap_err()
            .to_string(),
        "AAAA: not a usable key: 3 bytes, expected 32"
    );
    // A key file is never overwritten.
    let error = key
        .write(&dir.path().join("k.key"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("File exists"), "{error}");
}

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
    let result = manager.install(
        url,
        &gp_host::InstallOptions {
            sha256,
            trust,
            ..Default::default()
        },
    );
    let left: Vec<String> = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sample" && n != ".gp-runtime")
        .collect();
    (manager, result, left, base)
}

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

/// A local git repository holding a plugin crate `package`: tag `v1.0.0` (version 1.0.0),
/// `main` one commit later (1.1.0), branch `broken` (does not compile) and branch `plain`
/// (a cdylib that is not a gp plugin).
///
/// Each test uses its own package name: cargo names a workspace root package's artifacts by
/// its name and its path *relative to its workspace*, so two repositories with the same
/// package built into one shared target dir would share (and reuse) one build.
fn git_repository(package: &str) -> (tempfile::TempDir, PathBuf) {
    let root = base_dir();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.name=gp", "-c", "user.email=gp@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let write = |version: &str, lib: &str| {
        std::fs::write(
            repo.join("Cargo.toml"),
            crate::harness::plugin_manifest(package, version, true),
        )
        .unwrap();
        std::fs::write(repo.join("src/lib.rs"), lib).unwrap();
    };
    let plugin = "use gp_sdk::{plugin_entry, Context, Result};\n\n#[plugin_entry]\nfn run(ctx: &mut Context) -> Result {\n    ctx.set(\"built\", concat!(\"from git \", env!(\"CARGO_PKG_VERSION\")));\n    Ok(())\n}\n";
    git(&["init", "--quiet", "--initial-branch", "main"]);
    // The workspace's lock file, so the build reuses the dependencies the tests built.
    std::fs::copy(
        crate::harness::workspace().join("Cargo.lock"),
        repo.join("Cargo.lock"),
    )
    .unwrap();
    write("1.0.0", plugin);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "1.0.0"]);
    git(&["tag", "v1.0.0"]);
    git(&["checkout", "--quiet", "-b", "broken"]);
    write("1.0.0", "fn oops() -> u32 { missing_value }\n");
    git(&["commit", "--quiet", "-am", "broken"]);
    git(&["checkout", "--quiet", "main"]);
    git(&["checkout", "--quiet", "-b", "plain"]);
    write(
        "1.0.0",
        "#[no_mangle]\npub extern \"C\" fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    );
    std::fs::write(
        repo.join("Cargo.toml"),
        format!("[package]\nname = \"{package}\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n{}", crate::harness::profile()),
    )
    .unwrap();
    git(&["commit", "--quiet", "-am", "plain"]);
    git(&["checkout", "--quiet", "main"]);
    write("1.1.0", plugin);
    git(&["commit", "--quiet", "-am", "1.1.0"]);
    (root, repo)
}

/// A base directory whose folder `name` has a remote_git plugin.json for `path`.
fn remote_git_folder(name: &str, version: &str, path: &str) -> tempfile::TempDir {
    let base = base_dir();
    let dir = base.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("plugin.json"),
        serde_json::json!({
            "name": name,
            "version": version,
            "source": {"mode": "remote_git", "path": path}
        })
        .to_string(),
    )
    .unwrap();
    base
}

fn git_manager(base: &Path, runtime: &Path) -> Manager {
    Manager::builder(base)
        .runtime_dir(runtime)
        .git_build(gp_host::build::BuildOptions {
            release: false,
            target_dir: Some(crate::harness::workspace().join("target/test-plugins")),
            quiet: true,
        })
        .build()
}

#[test]
fn remote_git_plugins_are_cloned_built_cached_by_commit_and_loaded() {
    let (_root, repo) = git_repository("from-git");
    let runtime = base_dir();
    let url = repo.display().to_string();

    let base = remote_git_folder("from-git", "1.0.0", &format!("{url}#v1.0.0"));
    let manager = git_manager(base.path(), runtime.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let (spec, executor) = manager.get_plugin("from-git").unwrap();
    assert_eq!(spec.origin, base.path().join("from-git"));
    let mut ctx = gp_host::Context::new();
    executor.execute(&mut ctx).unwrap();
    assert_eq!(
        ctx.get("built").and_then(|v| v.as_str()),
        Some("from git 1.0.0")
    );

    // Built once per commit: another manager over the same runtime dir reuses the build.
    let builds: Vec<PathBuf> = std::fs::read_dir(runtime.path().join("git"))
        .unwrap()
        .map(|e| e.unwrap().path().join("builds"))
        .collect();
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = stamp(&builds[0]);
    let again = git_manager(base.path(), runtime.path());
    assert!(again.load_plugins().is_ok());
    assert_eq!(stamp(&builds[0]), before, "rebuilt a commit already built");

    // The default branch, when no revision is given.
    let base = remote_git_folder("from-git", "1.1.0", &url);
    let manager = git_manager(base.path(), runtime.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    assert_eq!(manager.list()[0].version().to_string(), "1.1.0");

    // The branch moves on: a reload fetches it and upgrades to what it holds now.
    let toml = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        toml.replace("version = \"1.1.0\"", "version = \"1.2.0\""),
    )
    .unwrap();
    let commit = std::process::Command::new("git")
        .args(["-c", "user.name=gp", "-c", "user.email=gp@example.com"])
        .args(["commit", "--quiet", "-am", "1.2.0"])
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(commit.success());
    std::fs::write(
        base.path().join("from-git/plugin.json"),
        serde_json::json!({
            "name": "from-git",
            "version": "1.2.0",
            "source": {"mode": "remote_git", "path": url}
        })
        .to_string(),
    )
    .unwrap();
    let upgrade = manager.reload("from-git").unwrap();
    assert!(
        matches!(&upgrade, gp_host::Upgrade::Upgraded(u) if u.to.version().to_string() == "1.2.0"),
        "{upgrade:?}"
    );
}

#[test]
fn remote_git_failures_say_what_went_wrong() {
    let (_root, repo) = git_repository("git-failures");
    let runtime = base_dir();
    let url = repo.display().to_string();
    let cases: Vec<(String, &str, String)> = vec![
        (
            "/nonexistent/plugin.git".into(),
            "1.0.0",
            "git repository /nonexistent/plugin.git: cannot clone it: fatal: ".into(),
        ),
        (
            format!("{url}#v9.9.9"),
            "1.0.0",
            format!("git repository {url}: revision `v9.9.9` is not in the repository (not a branch, tag or commit)"),
        ),
        (
            format!("{url}#broken"),
            "1.0.0",
            "error[E0425]: cannot find value `missing_value` in this scope".into(),
        ),
        (
            format!("{url}#plain"),
            "1.0.0",
            format!("{url}@"),
        ),
        (
            format!("{url}#main"),
            "1.0.0",
            "version is \"1.0.0\" but the library ".into(),
        ),
    ];
    for (path, version, expected) in cases {
        let base = remote_git_folder("git-failures", version, &path);
        let manager = git_manager(base.path(), runtime.path());
        let error = manager
            .load_plugin(base.path().join("git-failures"))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&expected) || message.contains(&expected),
            "{path}:\n  got      {message}\n  expected {expected}"
        );
        if path.ends_with("#broken") {
            assert!(
                message.starts_with(&format!("building {url}@")),
                "{message}"
            );
        }
        if path.ends_with("#plain") {
            assert!(
                message.ends_with(": not a gp plugin: it exports no gp root module: build it from a crate that depends on gp-sdk and marks its entry with #[plugin_entry]"),
                "{message}"
            );
        }
        assert!(manager.list().is_empty());
    }
}
