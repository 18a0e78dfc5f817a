//! Which version a call runs on, protected at almost no cost to the call: hazard pointers with
//! asymmetric fences. One of gp-host's two modules with `unsafe` code (the other is the fatal
//! reporter's signal handler, `runtime::fatal`).
//!
//! A [`VersionCell`] holds the version serving now as a raw pointer that owns one strong count
//! of an `Arc<Loaded>`. A call protects the version it is about to run with a *hazard*: a slot
//! of the calling thread's [`Record`] that says "I am using this version". The reader's side is
//! plain stores and loads:
//!
//! 1. `p = cell.load()`; 2. `hazard = p`; 3. a barrier; 4. if `cell.load() != p`, go to 2 with
//!    the new value; 5. run the call on `p`; 6. `hazard = null` (release).
//!
//! The writer swaps the cell's pointer, then issues a *heavy* barrier, then treats a replaced
//! version as in use while any hazard points at it (or anyone holds a strong count), and only
//! then lets it go. Step 3 must order the hazard store before the validating load against the
//! writer's swap and scan. Ordinary hazard pointers pay a full fence (`mfence`, a locked
//! instruction) on every call for that. Here the reader's barrier is a compiler fence only,
//! and the writer's heavy barrier is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which
//! makes every running thread of the process execute a full memory barrier before it returns
//! (the scheme of liburcu's `urcu-memb` and folly's `asymmetricHeavyBarrier`).
//!
//! Why that is enough, for a reader R and a writer W that replaces version `old`: the kernel's
//! barrier runs on R at some point M, after W's swap is globally visible (the swap is a
//! sequentially consistent read-modify-write, and membarrier starts with a full barrier).
//! - If M comes before R's validating load (4), that load sees the new pointer, so R does not
//!   run on `old`.
//! - Otherwise R's hazard store (2) precedes M, so it is visible to W's scan, which comes after
//!   membarrier returns: W sees the hazard and waits, unless R has already cleared it (6), and
//!   that release store, read by W's acquire load, orders R's whole call before W frees `old`.
//!
//! A reader that starts later cannot obtain `old` at all: no cell points at it. So one heavy
//! barrier per replacement suffices; later scans only read hazards. Reclamation is per version:
//! a version waits for the calls that run on it, never for calls into other versions.
//!
//! Where `membarrier` is unavailable (an old kernel, seccomp, gVisor, or `GP_MEMBARRIER=off` in
//! the environment), the reader's barrier is a real `SeqCst` fence and the writer's too: the
//! classic hazard-pointer protocol, correct and slower. The choice is made once, before any
//! version is published, and readers default to the real fence until it is made.
//!
//! Each thread that calls gets a [`Record`] on its first call: [`SLOTS`] hazard slots (calls
//! nest when an event subscriber calls another plugin) and a small index that metrics use to
//! pick the thread's shard. Records are never freed; a record whose thread has exited is
//! reused by the next new thread.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::runtime::loaded::Loaded;
use crate::util::lock;

mod protocol;

/// The atomics [`protocol`] runs on: std's here, loom's in the model (`gp-host/loom`).
mod sync {
    pub(super) use std::sync::atomic::{compiler_fence, fence, AtomicPtr, Ordering};
}

/// What a [`VersionCell`] may hold: [`Loaded`], and in unit tests, test types.
///
/// Hazards are type-erased (`*mut ()`), and the fatal reporter reads the innermost one of
/// its thread as a `Loaded`: so implement it for nothing else outside `#[cfg(test)]`.
pub(crate) trait Version: Send + Sync + 'static {
    /// The plugin's name, for the log line of a version leaked while calls ran on it.
    fn plugin_name(&self) -> &str;
}

impl Version for Loaded {
    fn plugin_name(&self) -> &str {
        self.spec.name()
    }
}

/// Hazard slots per thread: calls nested this deep run on a counted reference instead.
pub(crate) const SLOTS: usize = 4;

/// One thread's hazards. Only its thread writes them; writers of cells read them.
#[repr(align(128))]
pub(crate) struct Record {
    /// Null when free. A call uses the first free one: the first, unless calls nest.
    /// Type-erased: each points at a `T` of some `VersionCell<T>` (outside tests, `Loaded`).
    hazards: [AtomicPtr<()>; SLOTS],
    /// Small and unique among the records: the thread's metrics shard.
    index: usize,
    /// Whether a live thread owns the record.
    claimed: AtomicBool,
}

impl Record {
    /// The thread's index, unique among live threads and reused after a thread exits.
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index
    }
}

/// Every record ever made, for writers to scan and new threads to claim.
static RECORDS: Mutex<Vec<&'static Record>> = Mutex::new(Vec::new());

thread_local! {
    /// The calling thread's record. No destructor, so reading it is a plain load.
    static CURRENT: Cell<Option<&'static Record>> = const { Cell::new(None) };
    /// Gives the record back when the thread exits.
    static OWNER: Owner = const { Owner };
    /// The record this thread claimed, kept past its TLS destructors: `exit()` runs those
    /// before `atexit` handlers, and the fatal reporter's runs then.
    static CLAIMED: Cell<Option<&'static Record>> = const { Cell::new(None) };
}

struct Owner;

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(record) = CURRENT.with(|current| current.replace(None)) {
            // Release: this thread's last hazard writes come before the next owner's.
            record.claimed.store(false, Ordering::Release);
        }
    }
}

/// The innermost version the calling thread is running a call in, if any: read by the fatal
/// reporter, from a signal handler (a const thread-local and relaxed loads: nothing that
/// allocates or locks).
fn current_version() -> Option<*const ()> {
    let record = CURRENT
        .with(Cell::get)
        .or_else(|| CLAIMED.try_with(Cell::get).ok().flatten())?;
    record.hazards[..SLOTS - 1]
        .iter()
        .map(|h| h.load(Ordering::Relaxed))
        .take_while(|p| !p.is_null())
        .last()
        .map(|p| p.cast_const())
}

/// The name of the plugin of the calling thread's innermost call, as bytes: for the fatal
/// reporter, in a signal handler (no allocation, no lock).
pub(crate) fn current_plugin_name() -> Option<&'static [u8]> {
    let version = current_version()?;
    // SAFETY: a non-null hazard of the current thread points at a live version while the
    // hazard is set, and it is set because this thread is inside that call (the handler
    // runs on the faulting thread, in the middle of it, or in its `exit`). The version is a
    // `Loaded`: outside unit tests, no other type implements `Version`.
    let loaded: &Loaded = unsafe { &*version.cast::<Loaded>() };
    let name = &loaded.spec.manifest.name;
    // SAFETY: as above: the version, and so its name, outlives the reporter's use of it.
    Some(unsafe { std::slice::from_raw_parts(name.as_ptr(), name.len()) })
}

/// The calling thread's record.
#[inline]
pub(crate) fn thread() -> &'static Record {
    match CURRENT.with(Cell::get) {
        Some(record) => record,
        None => claim(),
    }
}

#[cold]
#[inline(never)]
fn claim() -> &'static Record {
    let mut records = lock(&RECORDS);
    let free = records.iter().copied().find(|r| {
        r.claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    });
    let record = free.unwrap_or_else(|| {
        let record: &'static Record = Box::leak(Box::new(Record {
            hazards: Default::default(),
            index: records.len(),
            claimed: AtomicBool::new(true),
        }));
        records.push(record);
        record
    });
    drop(records);
    CURRENT.with(|current| current.set(Some(record)));
    CLAIMED.with(|claimed| claimed.set(Some(record)));
    // A thread past its TLS destructors cannot register one: it keeps the record for good.
    let _ = OWNER.try_with(|_| {});
    record
}

/// How many hazards of any thread point at `version`.
fn hazards_on(version: *const ()) -> usize {
    let records = lock(&RECORDS);
    protocol::hazards_on(records.iter().flat_map(|r| r.hazards.iter()), version)
}

/// The pointer a cell holds for `version`.
fn raw<T>(version: Option<Arc<T>>) -> *mut () {
    version.map_or(ptr::null_mut(), |v| Arc::into_raw(v).cast_mut().cast())
}

/// The version a plugin serves now, if any: what slots hold.
pub(crate) struct VersionCell<T: Version = Loaded> {
    /// Null, or `Arc::into_raw` of the version serving (a `T`), whose strong count the cell
    /// owns. Type-erased, as the hazards that protect it are.
    current: AtomicPtr<()>,
    /// The cell owns an `Arc<T>`: it is `Send` and `Sync` when `Arc<T>` is, which `Version`
    /// requires.
    owns: PhantomData<Arc<T>>,
}

impl<T: Version> VersionCell<T> {
    /// A cell with no version.
    pub(crate) const fn empty() -> VersionCell<T> {
        VersionCell {
            current: AtomicPtr::new(ptr::null_mut()),
            owns: PhantomData,
        }
    }

    /// Runs `f` with the version serving now (`None` if there is none), which stays alive and
    /// unreleased until `f` returns, even if the cell is swapped meanwhile.
    #[inline]
    pub(crate) fn with<R>(&self, thread: &Record, f: impl FnOnce(Option<&T>) -> R) -> R {
        // Only this thread writes its hazards: a relaxed load sees its own last store.
        let hazard = &thread.hazards[0];
        if !hazard.load(Ordering::Relaxed).is_null() {
            return self.with_nested(thread, f);
        }
        self.with_hazard(hazard, f)
    }

    /// Runs `f` with the version serving now, protected by `hazard` (a free slot of the
    /// calling thread) until `f` returns or unwinds.
    #[inline(always)]
    fn with_hazard<R>(&self, hazard: &AtomicPtr<()>, f: impl FnOnce(Option<&T>) -> R) -> R {
        let version = self.protect(hazard);
        if version.is_null() {
            return f(None);
        }
        let _release = Release(hazard);
        // SAFETY: `version` came from `Arc::into_raw` of an `Arc<T>` (the cell holds only
        // those) and is protected by `hazard`, published and validated by `protect`: no
        // writer frees a version that a hazard points at (see the module documentation), and
        // `_release` clears the hazard only after `f` returns.
        f(Some(unsafe { &*version.cast::<T>() }))
    }

    /// [`with`](Self::with) for a call nested in another on this thread (an event subscriber
    /// calling a plugin): the next free slot, or, nested deeper than the slots, a strong
    /// count taken under the last one.
    #[cold]
    #[inline(never)]
    fn with_nested<R>(&self, thread: &Record, f: impl FnOnce(Option<&T>) -> R) -> R {
        let free = thread.hazards[1..SLOTS - 1]
            .iter()
            .find(|h| h.load(Ordering::Relaxed).is_null());
        match free {
            Some(hazard) => self.with_hazard(hazard, f),
            None => {
                let version = self.load_full_with(&thread.hazards[SLOTS - 1]);
                f(version.as_deref())
            }
        }
    }

    /// A strong reference to the version serving now.
    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        // The last slot is only ever held for the moment it takes to count a reference.
        self.load_full_with(&thread().hazards[SLOTS - 1])
    }

    fn load_full_with(&self, hazard: &AtomicPtr<()>) -> Option<Arc<T>> {
        let version = self.protect(hazard).cast::<T>();
        if version.is_null() {
            return None;
        }
        // SAFETY: `version` came from `Arc::into_raw` of an `Arc<T>` and is alive: the hazard
        // protects it until the count is taken, and the count then keeps it alive on its own.
        let counted = unsafe {
            Arc::increment_strong_count(version);
            Arc::from_raw(version)
        };
        protocol::release(hazard);
        Some(counted)
    }

    /// Publishes in `hazard` the pointer the cell holds, until the cell is seen to still hold
    /// it after publication. Returns it (null: no version, and nothing published).
    #[inline(always)]
    fn protect(&self, hazard: &AtomicPtr<()>) -> *mut () {
        protocol::protect(&self.current, hazard, LIGHT_READERS.load(Ordering::Relaxed))
    }

    /// Puts `new` in the cell and returns what it held, as a version that may still be running
    /// calls (see [`Retired`]).
    pub(crate) fn swap(&self, new: Option<Arc<T>>) -> Option<Retired<T>> {
        barrier_kind(); // decided before anything is published
        let old = protocol::replace(&self.current, raw(new), heavy_barrier);
        if old.is_null() {
            return None;
        }
        // SAFETY: `old` came from `Arc::into_raw` of an `Arc<T>` (by `raw`) and the cell
        // owned its count, which passes to the `Retired`.
        Some(Retired(Some(unsafe { Arc::from_raw(old.cast::<T>()) })))
    }
}

impl<T: Version> Drop for VersionCell<T> {
    fn drop(&mut self) {
        let version = *self.current.get_mut();
        if !version.is_null() {
            // SAFETY: the cell owned this count of an `Arc<T>`; being dropped, it has no
            // readers (a reader borrows the cell for the whole call).
            drop(unsafe { Arc::from_raw(version.cast::<T>()) });
        }
    }
}

/// Clears a hazard when a call returns (or unwinds).
struct Release<'a>(&'a AtomicPtr<()>);

impl Drop for Release<'_> {
    #[inline]
    fn drop(&mut self) {
        protocol::release(self.0);
    }
}

/// A version taken out of its cell. Calls that protected it before the swap may still run on
/// it; [`calls_in_flight`](Self::calls_in_flight) says how many, and only when it is zero may
/// the version go (dropping a `Retired` that still runs calls leaks the version rather than
/// freeing memory in use).
pub(crate) struct Retired<T: Version = Loaded>(Option<Arc<T>>);

impl<T: Version> Retired<T> {
    /// Calls still running on this version: hazards on it, plus strong references other than
    /// this one (counted references are taken by calls nested deeper than the hazard slots).
    pub(crate) fn calls_in_flight(&self) -> usize {
        let version = self.version();
        let counted = Arc::strong_count(version) - 1;
        let in_flight = hazards_on(Arc::as_ptr(version).cast()) + counted;
        // `strong_count` promises no ordering: make the last call's writes visible to what
        // follows (dropping an `Arc` would have fenced; reading the count does not).
        fence(Ordering::Acquire);
        in_flight
    }

    fn version(&self) -> &Arc<T> {
        self.0.as_ref().expect("a retired version until dropped")
    }
}

impl<T: Version> std::ops::Deref for Retired<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.version()
    }
}

impl<T: Version> Drop for Retired<T> {
    fn drop(&mut self) {
        // A reader that loaded the cell just before the swap may publish a hazard on this
        // version for a moment, see the cell's new value and move on without using it: a
        // hazard that is not a call. It clears within the reader's next step, so look again a
        // few times before calling it a call (found by Miri's scheduler, which preempts there).
        let mut in_flight = self.calls_in_flight();
        for _ in 0..TRANSIENT_LOOKS {
            if in_flight == 0 {
                break;
            }
            std::thread::yield_now();
            in_flight = self.calls_in_flight();
        }
        if in_flight > 0 {
            let version = self.0.take().expect("dropped once");
            tracing::error!(target: "gp", plugin = version.plugin_name(), "a version was let go while calls still ran on it; it is leaked instead");
            std::mem::forget(version);
        }
    }
}

/// How many times a dropped [`Retired`] looks again at its hazards before it is leaked.
const TRANSIENT_LOOKS: usize = 64;

/// How the two sides of the protocol order their accesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BarrierKind {
    /// Readers: a compiler fence. Writers: `membarrier` (private expedited).
    Membarrier,
    /// Readers and writers: a `SeqCst` fence.
    Fences,
}

/// Set once `membarrier` is registered: from then on, readers may use a compiler fence only.
static LIGHT_READERS: AtomicBool = AtomicBool::new(false);

fn barrier_kind() -> BarrierKind {
    static KIND: OnceLock<BarrierKind> = OnceLock::new();
    *KIND.get_or_init(|| {
        let kind = if std::env::var_os("GP_MEMBARRIER").is_some_and(|v| v == "off") {
            BarrierKind::Fences
        } else if membarrier::register() {
            BarrierKind::Membarrier
        } else {
            BarrierKind::Fences
        };
        if kind == BarrierKind::Membarrier {
            LIGHT_READERS.store(true, Ordering::SeqCst);
        }
        tracing::debug!(target: "gp", "call protection: {kind:?}");
        kind
    })
}

fn heavy_barrier() {
    match barrier_kind() {
        BarrierKind::Membarrier => membarrier::private_expedited(),
        BarrierKind::Fences => fence(Ordering::SeqCst),
    }
}

/// How calls are protected in this process: `"membarrier"` (readers pay a compiler fence) or
/// `"fences"` (the fallback: readers pay a full fence). For tests and diagnostics.
pub(crate) fn barrier_name() -> &'static str {
    match barrier_kind() {
        BarrierKind::Membarrier => "membarrier",
        BarrierKind::Fences => "fences",
    }
}

#[cfg(target_os = "linux")]
mod membarrier {
    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn call(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes two integers and a CPU id, touches no memory of ours, and
        // fails with an error code (ENOSYS, EINVAL, EPERM) where it is not allowed.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers the process for private expedited barriers; false where that is unsupported.
    pub(super) fn register() -> bool {
        let supported = call(CMD_QUERY);
        supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED != 0
            && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// A full memory barrier on every running thread of the process.
    pub(super) fn private_expedited() {
        if call(CMD_PRIVATE_EXPEDITED) != 0 {
            // Registered, so the kernel promised this works; readers rely on it.
            let error = std::io::Error::last_os_error();
            panic!("membarrier(PRIVATE_EXPEDITED) failed after registration: {error}");
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn private_expedited() {
        unreachable!("never registered")
    }
}

#[cfg(test)]
mod tests;
