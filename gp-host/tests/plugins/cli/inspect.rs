//! `gp manifest`, `gp inspect` and `gp list`: what the binary says about plugins without
//! calling them.

use std::path::Path;

use super::{gp, stderr, stdout};
use crate::call_cli::sample_lines;
use crate::harness::{base_dir_with, example, fixture, Interface};

#[test]
fn manifest_prints_the_plugin_json_that_matches_the_binary() {
    let output = gp(&[&"manifest", &example("dispatch")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest = gp_host::Manifest::from_plugin_json(&stdout(&output)).unwrap();
    assert_eq!(manifest.name, "dispatch");
    let source = manifest.source.unwrap();
    assert_eq!(
        Path::new(&source.path),
        Path::new(example("dispatch").file_name().unwrap())
    );
}

#[test]
fn manifest_writes_a_file_a_manager_accepts() {
    let base = crate::harness::base_dir();
    let dir = base.path().join("dispatch");
    std::fs::create_dir(&dir).unwrap();
    let library = dir.join(example("dispatch").file_name().unwrap());
    std::fs::copy(example("dispatch"), &library).unwrap();
    let output = gp(&[&"manifest", &library, &"-o", &dir.join("plugin.json")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = gp_host::Manager::new(base.path()).load_plugins();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn inspect_shows_the_embedded_manifest_and_abi_version() {
    let output = gp(&[&"inspect", &example("sample")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), sample_lines("loadable"));
}

#[test]
fn inspect_says_exactly_why_a_library_is_refused() {
    let output = gp(&[&"inspect", &fixture(Interface::OlderVersion)]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: plugin `version-mismatch` ({}) was built against an incompatible gp-core: 0.0.1, where this host speaks 0.1.x; rebuild it with gp-sdk 0.1\n",
            fixture(Interface::OlderVersion).display(),
        )
    );
}

#[test]
fn list_prints_each_folder_with_its_status() {
    let base = base_dir_with(&["sample", "dispatch"]);
    std::fs::create_dir(base.path().join("broken")).unwrap();
    std::fs::write(base.path().join("broken/plugin.json"), "{").unwrap();
    let output = gp(&[&"list", &base.path()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed folder fails the command"
    );
    assert_eq!(
        stdout(&output),
        format!(
            "FOLDER    STATUS     PLUGIN / ERROR\n\
             broken    failed     {}: EOF while parsing an object at line 1 column 1\n\
             dispatch  loaded     dispatch 0.1.0\n\
             sample    loaded     sample 0.1.0\n",
            base.path().join("broken/plugin.json").display()
        )
    );
}
