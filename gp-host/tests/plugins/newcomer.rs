//! What a newcomer meets first: the README's first plugin, `gp build` then `gp build --pack`,
//! a base directory given wrongly, a busy port, a local package, and the messages on the way.
//! Every run of `gp` is bounded: a process still running after its limit is killed and the
//! test fails.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{base_dir, base_dir_with, example, workspace};

/// How long a run of `gp` that loads or checks plugins may take.
const LIMIT: Duration = Duration::from_secs(30);

/// How long a run of `gp` that builds a crate may take.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// What a run of `gp` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `gp ARGS` in `dir`, killed (and the test failed) after `limit`.
fn gp_limited(dir: &Path, args: &[&dyn AsRef<OsStr>], limit: Duration) -> Run {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(dir)
        .env_remove("GP_LOG")
        .envs(crate::harness::build_env())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("run gp");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gp {:?} still running after {limit:?}", args_text(args));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

fn args_text(args: &[&dyn AsRef<OsStr>]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

fn read_all(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek};
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

fn gp(dir: &Path, args: &[&dyn AsRef<OsStr>]) -> Run {
    gp_limited(dir, args, LIMIT)
}

/// The README's section `name` (from its `## ` heading to the next).
fn readme_section(name: &str) -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme
        .find(&format!("## {name}\n"))
        .expect("the README has the section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The fenced blocks of `text` in language `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").unwrap();
        found.push(body[..end].to_owned());
        rest = &body[end..];
    }
    found
}

/// Item 1: the README's Cargo.toml is a whole file (pasting it over what `cargo new --lib`
/// made gives no duplicate key), and the install command is locked.
#[test]
fn the_readme_first_plugin_is_complete_files_and_working_commands() {
    let section = readme_section("A plugin in 30 seconds");
    let tomls = blocks(&section, "toml");
    assert_eq!(tomls.len(), 1, "{section}");
    let toml = &tomls[0];
    assert!(toml.starts_with("[package]\nname = \"hello\"\n"), "{toml}");
    for table in ["[package]", "[lib]", "[dependencies]"] {
        assert_eq!(toml.matches(table).count(), 1, "{table} in {toml}");
    }
    assert!(
        section.contains("Replace `Cargo.toml` with:"),
        "the README says to replace the file, not to append to it"
    );
    let sh = blocks(&section, "sh").join("");
    assert!(
        sh.contains("cargo install --locked --path ../gp/gp-host --features cli"),
        "{sh}"
    );
}

/// Both tests below build a crate called `hello` into the shared target directory, whose
/// `libhello.so` would be overwritten under the other: one at a time.
static HELLO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The README's "A plugin in 30 seconds", run as written: its commands, its files, and the
/// output its comment promises. Two stand-ins: the test build's `gp` instead of
/// `cargo install` (a release build of its own), and the crate's `target` linked to the shared
/// test target directory, so `cargo build` and `cp target/debug/...` run as written without
/// compiling gp-sdk's dependencies again.
#[test]
fn the_readme_first_plugin_runs_as_written() {
    let _hello = HELLO.lock().unwrap_or_else(|p| p.into_inner());
    let section = readme_section("A plugin in 30 seconds");
    let sh = blocks(&section, "sh");
    let (toml, rust) = (&blocks(&section, "toml")[0], &blocks(&section, "rust")[0]);
    let work = base_dir();
    std::os::unix::fs::symlink(workspace(), work.path().join("gp")).unwrap();
    let run = |dir: &Path, line: &str| {
        let gp_dir = Path::new(env!("CARGO_BIN_EXE_gp"))
            .parent()
            .unwrap()
            .to_owned();
        let path = std::env::join_paths(
            std::iter::once(gp_dir)
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let output = Command::new("sh")
            .args(["-c", line])
            .current_dir(dir)
            .env("PATH", path)
            .env_remove("CARGO_TARGET_DIR")
            .env("CARGO_PROFILE_DEV_DEBUG", crate::harness::DEBUG_INFO)
            .env_remove("GP_LOG")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{line}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // `cargo new --lib hello && cd hello`
    let first = sh[0].trim();
    let (new, cd) = first.split_once(" && ").unwrap();
    assert_eq!(cd, "cd hello");
    run(work.path(), new);
    let hello = work.path().join("hello");
    std::fs::write(hello.join("Cargo.toml"), toml).unwrap();
    std::fs::write(hello.join("src/lib.rs"), rust).unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), hello.join("Cargo.lock")).unwrap();
    std::os::unix::fs::symlink(crate::harness::target_dir(), hello.join("target")).unwrap();
    let mut printed = String::new();
    for line in sh[1].lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (command, comment) = line
            .split_once(" #")
            .map_or((line, ""), |(c, m)| (c.trim(), m));
        if command.starts_with("cargo install") {
            continue; // the test build's gp stands in
        }
        printed = run(&hello, command);
        if let Some(promised) = comment.trim().strip_prefix("prints ") {
            assert_eq!(printed.trim_end(), promised, "`{command}`");
        }
    }
    assert_eq!(printed, "{\"greeting\": \"hello gp\", \"name\": \"gp\"}\n");
}

/// Items 2 and 10: `gp build` then `gp build --pack` leaves one copy of the plugin, says what it
/// removed and why, and `gp call` prints exactly what the README's comment shows.
#[test]
fn build_then_build_pack_leaves_one_copy_and_call_prints_what_the_readme_shows() {
    let _hello = HELLO.lock().unwrap_or_else(|p| p.into_inner());
    let work = base_dir();
    let w = work.path();
    let sdk = workspace().join("gp-sdk");
    let created = gp(w, &[&"new", &"hello", &"--sdk", &sdk]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let krate = w.join("hello");
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    assert_eq!(built.stdout, "built hello 0.1.0 -> plugins/hello\n");

    // The README's call, and the output its comment shows.
    let section = readme_section("A plugin in 30 seconds");
    let line = section
        .lines()
        .find(|l| l.starts_with("gp call plugins hello"))
        .expect("the README calls hello");
    let shown = line.split("# prints ").nth(1).expect("a comment").trim();
    let called = gp(
        &krate,
        &[&"call", &"plugins", &"hello", &"--set", &"name=\"gp\""],
    );
    assert_eq!(called.code, Some(0), "{}", called.stderr);
    assert_eq!(called.stdout, format!("{shown}\n"));
    assert_eq!(
        called.stdout,
        "{\"greeting\": \"hello gp\", \"name\": \"gp\"}\n"
    );

    let packed = gp_limited(&krate, &[&"build", &"--debug", &"--pack"], BUILD_LIMIT);
    assert_eq!(packed.code, Some(0), "{}", packed.stderr);
    assert!(
        packed
            .stdout
            .starts_with("packed hello 0.1.0 -> plugins/hello-0.1.0.plg\nsha256 "),
        "{}",
        packed.stdout
    );
    assert!(
        packed.stderr.ends_with(
            "removed plugins/hello/ (plugin hello, from an earlier `gp build`): the package plugins/hello-0.1.0.plg replaces it, and a base directory holding both would load plugin hello twice\n"
        ),
        "{}",
        packed.stderr
    );
    assert!(!krate.join("plugins/hello").exists());

    let listed = gp(&krate, &[&"list", &"plugins"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        listed.stdout,
        "FOLDER           STATUS     PLUGIN / ERROR\n\
         hello-0.1.0.plg  loaded     hello 0.1.0\n"
    );
    let called = gp(&krate, &[&"call", &"plugins", &"hello"]);
    assert_eq!(called.code, Some(0), "{}", called.stderr);
    assert_eq!(
        called.stdout, "{\"greeting\": \"hello world\"}\n",
        "{}",
        called.stderr
    );
    assert!(!called.stderr.contains("unique"), "{}", called.stderr);

    // And back: a folder build replaces the package.
    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    assert_eq!(built.stdout, "built hello 0.1.0 -> plugins/hello\n");
    assert!(
        built.stderr.ends_with(
            "removed plugins/hello-0.1.0.plg (plugin hello, from an earlier `gp build --pack`): the folder plugins/hello/ replaces it, and a base directory holding both would load plugin hello twice\n"
        ),
        "{}",
        built.stderr
    );
    let listed = gp(&krate, &[&"list", &"plugins"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(
        listed.stdout,
        "FOLDER  STATUS     PLUGIN / ERROR\nhello   loaded     hello 0.1.0\n"
    );
    assert_eq!(listed.stderr, "");
}

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

/// Item 5: a busy port names its listener and how to choose another.
#[test]
fn serve_on_a_busy_port_names_the_listener_and_how_to_pick_another() {
    let base = base_dir();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let ran = gp(
        base.path(),
        &[
            &"serve",
            &base.path(),
            &"--listen",
            &"127.0.0.1:0",
            &"--admin",
            &addr.to_string(),
        ],
    );
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr,
        format!(
            "error: {addr}: the admin listener (--admin) cannot listen here: Address already in use (os error 98); another program (another `gp serve`?) listens there: choose another port with --admin 127.0.0.1:PORT, or --admin 127.0.0.1:0 for any free one\n"
        )
    );
    let ran = gp(
        base.path(),
        &[
            &"serve",
            &base.path(),
            &"--listen",
            &addr.to_string(),
            &"--admin",
            &"127.0.0.1:0",
        ],
    );
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr,
        format!(
            "error: {addr}: the plugin routes' listener (--listen) cannot listen here: Address already in use (os error 98); another program (another `gp serve`?) listens there: choose another port with --listen 127.0.0.1:PORT, or --listen 127.0.0.1:0 for any free one\n"
        )
    );
    drop(busy);
}

/// Packs the example `sample` into `dir/sample.plg` (unsigned); returns its sha256.
fn pack_sample(dir: &Path) -> String {
    let plugins = base_dir_with(&["sample"]);
    let packed = gp(
        dir,
        &[
            &"pack",
            &plugins.path().join("sample"),
            &"-o",
            &"sample.plg",
        ],
    );
    assert_eq!(packed.code, Some(0), "{}", packed.stderr);
    packed
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .unwrap()
        .to_owned()
}

/// Items 6 and 8: a package is installed from a local path or a file:// URL with the checks a
/// download gets, and `gp verify` ends with a verdict.
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

/// Item 12, `gp serve`: packages loaded without signature checks are named once, on stderr.
#[test]
fn serve_names_packages_loaded_unchecked_once() {
    use std::io::BufRead;
    let work = base_dir();
    let w = work.path();
    std::fs::create_dir(w.join("base")).unwrap();
    pack_sample(&w.join("base"));
    let package = w.join("base/sample.plg").canonicalize().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args([
            "serve",
            "base",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .current_dir(w)
        .env("GP_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gp serve");
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let _ = lines.send(line.unwrap_or_default());
        }
    });
    // Serving: its stdout says so once both listeners are up.
    let (up, serving) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with("managing plugins at") {
                let _ = up.send(());
            }
        }
    });
    let started = serving.recv_timeout(LIMIT);
    let _ = child.kill();
    let _ = child.wait();
    started.expect("gp serve starts serving");
    let mut said = Vec::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(5)) {
        said.push(line);
    }
    assert_eq!(
        said,
        [format!(
            "warning: packages loaded without signature checks (no --public-key given): {}; pass --public-key KEY to load only packages signed by that key",
            package.display()
        )]
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
