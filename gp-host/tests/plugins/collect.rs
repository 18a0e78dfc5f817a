//! Collecting the runtime directory: what no version uses goes, what serves or is too young
//! stays, symbolic links are never followed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gp_host::package;
use gp_host::{Context, GcMode, GcOptions, Manager, UpgradeOptions};

use crate::harness::{base_dir, install_lifecycle};

/// Packs lifecycle fixture `fixture` (plugin `counter`) into `dir/<name>.plg`.
fn pack(fixture: &str, dir: &Path, name: &str) -> PathBuf {
    let scratch = base_dir();
    let folder = install_lifecycle(scratch.path(), fixture, "counter");
    let output = dir.join(format!("{name}.plg"));
    package::pack(&folder, &output, None).unwrap();
    output
}

/// The folders under `runtime/packages` (the unpacked packages).
fn unpacked(manager: &Manager) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(manager.runtime_dir().join("packages"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn serving_dir(manager: &Manager) -> String {
    let (spec, _) = manager.get_plugin("counter").unwrap();
    spec.dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn upgrades_under_calls_leave_the_serving_package_and_the_newest_unused_one() {
    let base = base_dir();
    let elsewhere = base_dir();
    pack("counter-v1", base.path(), "counter");
    let upgrades = [
        pack("counter-v2", elsewhere.path(), "v2"),
        pack("counter-rebuild", elsewhere.path(), "rebuild"),
        pack("counter-old", elsewhere.path(), "old"),
    ];
    let manager = Manager::builder(base.path())
        .gc(Some(GcOptions {
            keep: 1,
            min_age: Duration::ZERO,
            interval: None,
        }))
        .build();
    assert!(manager.load_plugins().is_ok());
    assert_eq!(unpacked(&manager), [serving_dir(&manager)]);

    let stop = AtomicBool::new(false);
    let failures = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let executor = manager.executor("counter").unwrap();
                    let mut failures = 0;
                    while !stop.load(Ordering::Acquire) {
                        failures += usize::from(executor.execute(&mut Context::new()).is_err());
                    }
                    failures
                })
            })
            .collect();
        for package in &upgrades {
            // Folders are ordered by modification time, which the kernel keeps to a few ms.
            std::thread::sleep(Duration::from_millis(20));
            let before = serving_dir(&manager);
            manager
                .upgrade_with("counter", package, UpgradeOptions { force: true })
                .unwrap();
            // The version serving, and the newest folder no version uses (keep = 1): the one
            // that served until now. Older ones are gone.
            let mut expected = vec![serving_dir(&manager), before];
            expected.sort();
            assert_eq!(unpacked(&manager), expected);
        }
        stop.store(true, Ordering::Release);
        callers
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(failures, 0);
}

#[test]
fn symbolic_links_are_never_followed_young_things_stay_and_a_dry_run_removes_nothing() {
    let base = base_dir();
    let outside = base_dir();
    std::fs::write(outside.path().join("precious"), "keep me").unwrap();
    let manager = Manager::builder(base.path())
        .gc(Some(GcOptions {
            keep: 0,
            min_age: Duration::ZERO,
            interval: None,
        }))
        .build();
    let runtime = manager.runtime_dir().to_owned();
    std::fs::create_dir_all(runtime.join("packages")).unwrap();
    // A copy a crashed process left behind, and a link out of the runtime directory.
    let leftover = runtime.join(format!(
        "libcounter_v1-0123456789abcdef.{}",
        std::env::consts::DLL_EXTENSION
    ));
    std::fs::write(&leftover, b"not loaded by anyone").unwrap();
    let link = runtime.join("packages").join("evil");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();

    let dry = manager.gc(GcMode::DryRun).unwrap();
    assert_eq!(dry.removed, std::slice::from_ref(&leftover));
    assert_eq!(dry.bytes, 20);
    assert!(leftover.exists(), "a dry run removed it");
    assert_eq!(
        dry.skipped,
        [(
            link.clone(),
            "a symbolic link: never followed or removed".to_owned()
        )]
    );

    let young = Manager::builder(base.path())
        .gc(Some(GcOptions {
            min_age: Duration::from_secs(3600),
            ..GcOptions::default()
        }))
        .build();
    assert!(young.gc(GcMode::Remove).unwrap().removed.is_empty());
    assert!(leftover.exists());

    let report = manager.gc(GcMode::Remove).unwrap();
    assert_eq!(report.removed, std::slice::from_ref(&leftover));
    assert!(!leftover.exists());
    assert!(link.exists() && outside.path().join("precious").exists());
}

#[test]
fn gp_gc_reports_what_it_would_remove_then_removes_it() {
    let base = base_dir();
    let runtime = base.path().join(".gp-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let leftover = runtime.join(format!(
        "libx-0123456789abcdef.{}",
        std::env::consts::DLL_EXTENSION
    ));
    std::fs::write(&leftover, b"12345").unwrap();
    let gp = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_gp"))
            .arg("gc")
            .arg(base.path())
            .args(["--min-age", "0s"])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let dry = gp(&["--dry-run"]);
    assert_eq!(
        dry,
        format!(
            "would remove {}\nwould remove 1 item(s), 5 bytes, from {}\n",
            leftover.display(),
            runtime.display()
        )
    );
    assert!(leftover.exists());
    let done = gp(&[]);
    assert_eq!(
        done,
        format!(
            "removed {}\nremoved 1 item(s), 5 bytes, from {}\n",
            leftover.display(),
            runtime.display()
        )
    );
    assert!(!leftover.exists());
}

#[test]
fn gp_gc_removes_at_once_what_a_process_that_is_gone_left_and_keeps_a_live_one_s() {
    let base = base_dir();
    let runtime = base.path().join(".gp-runtime");
    std::fs::create_dir_all(runtime.join("tmp")).unwrap();
    let mut ended = Command::new("true").spawn().unwrap();
    let gone = ended.id();
    ended.wait().unwrap();
    let live = std::process::id();
    let so = std::env::consts::DLL_EXTENSION;
    let copy = |pid: u32| runtime.join(format!("libx-0123456789abcdef-isolated-{pid}-0.{so}"));
    let download = |pid: u32| {
        runtime
            .join("tmp")
            .join(format!("download-{pid}-Ab12Cd.plg"))
    };
    let half_written = runtime.join(format!("liby-0123456789abcdef.{so}.tmp-{gone}"));
    for path in [copy(gone), copy(live), download(gone), download(live)] {
        std::fs::write(&path, b"12345").unwrap();
    }
    std::fs::write(&half_written, b"12345").unwrap();
    // The default minimum age: all of them are younger.
    let output = Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("gc")
        .arg(base.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut removed = [copy(gone), download(gone), half_written.clone()];
    removed.sort();
    let lines: String = removed
        .iter()
        .map(|p| format!("removed {}\n", p.display()))
        .collect();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "{lines}removed 3 item(s), 15 bytes, from {}\n",
            runtime.display()
        )
    );
    assert!(copy(live).exists() && download(live).exists());
}

#[test]
fn a_manager_collects_on_its_timer_and_stops_when_dropped() {
    let base = base_dir();
    let manager = Manager::builder(base.path())
        .gc(Some(GcOptions {
            keep: 0,
            min_age: Duration::ZERO,
            interval: Some(Duration::from_secs(1)),
        }))
        .build();
    let runtime = manager.runtime_dir().to_owned();
    std::fs::create_dir_all(&runtime).unwrap();
    let leftover = |name: &str| runtime.join(format!("{name}.{}", std::env::consts::DLL_EXTENSION));
    std::fs::write(leftover("libfirst-0123456789abcdef"), b"x").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leftover("libfirst-0123456789abcdef").exists() {
        assert!(std::time::Instant::now() < deadline, "not collected");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once the manager is gone, so is its schedule.
    drop(manager);
    std::fs::write(leftover("libsecond-0123456789abcdef"), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(leftover("libsecond-0123456789abcdef").exists());
}
