//! Every input a host refuses: the exact message a user sees, and the host serving on.

use std::path::{Path, PathBuf};

use gp_host::build::install_library;
use gp_host::{Error, Manager};

use crate::harness::{
    assert_sample_serves, base_dir_with, example, fixture, plain_cdylib, Interface,
};

/// A base dir with `sample` and a `bad` plugin folder (a copy of `dispatch`, then `spoil`ed),
/// loaded. Returns the failure's error, after checking that nothing else was disturbed.
fn load_spoiled(spoil: impl FnOnce(&Path)) -> (Error, PathBuf, tempfile::TempDir) {
    let base = base_dir_with(&["sample"]);
    let bad = base.path().join("bad");
    let installed = install_library(example("dispatch"), &base.path().join("staging")).unwrap();
    std::fs::rename(installed.path.parent().unwrap(), &bad).unwrap();
    std::fs::remove_dir(base.path().join("staging")).unwrap();
    spoil(&bad);

    // Not building remote_git plugins: these tests see what a host that does not build says
    // (building is covered in `distribution`).
    let manager = Manager::builder(base.path()).remote_git(false).build();
    let report = manager.load_plugins();
    let loaded: Vec<&str> = report.loaded.iter().map(|s| s.name()).collect();
    assert_eq!(loaded, ["sample"], "{report}");
    assert_eq!(report.failed.len(), 1, "{report}");
    assert_sample_serves(&manager);
    assert!(manager.get_plugin("dispatch").is_err(), "no half entry");
    let failure = report.failed.into_iter().next().unwrap();
    assert_eq!(failure.dir, bad);
    (failure.error, bad, base)
}

fn edit_json(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("plugin.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

fn library_of(dir: &Path) -> PathBuf {
    dir.join(format!(
        "{}dispatch{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
fn rejects_plugin_json_that_is_not_json() {
    let (error, dir, _base) = load_spoiled(|dir| {
        std::fs::write(dir.join("plugin.json"), "<plugin name=dispatch/>\n").unwrap()
    });
    assert_eq!(
        error.to_string(),
        format!(
            "{}: expected value at line 1 column 1",
            dir.join("plugin.json").display()
        )
    );
}

#[test]
fn rejects_a_plugin_json_too_large_to_be_one_gp_wrote_without_reading_it() {
    let (error, dir, _base) =
        load_spoiled(|dir| edit_json(dir, |json| json["description"] = "x".repeat(2 << 20).into()));
    let size = std::fs::metadata(dir.join("plugin.json")).unwrap().len();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: the manifest is {size} bytes; gp reads at most 1048576: a plugin.json this large is not one gp wrote",
            dir.join("plugin.json").display()
        )
    );
}

/// Spoils `plugin.json` with `edit` and asserts the error reads
/// `<path of plugin.json>: <message> at line L column C`.
fn assert_json_refused(edit: impl FnOnce(&mut serde_json::Value), message: &str) {
    let (error, dir, _base) = load_spoiled(|dir| edit_json(dir, edit));
    assert!(matches!(error, Error::InvalidManifest { .. }), "{error:?}");
    let text = error.to_string();
    let prefix = format!("{}: {message} at line ", dir.join("plugin.json").display());
    assert!(text.starts_with(&prefix), "{text}");
}

#[test]
fn rejects_plugin_json_missing_a_required_field() {
    assert_json_refused(
        |j| drop(j.as_object_mut().unwrap().remove("version")),
        "missing field `version`",
    );
}

#[test]
fn rejects_plugin_json_with_an_unknown_field() {
    assert_json_refused(
        |j| {
            let version = j.as_object_mut().unwrap().remove("version").unwrap();
            j["verison"] = version;
        },
        "unknown field `verison`, expected one of `name`, `version`, `description`, `maintainers`, `home`, `source`, `http_services`",
    );
}

#[test]
fn rejects_plugin_json_with_a_bad_semver() {
    assert_json_refused(
        |j| j["version"] = "0.1".into(),
        "version \"0.1\" is not semver 2 (unexpected end of input while parsing minor version number); write MAJOR.MINOR.PATCH, e.g. \"1.2.3\"",
    );
}

#[test]
fn rejects_plugin_json_with_a_bad_source_mode() {
    assert_json_refused(
        |j| j["source"]["mode"] = "local_dll".into(),
        "unknown variant `local_dll`, expected `local_so` or `remote_git`",
    );
}

#[test]
fn rejects_plugin_json_with_a_bad_route_method() {
    assert_json_refused(
        |j| j["http_services"]["routes"][0]["method"] = "FETCH".into(),
        "unknown variant `FETCH`, expected one of `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS`",
    );
}

#[test]
fn rejects_plugin_json_whose_name_disagrees_with_the_binary() {
    let (error, dir, _base) = load_spoiled(|dir| edit_json(dir, |j| j["name"] = "other".into()));
    let library = library_of(&dir);
    assert_eq!(
        error.to_string(),
        format!(
            "{}: name is \"other\" but the library {} says \"dispatch\": regenerate plugin.json with `gp manifest {} -o {}`",
            dir.join("plugin.json").display(),
            library.display(),
            library.display(),
            dir.join("plugin.json").display()
        )
    );
}

#[test]
fn rejects_plugin_json_whose_version_disagrees_with_the_binary() {
    let (error, dir, _base) = load_spoiled(|dir| edit_json(dir, |j| j["version"] = "0.2.0".into()));
    let library = library_of(&dir);
    assert_eq!(
        error.to_string(),
        format!(
            "{}: version is \"0.2.0\" but the library {} says \"0.1.0\": regenerate plugin.json with `gp manifest {} -o {}`",
            dir.join("plugin.json").display(),
            library.display(),
            library.display(),
            dir.join("plugin.json").display()
        )
    );
}

#[test]
fn rejects_plugin_json_whose_routes_disagree_with_the_binary() {
    let (error, _dir, _base) = load_spoiled(|dir| {
        edit_json(dir, |j| {
            j["http_services"]["routes"][0]["label"] = "counter.read".into()
        })
    });
    assert!(
        matches!(
            error,
            Error::ManifestMismatch {
                field: "http_services",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn rejects_a_folder_without_plugin_json() {
    let (error, dir, _base) =
        load_spoiled(|dir| std::fs::remove_file(dir.join("plugin.json")).unwrap());
    assert_eq!(
        error.to_string(),
        format!(
            "{}: no plugin.json in this plugin folder: generate one with `gp manifest <library> -o {}`",
            dir.display(),
            dir.join("plugin.json").display()
        )
    );
}

#[test]
fn rejects_a_missing_library() {
    let (error, dir, _base) = load_spoiled(|dir| std::fs::remove_file(library_of(dir)).unwrap());
    assert_eq!(
        error.to_string(),
        format!(
            "{}: not a loadable library: the file does not exist (plugin.json's source.path names it)",
            library_of(&dir).display()
        )
    );
}

#[test]
fn rejects_a_library_that_is_not_elf() {
    let (error, dir, _base) =
        load_spoiled(|dir| std::fs::write(library_of(dir), "#!/bin/sh\necho hi\n").unwrap());
    assert_eq!(
        error.to_string(),
        format!(
            "{}: not a loadable library: unknown file format, expected a shared library (.so, .dylib)",
            library_of(&dir).display()
        )
    );
}

#[test]
fn rejects_an_empty_library() {
    let (error, dir, _base) = load_spoiled(|dir| std::fs::write(library_of(dir), "").unwrap());
    assert_eq!(
        error.to_string(),
        format!(
            "{}: not a loadable library: the file is empty",
            library_of(&dir).display()
        )
    );
}

/// Cut at these lengths, dlopen killed a host with SIGBUS; now each is an error.
#[test]
fn rejects_truncated_libraries_at_every_length_tried() {
    let full = std::fs::read(example("dispatch")).unwrap();
    let lengths = [
        32,
        64,
        1024,
        4096,
        64 * 1024,
        full.len() / 2,
        full.len() - 4096,
        full.len() - 1,
    ];
    for len in lengths {
        let (error, dir, _base) =
            load_spoiled(|dir| std::fs::write(library_of(dir), &full[..len]).unwrap());
        let message = error.to_string();
        let prefix = format!(
            "{}: not a loadable library: the file is truncated",
            library_of(&dir).display()
        );
        assert!(message.starts_with(&prefix), "cut at {len}: {message}");
        assert!(
            message.ends_with("build or copy it again"),
            "cut at {len}: {message}"
        );
    }
}

#[test]
fn rejects_a_library_that_exports_no_gp_root_module() {
    let (error, dir, _base) = load_spoiled(|dir| {
        std::fs::copy(plain_cdylib(), library_of(dir))
            .map(drop)
            .unwrap()
    });
    assert_eq!(
        error.to_string(),
        format!(
            "{}: not a gp plugin: it exports no gp root module: build it from a crate that depends on gp-sdk and marks its entry with #[plugin_entry]",
            library_of(&dir).display()
        )
    );
}

/// Puts `library` (built by a fixture, whose plugin is called `name`) in the `bad` folder,
/// with a plugin.json written by hand: `gp manifest` would rightly refuse an incompatible one.
fn with_fixture_library(dir: &Path, library: &Path, name: &str) {
    std::fs::remove_file(library_of(dir)).unwrap();
    let file = library.file_name().unwrap();
    std::fs::copy(library, dir.join(file)).unwrap();
    let json = serde_json::json!({
        "name": name,
        "version": "1.0.0",
        "description": "A plugin crate of its own",
        "source": {"mode": "local_so", "path": file.to_str().unwrap()},
    });
    std::fs::write(dir.join("plugin.json"), json.to_string()).unwrap();
}

#[test]
fn rejects_a_plugin_built_against_a_gp_core_with_another_layout() {
    let library = fixture(Interface::WiderErrorKind);
    let (error, dir, _base) =
        load_spoiled(|dir| with_fixture_library(dir, library, "layout-mismatch"));
    assert!(matches!(error, Error::Incompatible { .. }), "{error:?}");
    let message = error.to_string();
    let installed = dir.join(library.file_name().unwrap());
    assert_eq!(
        message,
        format!(
            "plugin `layout-mismatch` ({}) was built against an incompatible gp-core: \
             `CallError.kind`: incompatible type size (host expects 1, plugin has 4); \
             `CallError.kind`: incompatible type alignment (host expects 1, plugin has 4); \
             `CallErrorKind.field_0`: mismatched type (host expects u8, plugin has u32); \
             rebuild it against the host's gp-sdk (the full layout report is logged at trace level)",
            installed.display()
        )
    );
    assert_eq!(message.lines().count(), 1, "one line, not the layout dump");
}

#[test]
fn rejects_a_plugin_built_against_an_older_gp_core() {
    let library = fixture(Interface::OlderVersion);
    let (error, dir, _base) =
        load_spoiled(|dir| with_fixture_library(dir, library, "version-mismatch"));
    let installed = dir.join(library.file_name().unwrap());
    assert_eq!(
        error.to_string(),
        format!(
            "plugin `version-mismatch` ({}) was built against an incompatible gp-core: 0.0.1, where this host speaks 0.1.x; rebuild it with gp-sdk 0.1",
            installed.display(),
        )
    );
}

#[test]
fn rejects_two_plugins_with_one_name_naming_both_folders() {
    let base = base_dir_with(&["sample"]);
    let copy = base.path().join("sample-copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(base.path().join("sample")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert_eq!(report.loaded.len(), 1);
    assert_eq!(
        report.failed[0].error.to_string(),
        format!(
            "plugin `sample` in {} is already loaded from {}: plugin names must be unique, remove or rename one",
            copy.display(),
            base.path().join("sample").display()
        )
    );
    assert_sample_serves(&manager);
}

#[test]
fn reports_remote_git_plugins_as_needing_a_build() {
    let (error, dir, _base) = load_spoiled(|dir| {
        edit_json(
            dir,
            |j| {
                j["source"] =
                    serde_json::json!({"mode": "remote_git", "path": "https://example.com/p.git"})
            },
        )
    });
    assert_eq!(
        error.to_string(),
        format!(
            "plugin `dispatch` ({}) has source.mode remote_git (https://example.com/p.git), and this host does not build plugins (gp-host's `git` feature and `ManagerBuilder::remote_git`): build it with `gp build` and load the built folder",
            dir.join("plugin.json").display()
        )
    );
}

#[test]
fn reports_a_missing_base_dir() {
    let base = crate::harness::base_dir();
    let missing = base.path().join("nowhere");
    let report = Manager::new(&missing).load_plugins();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.failed[0].error.to_string(),
        format!(
            "{}: the plugin base directory does not exist: create it, or point the manager at the directory that holds the plugin folders",
            missing.display()
        )
    );
}
