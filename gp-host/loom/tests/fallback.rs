//! The fallback protocol of gp-host's call protection (`runtime::rcu` with `GP_MEMBARRIER=off`
//! or no membarrier), model-checked: readers protect a version with a hazard and a `SeqCst`
//! fence, a writer replaces it, runs its `SeqCst` fence, and frees the old version once no
//! hazard points at it. The steps are gp-host's own (`protocol.rs`, included below with
//! loom's atomics); loom explores their interleavings and the values each load may read, and
//! fails on a version read after it was freed (a write to its `UnsafeCell` that does not
//! happen after the read).
//!
//! Loom cannot model membarrier (the fast path's heavy barrier runs in the kernel); the
//! membarrier path keeps its stress test (`gp-host/tests/plugins/reclaim.rs`). The last test
//! checks that the model has teeth: without the fences, loom finds the use after free.
//!
//! Bounded by `LOOM_MAX_PREEMPTIONS` (3 if unset): about 10 s in release mode.
#![warn(clippy::undocumented_unsafe_blocks)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

#[allow(dead_code)] // `release` and friends: each model uses what it needs.
#[path = "../../src/runtime/rcu/protocol.rs"]
mod protocol;

/// What `protocol.rs` runs on: loom's atomics. Loom has no compiler fence; the fallback
/// never uses one (the model of the missing fence counts on it doing nothing).
mod sync {
    pub(crate) use loom::sync::atomic::{fence, AtomicPtr, Ordering};

    pub(crate) fn compiler_fence(_: Ordering) {}
}

use sync::{fence, AtomicPtr, Ordering};

/// A version: its contents, written when it is freed.
struct Version {
    value: UnsafeCell<u64>,
}

const FREED: u64 = u64::MAX;

fn version(value: u64) -> *mut Version {
    Box::into_raw(Box::new(Version {
        value: UnsafeCell::new(value),
    }))
}

/// The cell and one hazard slot per reader.
struct Shared {
    cell: AtomicPtr<Version>,
    hazards: Vec<AtomicPtr<Version>>,
}

/// A call: protect, read the version, release. `light`: the fast path's compiler fence (only
/// sound with membarrier on the writer's side, which the model does not have).
fn call(shared: &Shared, reader: usize, light: bool) -> u64 {
    let hazard = &shared.hazards[reader];
    let version = protocol::protect(&shared.cell, hazard, light);
    assert!(!version.is_null());
    // SAFETY: protected by the hazard (what the model checks): `version` is not freed until
    // the release below.
    let value = unsafe { (*version).value.with(|v| *v) };
    protocol::release(hazard);
    assert_ne!(value, FREED, "a call ran on a freed version");
    value
}

/// The writer: replaces the version, waits until no hazard points at the old one, frees it:
/// writes its contents, as a free would, and returns it to be deallocated once the threads
/// are done (so that a model without its fences reports the race instead of reading freed
/// memory). `heavy`: the fallback's SeqCst fence, or nothing.
fn replace(shared: &Shared, value: u64, heavy: bool) -> Box<Version> {
    let old = protocol::replace(&shared.cell, version(value), || {
        if heavy {
            fence(Ordering::SeqCst);
        }
    });
    while protocol::hazards_on(&shared.hazards, old) > 0 {
        thread::yield_now();
    }
    // SAFETY: `old` came from `version` and was taken out of the cell, so it is ours; the
    // model checks that no reader still uses it.
    let old = unsafe { Box::from_raw(old) };
    // SAFETY: a valid pointer into `old`; loom reports it if the write races a reader.
    old.value.with_mut(|v| unsafe { *v = FREED });
    old
}

fn model(readers: usize, calls: usize, replacements: u64, fences: bool) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        let shared = Arc::new(Shared {
            cell: AtomicPtr::new(version(0)),
            hazards: (0..readers)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
        });
        let threads: Vec<_> = (0..readers)
            .map(|reader| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..calls {
                        let value = call(&shared, reader, !fences);
                        assert!(value >= last, "went back from {last} to {value}");
                        last = value;
                    }
                })
            })
            .collect();
        let freed: Vec<Box<Version>> = (1..=replacements)
            .map(|value| replace(&shared, value, fences))
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(freed);
        let last = shared.cell.load(Ordering::Relaxed);
        // SAFETY: every thread has ended; the cell's last version is ours to free.
        drop(unsafe { Box::from_raw(last) });
    });
}

#[test]
fn one_reader_one_replacement() {
    model(1, 1, 1, true);
}

#[test]
fn one_reader_two_calls_two_replacements() {
    model(1, 2, 2, true);
}

#[test]
fn two_readers_one_replacement() {
    model(2, 1, 1, true);
}

#[test]
fn two_readers_two_calls_one_replacement() {
    model(2, 2, 1, true);
}

/// The model has teeth: with a compiler fence alone on the reader's side and no barrier on
/// the writer's (membarrier left out), loom finds a call on a freed version.
#[test]
#[should_panic(expected = "Causality violation")]
fn without_the_fences_a_call_can_run_on_a_freed_version() {
    model(1, 1, 1, false);
}
