//! The first hour, round two: a mistyped base directory never looks like success, a library
//! file given as the base directory points to the right one, a plugin in a folder and in a
//! package is an error in `gp call` too, a plugin of another gp-core is one short line, `gp
//! new`'s dependency line names gp-sdk's own version, and an unknown label is named.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{gp, pack_sample, read_all, LIMIT};
use crate::harness::{base_dir, base_dir_with, example, fixture, workspace, Interface};

/// Starts `gp serve ARGS` (on free ports) in `dir` with `envs`, waits until its stdout or
/// stderr holds `until`, stops it (SIGTERM) and returns its stdout and stderr.
fn serve_until(
    dir: &Path,
    args: &[&dyn AsRef<OsStr>],
    envs: &[(&str, &OsStr)],
    until: &str,
) -> (String, String) {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("serve")
        .args(args.iter().map(|a| a.as_ref()))
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("GP_LOG")
        .env_remove("GP_ADMIN_TOKEN")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    let read = |file: &std::fs::File| {
        use std::io::{Read, Seek};
        let mut reader = file.try_clone().unwrap();
        reader.rewind().unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        text
    };
    loop {
        let text = read(&out) + &read(&err);
        if text.contains(until) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("gp serve ended ({status}) before saying {until:?}: {text}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gp serve did not say {until:?} within {LIMIT:?}: {text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    (read_all(out), read_all(err))
}

/// Item 1: `gp serve plugns` (a typo) refuses, and writes nothing there; `--create` and the
/// `$GP_HOME` default make the directory, saying so; zero plugins is a warning in `serve`
/// and a line of its own in `list`.
#[test]
fn a_mistyped_base_dir_is_refused_and_zero_plugins_is_said() {
    let work = base_dir();
    let w = work.path();
    let refused = gp(w, &[&"serve", &"plugns"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert_eq!(
        refused.stderr,
        "error: plugns: no such directory: give the plugin base directory (the directory that holds one folder per plugin, or .plg packages), or add --create to start serving an empty one\n"
    );
    assert_eq!(refused.stdout, "");
    assert!(!w.join("plugns").exists(), "nothing is created");

    let (_, stderr) = serve_until(w, &[&"plugns", &"--create"], &[], "warning: no plugins");
    assert!(
        stderr.starts_with("created plugns (--create): an empty base directory\nwarning: no plugins in plugns: every plugin route answers 404 (add a plugin folder or .plg package and restart, serve with --watch, or install one through the management API)\n"),
        "{stderr}"
    );
    assert!(w.join("plugns").is_dir());

    let home = w.join("home");
    let (_, stderr) = serve_until(
        w,
        &[&"--watch"],
        &[("GP_HOME", home.as_os_str())],
        "warning: no plugins",
    );
    let plugins = home.join("plugins");
    assert!(
        stderr.starts_with(&format!(
            "created {} (the plugins of GP_HOME, {}): install plugins there with `gp install`\nwarning: no plugins in {}: every plugin route answers 404 until a plugin folder or .plg package is added (--watch loads it)\n",
            plugins.display(),
            home.display(),
            plugins.display()
        )),
        "{stderr}"
    );
    assert!(plugins.is_dir());

    std::fs::create_dir(w.join("empty")).unwrap();
    let listed = gp(w, &[&"list", &"empty"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        listed.stdout,
        "FOLDER  STATUS     PLUGIN / ERROR\nno plugins in empty: a base directory holds one folder per plugin (its plugin.json and library) or .plg packages\n"
    );
    assert_eq!(listed.stderr, "");
}

/// Item 3: a plugin's library given to `gp call` (alone, or before a name) or `gp list` points
/// to the directory that holds its folder, and to `gp inspect`.
#[test]
fn a_library_file_given_as_base_dir_points_to_its_folders_parent_and_to_inspect() {
    let base = base_dir_with(&["sample"]);
    let library = format!(
        "plugins/sample/{}",
        example("sample").file_name().unwrap().to_str().unwrap()
    );
    std::fs::rename(base.path().join("sample"), base.path().join("x")).unwrap();
    std::fs::create_dir(base.path().join("plugins")).unwrap();
    std::fs::rename(base.path().join("x"), base.path().join("plugins/sample")).unwrap();
    let said = |retry: &str| {
        format!(
            "error: {library} is a plugin library, not a base directory: give the directory that holds the plugin's folder, `{retry}`; to check the library itself, `gp inspect {library}`\n"
        )
    };
    for (args, retry) in [
        (vec!["call", &library], "gp call plugins NAME"),
        (vec!["call", &library, "sample"], "gp call plugins NAME"),
        (vec!["serve", &library], "gp serve plugins"),
    ] {
        let args: Vec<&dyn AsRef<OsStr>> = args.iter().map(|a| a as _).collect();
        let run = gp(base.path(), &args);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert_eq!(run.stderr, said(retry));
        assert_eq!(run.stdout, "");
    }
    let listed = gp(base.path(), &[&"list", &library]);
    assert_eq!(listed.code, Some(1));
    assert_eq!(listed.stderr, said("gp list plugins"));
    // What the message says works.
    let called = gp(
        base.path(),
        &[
            &"call",
            &"plugins",
            &"sample",
            &"--set",
            &r#"sample={"name":"x"}"#,
        ],
    );
    assert_eq!(called.code, Some(0), "{}", called.stderr);
}

/// Item 8: the same plugin as a folder and as a `.plg` is an error in `gp call`, as in `gp
/// list`, naming both.
#[test]
fn call_refuses_a_plugin_that_is_both_a_folder_and_a_package() {
    let base = base_dir_with(&["sample"]);
    pack_sample(base.path());
    let called = gp(base.path(), &[&"call", &".", &"sample"]);
    assert_eq!(called.code, Some(1), "{}", called.stderr);
    assert_eq!(
        called.stderr,
        "error: plugin `sample` is both in ./sample and in ./sample.plg: plugin names must be unique in a base directory, remove or rename one (`gp list .` shows both)\n"
    );
    assert_eq!(called.stdout, "");
}

/// Item 3: a plugin built against another gp-core release is one short line saying which
/// release, which this host speaks, and the gp-sdk to rebuild with; `-v` adds the types.
#[test]
fn a_plugin_of_another_gp_core_is_one_short_line_with_details_behind_v() {
    let library = fixture(Interface::NewerVersion);
    let base = base_dir();
    let folder = base.path().join("newer-core");
    std::fs::create_dir(&folder).unwrap();
    let copy = folder.join(library.file_name().unwrap());
    std::fs::copy(library, &copy).unwrap();
    let inspected = gp(base.path(), &[&"inspect", &copy]);
    assert_eq!(inspected.code, Some(1), "{}", inspected.stderr);
    assert_eq!(
        inspected.stderr,
        format!(
            "error: plugin `newer-core` ({}) was built against an incompatible gp-core: 0.2.0, where this host speaks 0.1.x; rebuild it with gp-sdk 0.1 (the types that differ are logged at debug level: `gp -v`)\n",
            copy.display()
        )
    );
    let verbose = gp(base.path(), &[&"inspect", &"-v", &copy]);
    assert_eq!(verbose.code, Some(1));
    assert!(
        verbose.stderr.contains("the types that differ: `")
            && verbose.stderr.contains("incompatible package versions"),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose.stderr.ends_with(&inspected.stderr),
        "{}",
        verbose.stderr
    );
}

/// Item 3: `gp new`'s Cargo.toml depends on gp-sdk by path, and the published line it
/// suggests is gp-sdk's own version (not gp-host's).
#[test]
fn gp_new_suggests_gp_sdks_own_version() {
    let work = base_dir();
    let created = gp(
        work.path(),
        &[&"new", &"hello", &"--sdk", &workspace().join("gp-sdk")],
    );
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let sdk = std::fs::read_to_string(workspace().join("gp-sdk/Cargo.toml")).unwrap();
    let version = sdk
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap();
    let toml = std::fs::read_to_string(work.path().join("hello/Cargo.toml")).unwrap();
    assert!(
        toml.contains(&format!(
            "# To depend on the published gp-sdk instead, once it is on crates.io:\n# gp-sdk = {version}\n"
        )),
        "{toml}"
    );
    assert!(
        created.stdout.starts_with(&format!(
            "created plugin crate hello/ (gp-sdk = {{ path = {:?} }})\n",
            workspace()
                .join("gp-sdk")
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        )),
        "{}",
        created.stdout
    );
}

/// Item 8: an example plugin called with a label it does not know names the label (and those
/// it knows), instead of failing on a value it then looks for.
#[test]
fn an_unknown_label_is_named_by_the_example_plugins() {
    let base = base_dir_with(&["sample", "panicky"]);
    let called = gp(
        base.path(),
        &[&"call", &".", &"sample", &"--label", &"plugin.gte"],
    );
    assert_eq!(called.code, Some(1));
    assert_eq!(
        called.stderr,
        "error: plugin `sample` failed: label `plugin.gte` is not one of sample's: plugin.get and plugin.post (its HTTP routes), or no label for a direct call\n"
    );
    let called = gp(
        base.path(),
        &[&"call", &".", &"panicky", &"--label", &"bom"],
    );
    assert_eq!(called.code, Some(1));
    assert_eq!(
        called.stderr,
        "error: plugin `panicky` failed: label `bom` is not one of panicky's: boom (it panics), or no label\n"
    );
}

/// Item 6: `gp serve` whose output is not a terminal (a service's collected logs) never
/// prints the admin token: no sign-in link unless `--print-signin-link` asks for it.
#[test]
fn serve_prints_no_token_into_piped_output() {
    let base = base_dir_with(&["sample"]);
    let token_file = base.path().join(".gp-runtime/admin-token");
    let (stdout, stderr) = serve_until(base.path(), &[&"."], &[], "managing plugins at");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    assert!(token.len() >= 16);
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "{stdout}{stderr}"
    );
    assert!(!stdout.contains("#token="), "{stdout}");

    let (stdout, _) = serve_until(
        base.path(),
        &[&".", &"--print-signin-link"],
        &[],
        "sign in to the GUI",
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sign in to the GUI: "))
        .unwrap();
    assert!(
        line.starts_with("sign in to the GUI: http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("/ui/#token={}", token.trim())),
        "{line}"
    );
}
