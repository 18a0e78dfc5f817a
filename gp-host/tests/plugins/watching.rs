//! The watcher on real plugin folders: add, change, a partially written library, remove.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use gp_host::{Context, Event, Manager, WatchOptions};

use crate::harness::{base_dir, install_lifecycle, lifecycle};

/// Subscribes to `manager`'s lifecycle events, one line each.
fn events(manager: &Manager) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    let sender = std::sync::Mutex::new(sender);
    manager.subscribe_lifecycle(move |event| {
        let line = match event {
            // The reservation around a load, pinned in cli/serve_loading.rs.
            Event::Loading { .. } | Event::LoadAbandoned { .. } => return,
            Event::Loaded { spec } => format!("loaded {} {}", spec.name(), spec.version()),
            Event::Upgraded { from, to } => {
                format!(
                    "upgraded {} {} -> {}",
                    to.name(),
                    from.version(),
                    to.version()
                )
            }
            Event::Unloaded { report } => format!("unloaded {}", report.spec.name()),
            Event::UpgradeRefused { error, .. } => format!("refused: {error}"),
            Event::LoadFailed { error, .. } => format!("failed: {error}"),
            other => format!("{other:?}"),
        };
        let _ = sender.lock().unwrap().send(line);
    });
    receiver
}

fn next(events: &mpsc::Receiver<String>) -> String {
    events
        .recv_timeout(Duration::from_secs(20))
        .expect("the watcher reports within 20 s")
}

/// The version the `counter` fixture says it is, called now.
pub fn version(manager: &Manager) -> String {
    let mut ctx = Context::new();
    manager
        .executor("counter")
        .unwrap()
        .execute(&mut ctx)
        .unwrap();
    ctx.get("version")
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned()
}

/// Writes `data` to `path` in two halves with a pause longer than the watcher's settle time
/// between them, as a slow copy would.
fn write_slowly(path: &Path, data: &[u8], pause: Duration) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&data[..data.len() / 2]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(pause);
    file.write_all(&data[data.len() / 2..]).unwrap();
}

#[test]
fn the_watcher_loads_upgrades_survives_a_partial_copy_and_unloads() {
    let base = base_dir();
    let manager = Manager::new(base.path());
    let events = events(&manager);
    let settle = Duration::from_millis(100);
    let watcher = manager
        .watch_with(WatchOptions {
            settle,
            attempts: 10,
        })
        .unwrap();

    // A new folder loads.
    let staging = base_dir();
    let v1 = install_lifecycle(staging.path(), "counter-v1", "counter");
    std::fs::rename(&v1, base.path().join("counter")).unwrap();
    assert_eq!(next(&events), "loaded counter 1.0.0");
    assert_eq!(version(&manager), "1.0.0");

    // v2's plugin.json arrives, then its library, slowly: the half-written library is refused
    // (quietly, while attempts remain), v1 keeps serving, and v2 takes over once complete.
    let v2 = install_lifecycle(staging.path(), "counter-v2", "counter-v2");
    let dir = base.path().join("counter");
    std::fs::copy(v2.join("plugin.json"), dir.join("plugin.json")).unwrap();
    let library = lifecycle("counter-v2");
    let data = std::fs::read(library).unwrap();
    let target = dir.join(library.file_name().unwrap());
    let writer = {
        let target = target.clone();
        std::thread::spawn(move || write_slowly(&target, &data, settle * 4))
    };
    std::thread::sleep(settle * 2);
    assert_eq!(
        version(&manager),
        "1.0.0",
        "v1 serves while v2 is being written"
    );
    writer.join().unwrap();
    assert_eq!(next(&events), "upgraded counter 1.0.0 -> 2.0.0");
    assert_eq!(version(&manager), "2.0.0");

    // A library that stays broken is reported once the attempts run out; v2 keeps serving.
    drop(watcher);
    let watcher = manager
        .watch_with(WatchOptions {
            settle,
            attempts: 2,
        })
        .unwrap();
    std::fs::write(&target, b"\x7fELF not really").unwrap();
    let refused = next(&events);
    assert!(
        refused.starts_with(&format!(
            "refused: upgrade of plugin `counter` refused, 2.0.0 keeps serving: {}: not a loadable library",
            target.canonicalize().unwrap().display()
        )),
        "{refused}"
    );
    assert_eq!(version(&manager), "2.0.0");

    // A removed folder unloads.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(next(&events), "unloaded counter");
    assert!(manager.executor("counter").is_err());
    watcher.stop();
    assert!(events.try_recv().is_err(), "no other event");
}

#[test]
fn the_watcher_follows_packages_too() {
    let base = base_dir();
    let manager = Manager::new(base.path());
    let events = events(&manager);
    let _watcher = manager
        .watch_with(WatchOptions {
            settle: Duration::from_millis(100),
            attempts: 10,
        })
        .unwrap();
    let staging = base_dir();
    let v1 = install_lifecycle(staging.path(), "counter-v1", "v1");
    let v2 = install_lifecycle(staging.path(), "counter-v2", "v2");
    let package = base.path().join("counter.plg");
    let scratch = base_dir();
    gp_host::package::pack(&v1, &scratch.path().join("p.plg"), None).unwrap();
    std::fs::rename(scratch.path().join("p.plg"), &package).unwrap();
    assert_eq!(next(&events), "loaded counter 1.0.0");
    assert_eq!(manager.get_plugin("counter").unwrap().0.origin, package);
    gp_host::package::pack(&v2, &scratch.path().join("p.plg"), None).unwrap();
    std::fs::rename(scratch.path().join("p.plg"), &package).unwrap();
    assert_eq!(next(&events), "upgraded counter 1.0.0 -> 2.0.0");
    assert_eq!(version(&manager), "2.0.0");
    std::fs::remove_file(&package).unwrap();
    assert_eq!(next(&events), "unloaded counter");
}
