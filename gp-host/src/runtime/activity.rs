//! What the host is doing with a plugin outside a call ("loading the plugin at PATH",
//! "running plugin `x`'s on_unload"), kept where a signal handler can read it: the fatal
//! reporter names it when a library's start-up code or a hook crashes the process.
//!
//! Plugins load concurrently (`Manager::load_plugins`), so each thread keeps a record of its
//! own, and a fault or an `exit()` on a loading thread is named by that thread's load. A
//! process-wide record, the last one any thread wrote, is the fallback for a fault on a
//! thread that records nothing (one a library's start-up code or hook spawned); with loads
//! running at once it may name another of them, which the message cannot tell.
//!
//! Fixed buffers of atomics (the thread's in a const thread-local without a destructor), so
//! that writing needs no lock and reading no allocation. Best effort: a reader racing a
//! writer of the process-wide record may see a mix of two texts.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

const CAPACITY: usize = 512;

/// A record: a text of at most [`CAPACITY`] bytes.
struct Record {
    text: [AtomicU8; CAPACITY],
    len: AtomicUsize,
}

impl Record {
    const fn new() -> Record {
        Record {
            text: [const { AtomicU8::new(0) }; CAPACITY],
            len: AtomicUsize::new(0),
        }
    }

    fn store(&self, text: &[u8]) {
        let len = text.len().min(CAPACITY);
        self.len.store(0, Ordering::Release);
        for (slot, byte) in self.text.iter().zip(&text[..len]) {
            slot.store(*byte, Ordering::Relaxed);
        }
        self.len.store(len, Ordering::Release);
    }

    fn read(&self, out: &mut [u8]) -> usize {
        let len = self.len.load(Ordering::Acquire).min(out.len());
        for (byte, slot) in out.iter_mut().zip(&self.text[..len]) {
            *byte = slot.load(Ordering::Relaxed);
        }
        len
    }
}

/// The last record any thread wrote.
static LAST: Record = Record::new();
/// Which thread wrote [`LAST`] (see [`thread_mark`]; 0: none).
static WRITER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The calling thread's record (const, no destructor: a signal handler or `exit` may read
    /// it, and it is never gone while its thread runs).
    static MINE: Record = const { Record::new() };
}

/// The calling thread, as a number unique among live threads (its record's address).
fn thread_mark() -> usize {
    MINE.with(|mine| std::ptr::from_ref(mine) as usize)
}

/// Whether the calling thread is doing something it recorded: `exit()` is blamed on a load
/// only when the loading thread called it.
pub(crate) fn mine() -> bool {
    MINE.with(|mine| mine.len.load(Ordering::Acquire) > 0)
}

fn store(text: &[u8]) {
    MINE.with(|mine| mine.store(text));
    WRITER.store(0, Ordering::Release);
    LAST.store(text);
    WRITER.store(
        if text.is_empty() { 0 } else { thread_mark() },
        Ordering::Release,
    );
}

/// Copies what the calling thread is doing into `out`, or else what the host last recorded
/// doing on any thread; returns how many bytes (0: nothing).
pub(crate) fn read(out: &mut [u8]) -> usize {
    match MINE.with(|mine| mine.read(out)) {
        0 => LAST.read(out),
        len => len,
    }
}

/// Records that the calling thread is `what` until the guard drops, when its previous record
/// returns (loads nest: a hook inside a load).
pub(crate) fn doing(what: String) -> Doing {
    let mut previous = vec![0; CAPACITY];
    let len = MINE.with(|mine| mine.read(&mut previous));
    previous.truncate(len);
    store(what.as_bytes());
    Doing { previous }
}

/// The stack of the thread [`on_a_thread_of_its_own`] starts: a main thread's usual limit.
const STACK: usize = 8 << 20;

/// Runs `f` on a thread started for it (named `name`, with a main thread's 8 MiB of stack),
/// recording there what the calling thread records, and waits for it; on the calling thread
/// if no thread can be started.
///
/// Why: a library's start-up code and abi_stable's checks of it run the library's code, and
/// a damaged library's code can depend on what the loading thread's stack held before it (a
/// corrupted-library corpus found one that crashed on a loading thread of `load_plugins` and
/// not on the pre-flight runner's main thread, whose stack had held other things). The host and
/// the pre-flight runner both load this way, so both run that code from the same state: a
/// fresh stack, at the same depth.
pub(crate) fn on_a_thread_of_its_own<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    let mut record = vec![0; CAPACITY];
    let len = MINE.with(|mine| mine.read(&mut record));
    record.truncate(len);
    let work = Mutex::new(Some(f));
    let run = || {
        let f = work.lock().unwrap_or_else(|p| p.into_inner()).take();
        let _same = (!record.is_empty()).then(|| doing(String::from_utf8_lossy(&record).into()));
        f.map(|f| f())
    };
    let ran = std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .stack_size(STACK)
            .spawn_scoped(scope, run)
            .ok()?;
        match thread.join() {
            Ok(ran) => ran,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    match ran {
        Some(value) => value,
        // No thread to be had: here, rather than not at all.
        None => {
            let f = work.lock().unwrap_or_else(|p| p.into_inner()).take();
            f.expect("not run: no thread started")()
        }
    }
}

/// Restores the thread's previous record when dropped.
pub(crate) struct Doing {
    previous: Vec<u8>,
}

impl Drop for Doing {
    fn drop(&mut self) {
        MINE.with(|mine| mine.store(&self.previous));
        // The process-wide record goes back only if no other thread wrote it since.
        if WRITER.load(Ordering::Acquire) == thread_mark() {
            store(&self.previous);
        }
    }
}

/// The plugins whose libraries this process mapped (never unmapped: their finalisers run at
/// its exit), in name order (loads run at once: their order says nothing).
static MAPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records that the library of plugin `name` is mapped into this process.
pub(crate) fn mapped(name: &str) {
    let mut mapped = MAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(at) = mapped.binary_search_by(|n| n.as_str().cmp(name)) {
        mapped.insert(at, name.to_owned());
    }
}

/// At exit, before the dynamic loader runs the libraries' finalisers: records that, so that a
/// crash in one names the plugins whose finalisers run (which of them, only the pre-flight can
/// tell). Nothing if no plugin library is mapped.
pub(crate) fn exiting() {
    let Ok(mapped) = MAPPED.try_lock() else {
        return;
    };
    if mapped.is_empty() {
        return;
    }
    let names: Vec<String> = mapped.iter().map(|n| format!("`{n}`")).collect();
    let text = format!(
        "the process was exiting: in a library's finaliser (in-process plugins: {}; the pre-flight, on by default, tells which)",
        names.join(", ")
    );
    WRITER.store(0, Ordering::Release);
    LAST.store(text.as_bytes());
}
