//! A local package: installed from a path or a file:// URL with a download's checks, into
//! GP_HOME when no base directory is given, verified with a verdict, and named when it is
//! loaded without signature checks.

use std::process::Command;

use super::{gp, pack_sample};
use crate::harness::{base_dir, base_dir_with};

/// Items 6 and 8: a package is installed from a local path or a file:// URL with the checks a
/// download gets, and `gp verify` ends with a verdict.
// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn install_takes_a_local_path_or_file_url_and_verify_ends_with_a_verdict() {
    let work = base_dir();
    let w = work.path();
    let sha256 = pack_sample(w);

    let verified = gp(w, &[&"verify", &"sample.plg"]);
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
    assert_eq!(
        verified.stdout,
        format!(
            "sample.plg: sample 0.1.0, sha256 {sha256}\n\
             not signed (checksums hold)\n\
             verified: sample.plg passes every check a host makes before loading it (unsigned: a host that requires signatures refuses it)\n"
        )
    );
    let keys = gp(w, &[&"keygen", &"signer"]);
    assert_eq!(keys.code, Some(0), "{}", keys.stderr);
    let plugins = base_dir_with(&["sample"]);
    let signed = gp(
        w,
        &[
            &"pack",
            &plugins.path().join("sample"),
            &"--sign",
            &"signer.key",
            &"-o",
            &"signed.plg",
        ],
    );
    assert_eq!(signed.code, Some(0), "{}", signed.stderr);
    let verified = gp(
        w,
        &[&"verify", &"signed.plg", &"--public-key", &"signer.pub"],
    );
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
    assert!(
        verified
            .stdout
            .ends_with("verified: signed.plg passes every check a host makes before loading it\n"),
        "{}",
        verified.stdout
    );

    let installed = gp(w, &[&"install", &"sample.plg", &"--dir", &"by-path"]);
    assert_eq!(installed.code, Some(0), "{}", installed.stderr);
    assert_eq!(
        installed.stdout,
        format!(
            "installed sample 0.1.0 -> {}\n",
            w.join("by-path/sample.plg").display()
        )
    );
    let url = format!("file://{}", w.join("sample.plg").display());
    let installed = gp(
        w,
        &[&"install", &url, &"--sha256", &sha256, &"--dir", &"by-url"],
    );
    assert_eq!(installed.code, Some(0), "{}", installed.stderr);
    assert_eq!(
        installed.stdout,
        format!(
            "installed sample 0.1.0 -> {}\n",
            w.join("by-url/sample.plg").display()
        )
    );

    // The same checks as a download: the SHA-256, and the signature.
    let wrong = "0".repeat(64);
    let refused = gp(
        w,
        &[
            &"install",
            &"sample.plg",
            &"--sha256",
            &wrong,
            &"--dir",
            &"bad",
        ],
    );
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr,
        format!("error: sample.plg: its SHA-256 is {sha256}, not the {wrong} expected; the file was not installed\n")
    );
    let refused = gp(
        w,
        &[
            &"install",
            &"sample.plg",
            &"--public-key",
            &"signer.pub",
            &"--dir",
            &"bad",
        ],
    );
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr,
        "error: sample.plg: package refused: it is not signed, and this host accepts signed packages only\n"
    );
    let missing = gp(w, &[&"install", &"nothing.plg", &"--dir", &"bad"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        missing.stderr,
        "error: nothing.plg: cannot read it: No such file or directory (os error 2)\n"
    );
    let left: Vec<_> = std::fs::read_dir(w.join("bad")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Item 12: packages loaded without signature checks are named once, and `gp list` takes
/// `--public-key` to require signatures.
#[test]
fn list_names_packages_loaded_unchecked_and_takes_public_keys() {
    let work = base_dir();
    let w = work.path();
    std::fs::create_dir(w.join("base")).unwrap();
    pack_sample(&w.join("base"));
    let package = w.join("base/sample.plg").canonicalize().unwrap();
    let listed = gp(w, &[&"list", &"base"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        listed.stdout,
        "FOLDER      STATUS     PLUGIN / ERROR\nsample.plg  loaded     sample 0.1.0\n"
    );
    assert_eq!(
        listed.stderr,
        format!(
            "warning: packages loaded without signature checks (no --public-key given): {}; pass --public-key KEY to load only packages signed by that key\n",
            package.display()
        )
    );

    let keys = gp(w, &[&"keygen", &"signer"]);
    assert_eq!(keys.code, Some(0), "{}", keys.stderr);
    let listed = gp(w, &[&"list", &"base", &"--public-key", &"signer.pub"]);
    assert_eq!(listed.code, Some(1));
    assert_eq!(listed.stderr, "");
    assert_eq!(
        listed.stdout,
        format!(
            "FOLDER      STATUS     PLUGIN / ERROR\nsample.plg  failed     {}: package refused: it is not signed, and this host accepts signed packages only\n",
            w.join("base/sample.plg").display()
        )
    );
}

/// `$GP_HOME/plugins` is the base directory of `gp install`, `gp list`, `gp call` and `gp serve`
/// when none is given (the seed's `$GO_PLUG_HOME`).
#[test]
fn gp_home_is_where_install_puts_plugins_and_list_and_call_look() {
    let work = base_dir();
    let w = work.path();
    pack_sample(w);
    let home = w.join("home");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_gp"))
            .args(args)
            .current_dir(w)
            .env("GP_HOME", &home)
            .env_remove("GP_LOG")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // Nothing installed yet: said so, with what to do.
    let (code, _, stderr) = run(&["list"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "error: no plugin is installed in {} (the plugins of GP_HOME, {}): install one there with `gp install URL|FILE`, or give a plugin base directory\n",
            home.join("plugins").display(),
            home.display()
        )
    );
    let (code, stdout, stderr) = run(&["install", "sample.plg"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "installed sample 0.1.0 -> {}\n",
            home.join("plugins/sample.plg").display()
        )
    );
    let (code, stdout, _) = run(&["list"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("sample.plg  loaded"), "{stdout}");
    let (code, stdout, stderr) = run(&["call", "sample", "--set", r#"sample={"name":"home"}"#]);
    assert_eq!(code, Some(0), "{stderr}");
    let values: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(values["greeting"], "sample plugin says: home");
    // A directory alone is a forgotten name, not a plugin of GP_HOME.
    let (code, _, stderr) = run(&["call", "home/plugins"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "error: which plugin? give its name after the directory: gp call home/plugins NAME\n"
    );
}
