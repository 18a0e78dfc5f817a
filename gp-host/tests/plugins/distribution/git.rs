//! Plugins from git: cloned, built, cached by commit and loaded, and each failure on the way
//! said as such.

use std::path::{Path, PathBuf};

use gp_host::Manager;

use crate::harness::base_dir;

/// A local git repository holding a plugin crate `package`: tag `v1.0.0` (version 1.0.0),
/// `main` one commit later (1.1.0), branch `broken` (does not compile) and branch `plain`
/// (a cdylib that is not a gp plugin).
///
/// Each test uses its own package name: cargo names a workspace root package's artifacts by
/// its name and its path *relative to its workspace*, so two repositories with the same
/// package built into one shared target dir would share (and reuse) one build.
fn git_repository(package: &str) -> (tempfile::TempDir, PathBuf) {
    let root = base_dir();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.name=gp", "-c", "user.email=gp@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let write = |version: &str, lib: &str| {
        std::fs::write(
            repo.join("Cargo.toml"),
            crate::harness::plugin_manifest(package, version, true),
        )
        .unwrap();
        std::fs::write(repo.join("src/lib.rs"), lib).unwrap();
    };
    let plugin = "use gp_sdk::{plugin_entry, Context, Result};\n\n#[plugin_entry]\nfn run(ctx: &mut Context) -> Result {\n    ctx.set(\"built\", concat!(\"from git \", env!(\"CARGO_PKG_VERSION\")));\n    Ok(())\n}\n";
    git(&["init", "--quiet", "--initial-branch", "main"]);
    // The workspace's lock file, so the build reuses the dependencies the tests built.
    std::fs::copy(
        crate::harness::workspace().join("Cargo.lock"),
        repo.join("Cargo.lock"),
    )
    .unwrap();
    write("1.0.0", plugin);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "1.0.0"]);
    git(&["tag", "v1.0.0"]);
    git(&["checkout", "--quiet", "-b", "broken"]);
    write("1.0.0", "fn oops() -> u32 { missing_value }\n");
    git(&["commit", "--quiet", "-am", "broken"]);
    git(&["checkout", "--quiet", "main"]);
    git(&["checkout", "--quiet", "-b", "plain"]);
    write(
        "1.0.0",
        "#[no_mangle]\npub extern \"C\" fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    );
    std::fs::write(
        repo.join("Cargo.toml"),
        format!("[package]\nname = \"{package}\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n{}", crate::harness::profile()),
    )
    .unwrap();
    git(&["commit", "--quiet", "-am", "plain"]);
    git(&["checkout", "--quiet", "main"]);
    write("1.1.0", plugin);
    git(&["commit", "--quiet", "-am", "1.1.0"]);
    (root, repo)
}

/// A base directory whose folder `name` has a remote_git plugin.json for `path`.
fn remote_git_folder(name: &str, version: &str, path: &str) -> tempfile::TempDir {
    let base = base_dir();
    let dir = base.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("plugin.json"),
        serde_json::json!({
            "name": name,
            "version": version,
            "source": {"mode": "remote_git", "path": path}
        })
        .to_string(),
    )
    .unwrap();
    base
}

fn git_manager(base: &Path, runtime: &Path) -> Manager {
    Manager::builder(base)
        .runtime_dir(runtime)
        .git_build(gp_host::build::BuildOptions {
            release: false,
            target_dir: Some(crate::harness::workspace().join("target/test-plugins")),
            quiet: true,
        })
        .build()
}

#[test]
fn remote_git_plugins_are_cloned_built_cached_by_commit_and_loaded() {
    let (_root, repo) = git_repository("from-git");
    let runtime = base_dir();
    let url = repo.display().to_string();

    let base = remote_git_folder("from-git", "1.0.0", &format!("{url}#v1.0.0"));
    let manager = git_manager(base.path(), runtime.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let (spec, executor) = manager.get_plugin("from-git").unwrap();
    assert_eq!(spec.origin, base.path().join("from-git"));
    let mut ctx = gp_host::Context::new();
    executor.execute(&mut ctx).unwrap();
    assert_eq!(
        ctx.get("built").and_then(|v| v.as_str()),
        Some("from git 1.0.0")
    );

    // Built once per commit: another manager over the same runtime dir reuses the build.
    let builds: Vec<PathBuf> = std::fs::read_dir(runtime.path().join("git"))
        .unwrap()
        .map(|e| e.unwrap().path().join("builds"))
        .collect();
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = stamp(&builds[0]);
    let again = git_manager(base.path(), runtime.path());
    assert!(again.load_plugins().is_ok());
    assert_eq!(stamp(&builds[0]), before, "rebuilt a commit already built");

    // The default branch, when no revision is given.
    let base = remote_git_folder("from-git", "1.1.0", &url);
    let manager = git_manager(base.path(), runtime.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    assert_eq!(manager.list()[0].version().to_string(), "1.1.0");

    // The branch moves on: a reload fetches it and upgrades to what it holds now.
    let toml = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        toml.replace("version = \"1.1.0\"", "version = \"1.2.0\""),
    )
    .unwrap();
    let commit = std::process::Command::new("git")
        .args(["-c", "user.name=gp", "-c", "user.email=gp@example.com"])
        .args(["commit", "--quiet", "-am", "1.2.0"])
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(commit.success());
    std::fs::write(
        base.path().join("from-git/plugin.json"),
        serde_json::json!({
            "name": "from-git",
            "version": "1.2.0",
            "source": {"mode": "remote_git", "path": url}
        })
        .to_string(),
    )
    .unwrap();
    let upgrade = manager.reload("from-git").unwrap();
    assert!(
        matches!(&upgrade, gp_host::Upgrade::Upgraded(u) if u.to.version().to_string() == "1.2.0"),
        "{upgrade:?}"
    );
}

#[test]
fn remote_git_failures_say_what_went_wrong() {
    let (_root, repo) = git_repository("git-failures");
    let runtime = base_dir();
    let url = repo.display().to_string();
    let cases: Vec<(String, &str, String)> = vec![
        (
            "/nonexistent/plugin.git".into(),
            "1.0.0",
            "git repository /nonexistent/plugin.git: cannot clone it: fatal: ".into(),
        ),
        (
            format!("{url}#v9.9.9"),
            "1.0.0",
            format!("git repository {url}: revision `v9.9.9` is not in the repository (not a branch, tag or commit)"),
        ),
        (
            format!("{url}#broken"),
            "1.0.0",
            "error[E0425]: cannot find value `missing_value` in this scope".into(),
        ),
        (
            format!("{url}#plain"),
            "1.0.0",
            format!("{url}@"),
        ),
        (
            format!("{url}#main"),
            "1.0.0",
            "version is \"1.0.0\" but the library ".into(),
        ),
    ];
    for (path, version, expected) in cases {
        let base = remote_git_folder("git-failures", version, &path);
        let manager = git_manager(base.path(), runtime.path());
        let error = manager
            .load_plugin(base.path().join("git-failures"))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&expected) || message.contains(&expected),
            "{path}:\n  got      {message}\n  expected {expected}"
        );
        if path.ends_with("#broken") {
            assert!(
                message.starts_with(&format!("building {url}@")),
                "{message}"
            );
        }
        if path.ends_with("#plain") {
            assert!(
                message.ends_with(": not a gp plugin: it exports no gp root module: build it from a crate that depends on gp-sdk and marks its entry with #[plugin_entry]"),
                "{message}"
            );
        }
        assert!(manager.list().is_empty());
    }
}
