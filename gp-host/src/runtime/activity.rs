//! What the host is doing with a plugin outside a call ("loading the plugin at PATH",
//! "running plugin `x`'s on_unload"), kept where a signal handler can read it: the fatal
//! reporter names it when a library's start-up code or a hook crashes the process.
//!
//! A fixed buffer of atomics, so that writing needs no lock and reading no allocation. Best
//! effort: a reader racing a writer may see a mix of two texts.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

const CAPACITY: usize = 512;

static TEXT: [AtomicU8; CAPACITY] = [const { AtomicU8::new(0) }; CAPACITY];
static LEN: AtomicUsize = AtomicUsize::new(0);

fn store(text: &[u8]) {
    let len = text.len().min(CAPACITY);
    LEN.store(0, Ordering::Release);
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
