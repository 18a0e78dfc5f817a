//! Saying which plugin took the process down: a reporter for the faults an in-process host
//! cannot survive (a segfault, an abort, an illegal instruction, `exit()` in a plugin). It
//! prints one line naming the plugin being called, or the plugin folder being loaded, then
//! lets the fault run its course (the previous handler, or the default action).
//!
//! Opt-in ([`install`]; the `gp` binary installs it): an application may have fault handlers
//! of its own (a JVM, a wasm runtime), and ours runs first only after being installed after
//! theirs. Best effort by design: the handler reads a thread-local, a hazard pointer and the
//! `activity` record, and writes to stderr with `write(2)`, which is all a signal handler
//! may do; a version freed under it is not possible (a call's hazard keeps it alive), an
//! activity record rewritten under it may print garbled.

use std::sync::Once;

use crate::runtime::{activity, rcu};

/// Installs the reporter for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT, and for `exit()`
/// called during a plugin call. Once per process; later calls do nothing. Linux only (a no-op
/// elsewhere).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(imp::install);
}

/// A fixed buffer the handler formats into: no allocation.
struct Line {
    bytes: [u8; 1024],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            bytes: [0; 1024],
            len: 0,
        }
    }

    fn push(&mut self, part: &[u8]) -> &mut Line {
        let n = part.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&part[..n]);
        self.len += n;
        self
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{activity, rcu, Line};

    const SIGNALS: [(libc::c_int, &[u8]); 5] = [
        (libc::SIGSEGV, b"SIGSEGV (invalid memory access)"),
        (libc::SIGBUS, b"SIGBUS (bus error)"),
        (libc::SIGILL, b"SIGILL (illegal instruction)"),
        (libc::SIGFPE, b"SIGFPE (arithmetic fault)"),
        (
            libc::SIGABRT,
            b"SIGABRT (abort: a double panic, a failed assertion in C code, or abort())",
        ),
    ];

    /// The handlers that were installed before ours, by signal number (to chain to).
    static mut PREVIOUS: [Option<libc::sigaction>; 32] = [None; 32];
    /// Set once a report was written: one line per process, even if handlers re-enter.
    static REPORTED: AtomicBool = AtomicBool::new(false);

    pub(super) fn install() {
        for (signal, _) in SIGNALS {
            // SAFETY: `sigaction` with a zeroed, then filled, struct: the handler is an
            // `extern "C"` function with the `SA_SIGINFO` signature; SA_ONSTACK so that a
            // stack overflow (which std catches on an alternate stack) can still run it.
            // `PREVIOUS` is written here, once (under `Once`), before the handler can run.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut previous) == 0 {
                    (*std::ptr::addr_of_mut!(PREVIOUS))[signal as usize] = Some(previous);
                }
            }
        }
        // SAFETY: registers a plain `extern "C" fn()`; it only reads and writes as the
        // signal handler does.
        unsafe {
            libc::atexit(at_exit);
        }
    }

    fn write_line(line: &Line) {
        // SAFETY: write(2) on stderr with a buffer and its length: async-signal-safe.
        unsafe {
            libc::write(2, line.bytes.as_ptr().cast(), line.len);
        }
    }

    extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        let name = SIGNALS
            .iter()
            .find(|(s, _)| *s == signal)
            .map_or(&b"a fatal signal"[..], |(_, n)| n);
        if !REPORTED.swap(true, Ordering::Relaxed) {
            let mut line = Line::new();
            let mut doing = [0u8; 512];
            let doing_len = activity::read(&mut doing);
            if let Some(plugin) = rcu::current_plugin_name() {
                line.push(b"gp: fatal signal ")
                    .push(name)
                    .push(b" while plugin `")
                    .push(plugin)
                    .push(b"` was running (a call or a hook); an in-process host cannot survive this\n");
                write_line(&line);
            } else if doing_len > 0 {
                line.push(b"gp: fatal signal ")
                    .push(name)
                    .push(b" while ")
                    .push(&doing[..doing_len])
                    .push(b"; an in-process host cannot survive this\n");
                write_line(&line);
            }
        }
        // Chain: put the previous action back, then let the fault happen again under it. A
        // fault raised by the CPU re-executes when the handler returns; one sent (abort,
        // kill) must be raised again.
        // SAFETY: `PREVIOUS` was written before this handler was installed and is only read
        // here; `sigaction` and `raise` are async-signal-safe; `info` is the kernel's.
        unsafe {
            let previous = (*std::ptr::addr_of!(PREVIOUS))
                .get(signal as usize)
                .copied()
                .flatten();
            match previous {
                Some(previous) => libc::sigaction(signal, &previous, std::ptr::null_mut()),
                None => libc::signal(signal, libc::SIG_DFL) as libc::c_int,
            };
            let sent = info.is_null() || (*info).si_code <= 0;
            if sent || signal == libc::SIGABRT {
                libc::raise(signal);
            }
        }
    }

    extern "C" fn at_exit() {
        if let Some(plugin) = rcu::current_plugin_name() {
            if !REPORTED.swap(true, Ordering::Relaxed) {
                let mut line = Line::new();
                line.push(b"gp: plugin `")
                    .push(plugin)
                    .push(b"` ended the process: it called exit() during a call (the exit status is the plugin's)\n");
                write_line(&line);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn install() {}
}
