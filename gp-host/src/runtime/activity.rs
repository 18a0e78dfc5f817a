//! What the host is doing with a plugin outside a call ("loading the plugin at PATH",
//! "running plugin `x`'s on_unload"), kept where a signal handler can read it: the fatal
//! reporter names it when a library's start-up code or a hook crashes the process.
//!
//! A fixed buffer of atomics, so that writing needs no lock and reading no allocation. Best
//! effort: a reader racing a writer may see a mix of two texts.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

const CAPACITY: usize = 512;

static TEXT: [AtomicU8; CAPACITY] = [const { AtomicU8::new(0) }; CAPACITY];
static LEN: AtomicUsize = AtomicUsize::new(0);
/// Which thread wrote the record (see [`thread_mark`]; 0: none).
static WRITER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Its address tells threads apart, in a signal handler or in `exit` too (a const
    /// thread-local without a destructor: reading it never fails).
    static MARK: u8 = const { 0 };
}

/// The calling thread, as a number unique among live threads.
fn thread_mark() -> usize {
    MARK.with(|mark| std::ptr::from_ref(mark) as usize)
}

/// Whether the record was written by the calling thread: `exit()` is blamed on a load only
/// when the loading thread called it.
pub(crate) fn mine() -> bool {
    WRITER.load(Ordering::Acquire) == thread_mark()
}

fn store(text: &[u8]) {
    let len = text.len().min(CAPACITY);
    LEN.store(0, Ordering::Release);
    WRITER.store(if len == 0 { 0 } else { thread_mark() }, Ordering::Release);
    for (slot, byte) in TEXT.iter().zip(&text[..len]) {
        slot.store(*byte, Ordering::Relaxed);
    }
    LEN.store(len, Ordering::Release);
}

/// Copies what the host is doing into `out`; returns how many bytes (0: nothing).
pub(crate) fn read(out: &mut [u8]) -> usize {
    let len = LEN.load(Ordering::Acquire).min(out.len());
    for (byte, slot) in out.iter_mut().zip(&TEXT[..len]) {
        *byte = slot.load(Ordering::Relaxed);
    }
    len
}

/// Records that the host is `what` until the guard drops, when the previous record returns
/// (loads nest: a hook inside a load).
pub(crate) fn doing(what: String) -> Doing {
    let mut previous = vec![0; CAPACITY];
    let len = read(&mut previous);
    previous.truncate(len);
    store(what.as_bytes());
    Doing { previous }
}

/// Restores the previous record when dropped.
pub(crate) struct Doing {
    previous: Vec<u8>,
}

impl Drop for Doing {
    fn drop(&mut self) {
        store(&self.previous);
    }
}

/// The plugins whose libraries this process mapped (never unmapped: their finalisers run at
/// its exit), by name, in load order.
static MAPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records that the library of plugin `name` is mapped into this process.
pub(crate) fn mapped(name: &str) {
    let mut mapped = MAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if !mapped.iter().any(|n| n == name) {
        mapped.push(name.to_owned());
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
    store(text.as_bytes());
}
