//! Hostile and broken packages, written entry by entry: each refused naming the entry, with
//! nothing left behind and the plugins already loaded still serving.

use std::path::Path;

use gp_host::package::{self, Limits, SecretKey, Trust};
use gp_host::{Error, Manager};

use super::{dispatch_folder, hex};
use crate::harness::{assert_sample_serves, base_dir, base_dir_with, example};

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

// Long: a table of cases, each with the exact message a user sees, in one place.
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
