//! The cell and its hazards on a test type, one thread at a time, then under contention
//! (the fallback's fences or membarrier, whichever this process chose). Miri runs these
//! with `GP_MEMBARRIER=off` (`.ci/miri`); the loom model of the fallback is `gp-host/loom`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{thread, Retired, Version, VersionCell, SLOTS};

/// A version that records being dropped, and fails loudly if used after.
struct TestVersion {
    number: usize,
    alive: AtomicBool,
    drops: Arc<AtomicUsize>,
}

impl TestVersion {
    fn new(number: usize, drops: &Arc<AtomicUsize>) -> Arc<TestVersion> {
        Arc::new(TestVersion {
            number,
            alive: AtomicBool::new(true),
            drops: Arc::clone(drops),
        })
    }

    /// The version's number, checking that it was not dropped.
    fn read(&self) -> usize {
        assert!(
            self.alive.load(Ordering::Acquire),
            "used after it was dropped"
        );
        self.number
    }
}

impl Drop for TestVersion {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
        self.drops.fetch_add(1, Ordering::AcqRel);
    }
}

impl Version for TestVersion {
    fn plugin_name(&self) -> &str {
        "test"
    }
}

fn cell() -> VersionCell<TestVersion> {
    VersionCell::empty()
}

#[test]
fn an_empty_cell_gives_nothing_and_swaps_out_nothing() {
    let cell = cell();
    assert!(cell.with(thread(), |v| v.is_none()));
    assert!(cell.load_full().is_none());
    assert!(cell.swap(None).is_none());
}

#[test]
fn a_version_swapped_out_with_no_call_goes_at_once() {
    let drops = Arc::default();
    let cell = cell();
    assert!(cell.swap(Some(TestVersion::new(1, &drops))).is_none());
    assert_eq!(cell.with(thread(), |v| v.map(TestVersion::read)), Some(1));
    let retired = cell.swap(Some(TestVersion::new(2, &drops))).unwrap();
    assert_eq!(retired.number, 1);
    assert_eq!(retired.calls_in_flight(), 0);
    drop(retired);
    assert_eq!(drops.load(Ordering::Acquire), 1);
    assert_eq!(cell.with(thread(), |v| v.map(TestVersion::read)), Some(2));
    // The cell's own count goes with the cell.
    drop(cell);
    assert_eq!(drops.load(Ordering::Acquire), 2);
}

#[test]
fn a_call_in_flight_keeps_the_version_it_runs_on() {
    let drops = Arc::default();
    let cell = cell();
    cell.swap(Some(TestVersion::new(1, &drops)));
    let retired: Retired<TestVersion> = cell.with(thread(), |v| {
        let v = v.unwrap();
        let retired = cell.swap(Some(TestVersion::new(2, &drops))).unwrap();
        // Its hazard counts it; the version still reads as alive.
        assert_eq!(retired.calls_in_flight(), 1);
        assert_eq!(v.read(), 1);
        // A call that starts now gets the new version (nested: the next hazard slot).
        assert_eq!(cell.with(thread(), |n| n.map(TestVersion::read)), Some(2));
        retired
    });
    assert_eq!(retired.calls_in_flight(), 0);
    drop(retired);
    assert_eq!(drops.load(Ordering::Acquire), 1);
}

#[test]
#[cfg_attr(miri, ignore = "leaks on purpose")]
fn a_retired_version_dropped_while_calls_run_is_leaked_not_freed() {
    let drops = Arc::default();
    let cell = cell();
    cell.swap(Some(TestVersion::new(1, &drops)));
    cell.with(thread(), |v| {
        drop(cell.swap(None).unwrap());
        // Not freed under the call.
        assert_eq!(v.unwrap().read(), 1);
    });
    assert_eq!(drops.load(Ordering::Acquire), 0);
}

#[test]
fn calls_nested_past_the_hazard_slots_hold_a_counted_reference() {
    fn nest(cell: &VersionCell<TestVersion>, depth: usize, at_bottom: &dyn Fn()) {
        cell.with(thread(), |v| {
            assert_eq!(v.unwrap().read(), 1);
            if depth == 0 {
                at_bottom();
            } else {
                nest(cell, depth - 1, at_bottom);
            }
        });
    }
    let drops = Arc::default();
    let cell = cell();
    cell.swap(Some(TestVersion::new(1, &drops)));
    let depth = SLOTS + 2;
    let retired = std::cell::RefCell::new(None);
    nest(&cell, depth - 1, &|| {
        let old = cell.swap(None).unwrap();
        // Every level is a call in flight: hazards for the first SLOTS - 1, counted
        // references for the rest.
        assert_eq!(old.calls_in_flight(), depth);
        *retired.borrow_mut() = Some(old);
    });
    let retired = retired.into_inner().unwrap();
    assert_eq!(retired.calls_in_flight(), 0);
    drop(retired);
    assert_eq!(drops.load(Ordering::Acquire), 1);
}

#[test]
fn load_full_counts_as_a_call_until_dropped() {
    let drops = Arc::default();
    let cell = cell();
    cell.swap(Some(TestVersion::new(1, &drops)));
    let full = cell.load_full().unwrap();
    let retired = cell.swap(None).unwrap();
    assert_eq!(retired.calls_in_flight(), 1);
    drop(full);
    assert_eq!(retired.calls_in_flight(), 0);
}

#[test]
fn a_panicking_call_releases_its_hazard() {
    let drops = Arc::default();
    let cell = cell();
    cell.swap(Some(TestVersion::new(1, &drops)));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.with(thread(), |_| panic!("in a call"));
    }));
    assert!(unwound.is_err());
    assert_eq!(cell.swap(None).unwrap().calls_in_flight(), 0);
}

#[test]
fn a_record_is_given_back_when_its_thread_exits() {
    let record = std::thread::spawn(|| {
        let record = thread();
        assert!(record.claimed.load(Ordering::Acquire));
        record as *const super::Record as usize
    })
    .join()
    .unwrap();
    let records = crate::util::lock(&super::RECORDS);
    let record = records
        .iter()
        .find(|r| std::ptr::eq(**r, record as *const super::Record))
        .unwrap();
    // Given back clean (another test's new thread may have claimed it since).
    assert!(record
        .hazards
        .iter()
        .all(|h| h.load(Ordering::Acquire).is_null()));
}

/// Readers call without pause while a writer replaces the version and frees each old one
/// once no call runs on it: no reader ever sees a freed version.
#[test]
fn readers_never_see_a_freed_version_while_a_writer_replaces_it() {
    let (readers, swaps) = if cfg!(miri) { (2, 20) } else { (4, 2_000) };
    let drops = Arc::default();
    let cell = Arc::new(cell());
    cell.swap(Some(TestVersion::new(0, &drops)));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let (cell, stop) = (Arc::clone(&cell), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut calls, mut last) = (0u64, 0);
                while !stop.load(Ordering::Relaxed) {
                    let seen = cell.with(thread(), |v| v.unwrap().read());
                    assert!(seen >= last, "went back from {last} to {seen}");
                    last = seen;
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    for number in 1..=swaps {
        let old = cell.swap(Some(TestVersion::new(number, &drops))).unwrap();
        while old.calls_in_flight() > 0 {
            std::thread::yield_now();
        }
        drop(old);
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(drops.load(Ordering::Acquire), swaps);
}
