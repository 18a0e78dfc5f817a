use gp_host::{Error, Manager};

use crate::harness::{assert_sample_serves, base_dir_with};

#[test]
fn loads_every_example_and_reports_each() {
    let base = base_dir_with(&["sample", "dispatch", "panicky", "slow"]);
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let names: Vec<String> = report.loaded.iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(names, ["dispatch", "panicky", "sample", "slow"]);
    let listed: Vec<String> = manager.list().iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(listed, names);
    assert_sample_serves(&manager);
}

#[test]
fn get_plugin_returns_the_verified_spec() {
    let base = base_dir_with(&["sample"]);
    let manager = Manager::new(base.path());
    assert_eq!(manager.load_plugins().loaded.len(), 1);
    let (spec, _) = manager.get_plugin("sample").unwrap();
    assert_eq!(spec.name(), "sample");
    assert_eq!(spec.version().to_string(), "0.1.0");
    assert_eq!(spec.abi_version, gp_host::ABI_VERSION);
    assert_eq!(spec.dir, base.path().join("sample"));
    let routes = &spec.manifest.http_services.as_ref().unwrap().routes;
    assert_eq!(routes[0].route, "/api/plugin/sample/:id");
    assert_eq!(routes[0].label, "plugin.get");
}

#[test]
fn loading_twice_leaves_loaded_plugins_unchanged() {
    let base = base_dir_with(&["sample", "dispatch"]);
    let manager = Manager::new(base.path());
    assert_eq!(manager.load_plugins().loaded.len(), 2);
    let again = manager.load_plugins();
    assert!(
        again.loaded.is_empty() && again.failed.is_empty(),
        "{again}"
    );
    assert_eq!(again.unchanged.len(), 2);
    assert_sample_serves(&manager);
}

#[test]
fn unknown_plugin_is_not_found() {
    let base = base_dir_with(&["sample"]);
    let manager = Manager::new(base.path());
    assert_eq!(manager.load_plugins().loaded.len(), 1);
    let error = manager.get_plugin("nope").unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }));
    assert_eq!(error.to_string(), "no plugin named `nope` is loaded");
}

#[test]
fn hidden_folders_are_skipped() {
    let base = base_dir_with(&["sample"]);
    std::fs::create_dir(base.path().join(".cache")).unwrap();
    let report = Manager::new(base.path()).load_plugins();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.loaded.len(), 1);
}

#[test]
fn report_prints_a_table_of_folders() {
    let base = base_dir_with(&["sample"]);
    std::fs::create_dir(base.path().join("empty")).unwrap();
    let report = Manager::new(base.path()).load_plugins();
    let expected = format!(
        "FOLDER  STATUS     PLUGIN / ERROR\n\
         empty   failed     {}: no plugin.json in this plugin folder: generate one with `gp manifest <library> -o {}`\n\
         sample  loaded     sample 0.1.0\n",
        base.path().join("empty").display(),
        base.path().join("empty/plugin.json").display()
    );
    assert_eq!(report.to_string(), expected);
}
