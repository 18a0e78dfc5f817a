//! A good package: packed, signed, verified and loaded, followed by its package; and the keys
//! that sign and check it, through their files.

use gp_host::package::{self, Limits, PublicKey, SecretKey, Trust};
use gp_host::Manager;

use super::{dispatch_folder, hex};
use crate::harness::{assert_sample_serves, base_dir, base_dir_with};

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
