//! Editing a plugin's `Cargo.toml` metadata rebuilds it, and its embedded manifest follows.

use gp_host::build::cargo_build;

use crate::harness::{options, profile, target_dir, workspace};

fn write_manifest(root: &std::path::Path, description: &str) {
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"metadata-edit\"\nversion = \"1.0.0\"\nedition = \"2021\"\ndescription = {description:?}\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ngp-sdk = {{ path = {:?} }}\n\n[workspace]\n{}",
            workspace().join("gp-sdk").display().to_string(),
            profile()
        ),
    )
    .unwrap();
}

#[test]
fn editing_the_description_in_cargo_toml_rebuilds_the_manifest() {
    let root = target_dir().join("fixtures").join("metadata-edit");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("src/lib.rs"),
        "#[gp_sdk::plugin_entry]\nfn run(_ctx: &mut gp_sdk::Context) -> gp_sdk::Result {\n    Ok(())\n}\n",
    )
    .unwrap();
    let build = || {
        let libraries = cargo_build(&root.join("Cargo.toml"), &[], &options()).unwrap();
        let library = libraries.into_iter().next().expect("a cdylib");
        gp_host::inspect(&library).unwrap().manifest.description
    };

    write_manifest(&root, "the first description");
    assert_eq!(build().as_deref(), Some("the first description"));

    // Only the metadata changes: no source file is touched.
    write_manifest(&root, "the second description");
    assert_eq!(build().as_deref(), Some("the second description"));
}
