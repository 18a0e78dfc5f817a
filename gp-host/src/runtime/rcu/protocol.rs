//! The protocol's steps on bare atomics, with nothing else in them: written once, for the
//! call path ([`super`]) and for the loom model of the fallback (`gp-host/loom`, which
//! includes this file with loom's atomics as `super::sync`). See the parent module for why
//! the steps are enough.
//!
//! No `unsafe` here: the steps move and compare pointers; what may be done with a protected
//! one is the caller's argument.

use std::ptr;

use super::sync::{compiler_fence, fence, AtomicPtr, Ordering};

/// The reader's barrier: a `SeqCst` fence, or, when `light` (writers use `membarrier`), a
/// compiler fence only.
#[inline(always)]
fn light_barrier(light: bool) {
    if light {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// Reader, steps 1 to 4: publishes in `hazard` the pointer `cell` holds, until `cell` is seen
/// to still hold it after publication. Returns it (null: no version, and nothing published).
#[inline(always)]
pub(crate) fn protect<T>(cell: &AtomicPtr<T>, hazard: &AtomicPtr<T>, light: bool) -> *mut T {
    let mut version = cell.load(Ordering::Relaxed);
    loop {
        // Release, both stores: a writer's scan may read this store rather than the null
        // that ended this thread's previous call, and must still find that call's accesses
        // before it (since C++20, and so in Rust, a relaxed store by the same thread does not
        // continue a release sequence). Found by the loom model; free on x86, `stlr` on Arm.
        if version.is_null() {
            hazard.store(ptr::null_mut(), Ordering::Release);
            return version;
        }
        hazard.store(version, Ordering::Release);
        light_barrier(light);
        // Acquire: the version was fully built before the release that published it.
        let again = cell.load(Ordering::Acquire);
        if again == version {
            return version;
        }
        version = again;
    }
}

/// Reader, step 6: done with the version `hazard` protected.
#[inline]
pub(crate) fn release<T>(hazard: &AtomicPtr<T>) {
    // Release: the call's accesses to the version come before a writer's scan that reads
    // this null, and so before the version is freed.
    hazard.store(ptr::null_mut(), Ordering::Release);
}

/// Writer: puts `new` in `cell`, then runs the heavy barrier (`membarrier`, or a `SeqCst`
/// fence in the fallback). Returns what `cell` held, which may still be in use until
/// [`hazards_on`] says no hazard points at it.
pub(crate) fn replace<T>(cell: &AtomicPtr<T>, new: *mut T, heavy_barrier: impl FnOnce()) -> *mut T {
    let old = cell.swap(new, Ordering::SeqCst);
    if !old.is_null() {
        heavy_barrier();
    }
    old
}

/// Writer: how many of `hazards` point at `version` (once none does, after [`replace`] took
/// it out of every cell, no reader can use it again).
pub(crate) fn hazards_on<'a, T: 'a>(
    hazards: impl IntoIterator<Item = &'a AtomicPtr<T>>,
    version: *const T,
) -> usize {
    hazards
        .into_iter()
        .filter(|h| ptr::eq(h.load(Ordering::Acquire), version))
        .count()
}
