//! Every accepted form of `#[plugin_entry]`, `#[on_load]` and `#[on_unload]`
//! (`gp-sdk/tests/accepted/*.rs`, one crate root each) builds as a plugin, loads and runs.
//!
//! These were trybuild `pass` cases. Here they are built as the cdylibs they are meant to be,
//! in one cargo workspace with the other fixtures, and loaded: stronger than a binary that
//! compiles, and it keeps trybuild's own run to `cargo check` (a project with a `pass` case
//! makes trybuild build every case, one cargo invocation at a time).

use std::path::PathBuf;

use gp_host::build::install_library;
use gp_host::{Context, Manager};

use crate::harness::{base_dir, build_workspace, target_dir, workspace};

/// What a call with `n = 21` leaves in the context, per case (default: `k = 1`).
fn expected(case: &str) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    match case {
        "all-arguments" => Some(("label", json!("none"))),
        "beego-routes" => None,
        "boxed-error" => Some(("n", json!(42))),
        "string-error" => Some(("double", json!(42))),
        _ => Some(("k", json!(1))),
    }
}

#[test]
fn every_accepted_form_of_the_macros_builds_loads_and_runs() {
    let dir = workspace().join("gp-sdk/tests/accepted");
    let mut cases: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let stem = path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('_', "-");
            (stem, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "{} cases in {}",
        cases.len(),
        dir.display()
    );
    let crates: Vec<(String, &str, &str)> = cases
        .iter()
        .map(|(stem, source)| (format!("accepted-{stem}"), "1.0.0", source.as_str()))
        .collect();
    let crates: Vec<(&str, &str, &str)> = crates
        .iter()
        .map(|(package, version, source)| (package.as_str(), *version, *source))
        .collect();
    let libraries = build_workspace(&target_dir().join("fixtures/accepted"), &crates, "");

    for (stem, _) in &cases {
        let package = format!("accepted-{stem}");
        let library: &PathBuf = libraries
            .get(&package)
            .unwrap_or_else(|| panic!("{package} built no library"));
        let info = gp_host::inspect(library).unwrap_or_else(|e| panic!("{package}: {e}"));
        let name = info.manifest.name.clone();
        if stem != "all-arguments" {
            assert_eq!(
                name, package,
                "the manifest's name defaults to the package's"
            );
        }

        // Each in a base dir of its own: two cases may declare the same plugin name.
        let base = base_dir();
        install_library(library, base.path()).unwrap();
        let manager = Manager::new(base.path());
        let report = manager.load_plugins();
        assert!(report.is_ok(), "{package}: {report:?}");
        let (_, executor) = manager
            .get_plugin(&name)
            .unwrap_or_else(|e| panic!("{package} is loaded as {name}: {e}"));
        let mut ctx = Context::new();
        ctx.set("n", 21);
        executor
            .execute(&mut ctx)
            .unwrap_or_else(|e| panic!("{package}: {e}"));
        if let Some((key, value)) = expected(stem) {
            assert_eq!(
                ctx.to_json()[key],
                value,
                "{package}: `{key}` after the call"
            );
        }
        manager
            .unload(&name)
            .unwrap_or_else(|e| panic!("{package}: {e}"));
    }
}
