//! Ctrl-C during a download: the temporary file is in the runtime directory's scratch folder
//! while it runs (nothing half-written in the base directory), and what the interrupted
//! process left is removed by `gp gc` and by the next manager's start, though it is younger
//! than `gp gc`'s minimum age: its owner is gone.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::harness::{base_dir, http_server, interrupt, names, temporary_file_of, Reply};

/// `gp install URL --dir base`, started.
fn start_install(url: &str, base: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(["install", url, "--dir"])
        .arg(base)
        .env_remove("GP_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn an_interrupted_install_leaves_nothing_that_survives_gp_gc_or_the_next_start() {
    // 8 MiB at 64 KiB every 50 ms: over 6 s, interrupted within the first.
    let url = http_server(HashMap::from([(
        "/big.plg".to_owned(),
        Reply::Trickle(vec![7; 8 << 20]),
    )]));
    let url = format!("{url}/big.plg");
    let base = base_dir();
    let scratch = base.path().join(".gp-runtime").join("tmp");

    let mut install = start_install(&url, base.path());
    let left = temporary_file_of(&mut install, &scratch, "download");
    assert_eq!(
        names(base.path()),
        [".gp-runtime"],
        "nothing half-written in the base dir"
    );
    interrupt(&mut install);
    // No handler ran: the file is there until a collection.
    assert!(left.exists());
    let gc = Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("gc")
        .arg(base.path())
        .env_remove("GP_LOG")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&gc.stdout);
    assert!(
        gc.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(
        printed.contains(&format!("removed {}\n", left.display())),
        "{printed}"
    );
    assert_eq!(names(&scratch), Vec::<String>::new());
    assert_eq!(names(base.path()), [".gp-runtime"]);

    // Again, and a manager's start (its first load) collects it.
    let mut install = start_install(&url, base.path());
    let left = temporary_file_of(&mut install, &scratch, "download");
    interrupt(&mut install);
    assert!(left.exists());
    let manager = gp_host::Manager::builder(base.path()).build();
    assert!(manager.load_plugins().is_ok());
    assert_eq!(names(&scratch), Vec::<String>::new());
}

#[test]
fn a_running_install_s_file_is_left_alone() {
    let url = http_server(HashMap::from([(
        "/big.plg".to_owned(),
        Reply::Trickle(vec![7; 8 << 20]),
    )]));
    let base = base_dir();
    let scratch = base.path().join(".gp-runtime").join("tmp");
    let mut install = start_install(&format!("{url}/big.plg"), base.path());
    let running = temporary_file_of(&mut install, &scratch, "download");
    let gc = Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(["gc", "--min-age", "0s"])
        .arg(base.path())
        .env_remove("GP_LOG")
        .output()
        .unwrap();
    assert!(gc.status.success());
    assert!(running.exists(), "{}", String::from_utf8_lossy(&gc.stdout));
    interrupt(&mut install);
}
