//! The messages on a newcomer's way: a plugin folder or a bare library given as the base
//! directory, a plugin.json that disagrees with its library, `--help`, and a bare file name.

use std::path::Path;

use super::gp;
use crate::harness::{base_dir, base_dir_with, example};

/// Item 3: a plugin's own folder given as the base directory, and a library lying directly in
/// the base directory, are named as such, and nothing loaded is a failure.
#[test]
fn a_plugin_folder_or_a_bare_library_given_as_base_says_what_a_base_directory_is() {
    let base = base_dir_with(&["sample"]);
    let folder = base.path().join("sample");
    let plugin_folder = format!(
        "error: {} holds a plugin.json: it is a plugin folder, not a base directory; give its parent, {}, as the base directory\n",
        folder.display(),
        base.path().display()
    );
    let listed = gp(base.path(), &[&"list", &folder]);
    assert_eq!(listed.code, Some(1));
    assert_eq!(listed.stdout, "FOLDER  STATUS     PLUGIN / ERROR\n");
    assert_eq!(listed.stderr, plugin_folder);
    let called = gp(base.path(), &[&"call", &folder, &"sample"]);
    assert_eq!(called.code, Some(1));
    assert_eq!(called.stdout, "");
    assert_eq!(called.stderr, plugin_folder);

    // Relative, as typed: the parent is named as typed too.
    let listed = gp(base.path(), &[&"list", &"sample"]);
    assert_eq!(listed.code, Some(1));
    assert_eq!(
        listed.stderr,
        "error: sample holds a plugin.json: it is a plugin folder, not a base directory; give its parent, ., as the base directory\n"
    );

    let work = base_dir();
    let library = example("sample").file_name().unwrap().to_str().unwrap();
    std::fs::create_dir(work.path().join("b")).unwrap();
    std::fs::copy(example("sample"), work.path().join("b").join(library)).unwrap();
    let bare = format!(
        "error: b/{library} is a library directly in the base directory b, where only plugin folders and .plg packages are loaded: put it in a folder of its own with a plugin.json (mkdir b/sample && mv b/{library} b/sample/ && gp manifest b/sample/{library} -o b/sample/plugin.json)\n"
    );
    let listed = gp(work.path(), &[&"list", &"b"]);
    assert_eq!(listed.code, Some(1));
    assert_eq!(listed.stdout, "FOLDER  STATUS     PLUGIN / ERROR\n");
    assert_eq!(listed.stderr, bare);
    let called = gp(work.path(), &[&"call", &"b", &"sample"]);
    assert_eq!(called.code, Some(1));
    assert_eq!(called.stderr, bare);
}

/// Items 4 and 7: a plugin.json that disagrees with its library names the command that fixes
/// it (with `-o`, so that following it writes the file), and the error is printed once.
#[test]
fn a_manifest_mismatch_is_printed_once_with_a_command_that_writes_the_fix() {
    let base = base_dir_with(&["sample"]);
    let dir = base.path().join("sample");
    let json = dir.join("plugin.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, text.replace("\"0.1.0\"", "\"0.2.0\"")).unwrap();
    let library = dir.join(example("sample").file_name().unwrap());
    let error = format!(
        "{}: version is \"0.2.0\" but the library {} says \"0.1.0\": regenerate plugin.json with `gp manifest {} -o {}`",
        json.display(),
        library.display(),
        library.display(),
        json.display()
    );
    let listed = gp(base.path(), &[&"list", &base.path()]);
    assert_eq!(listed.code, Some(1));
    assert_eq!(
        listed.stdout,
        format!("FOLDER  STATUS     PLUGIN / ERROR\nsample  failed     {error}\n")
    );
    assert_eq!(listed.stderr, "");
    let called = gp(base.path(), &[&"call", &base.path(), &"sample"]);
    assert_eq!(called.code, Some(1));
    assert_eq!(called.stdout, "");
    assert_eq!(called.stderr, format!("error: {error}\n"));

    // Following the hint fixes it.
    let fixed = gp(base.path(), &[&"manifest", &library, &"-o", &json]);
    assert_eq!(fixed.code, Some(0), "{}", fixed.stderr);
    let listed = gp(base.path(), &[&"list", &base.path()]);
    assert_eq!(listed.code, Some(0), "{}", listed.stdout);
}

/// Item 9: the binary's own about text, and `gp build`'s argument spelt CRATE.
#[test]
fn help_describes_the_command_and_names_crate() {
    let here = base_dir();
    let help = gp(here.path(), &[&"--help"]);
    assert_eq!(help.code, Some(0));
    assert_eq!(
        help.stdout.lines().next(),
        Some("The gp command: make, build, pack, sign, publish, find, install, inspect, list, call and serve gp plugins")
    );
    let build = gp(here.path(), &[&"build", &"--help"]);
    assert_eq!(build.code, Some(0));
    assert!(
        build.stdout.contains("Usage: gp build [OPTIONS] [CRATE]\n"),
        "{}",
        build.stdout
    );
    assert!(!build.stdout.contains("KRATE"), "{}", build.stdout);
}

/// Item 11: a bare file name is the file in the current directory.
#[test]
fn inspect_takes_a_bare_file_name_as_the_file_here() {
    let here = base_dir();
    let library = example("sample").file_name().unwrap();
    std::fs::copy(example("sample"), here.path().join(library)).unwrap();
    let bare = gp(here.path(), &[&"inspect", &library]);
    assert_eq!(bare.code, Some(0), "{}", bare.stderr);
    let dotted = gp(here.path(), &[&"inspect", &Path::new(".").join(library)]);
    assert_eq!(dotted.code, Some(0), "{}", dotted.stderr);
    assert_eq!(bare.stdout, dotted.stdout);
    assert!(
        bare.stdout
            .starts_with("name:        sample\nversion:     0.1.0\n")
            && bare.stdout.ends_with("status:      loadable\n"),
        "{}",
        bare.stdout
    );
    assert_eq!(bare.stderr, "");
}
