//! Saying which plugin took the process down: a reporter for the faults an in-process host
//! cannot survive (a segfault, an abort, an illegal instruction, `exit()` in a plugin). It
//! prints one line naming the plugin being called, or the plugin folder being loaded, then
//! lets the fault run its course (the previous handler, or the default action).
//!
//! Install it before any plugin is loaded (the `gp` binary does, first thing in `main`): a
//! crash inside `dlopen` (a library's start-up code, a constructor, a relocation the loader
//! trips on) is then named by the load in progress, and so is `exit()` from start-up code.
//! What it cannot name: a process the dynamic loader ends itself (an `ld.so` assertion
//! prints its own line and exits 127 without running handlers), `SIGKILL`, and a finaliser
//! that crashes after `main` returned (no load or call is in progress by then); the
//! pre-flight catches those before the library reaches the process.
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
    use std::sync::OnceLock;

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

    /// The actions that were in place before ours, by signal number (to chain to). Set
    /// once, in full, before the first of our handlers is installed, and never changed
    /// after: the handler reads it without a lock (`OnceLock::get` is an atomic load).
    static PREVIOUS: OnceLock<[Option<libc::sigaction>; 32]> = OnceLock::new();
    /// Set once a report was written: one line per process, even if handlers re-enter.
    static REPORTED: AtomicBool = AtomicBool::new(false);

    pub(super) fn install() {
        // First read every previous action, then install: a signal delivered while our
        // handlers go in finds `PREVIOUS` complete, never half-written.
        let mut previous: [Option<libc::sigaction>; 32] = [None; 32];
        for (signal, _) in SIGNALS {
            // SAFETY: `sigaction` with a null new action only reads the current one into a
            // zeroed `sigaction` we own.
            unsafe {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut current) == 0 {
                    previous[signal as usize] = Some(current);
                }
            }
        }
        if PREVIOUS.set(previous).is_err() {
            return; // installed already (`install` runs under `Once`, so never)
        }
        for (signal, _) in SIGNALS {
            // SAFETY: `sigaction` with a zeroed, then filled, struct: the handler is an
            // `extern "C"` function with the `SA_SIGINFO` signature; SA_ONSTACK so that a
            // stack overflow (which std catches on an alternate stack) can still run it.
            // `PREVIOUS` was set in full above, before this handler can run.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
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
        let previous = PREVIOUS
            .get()
            .and_then(|p| p.get(signal as usize).copied().flatten());
        // SAFETY: `previous` is an action the kernel gave us for this signal (or none: the
        // default); `sigaction`, `signal` and `raise` are async-signal-safe; `info` is the
        // kernel's, valid for the handler's run.
        unsafe {
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
            return;
        }
        // `exit()` from a library's start-up code, a static's constructor, or an abort path
        // that exits (abi_stable's): named by the load the exiting thread was doing.
        let mut doing = [0u8; 512];
        let doing_len = activity::read(&mut doing);
        if doing_len > 0 && activity::mine() && !REPORTED.swap(true, Ordering::Relaxed) {
            let mut line = Line::new();
            line.push(b"gp: the process ended (exit() was called) while ")
                .push(&doing[..doing_len])
                .push(b"; the exit status is the plugin's\n");
            write_line(&line);
            return;
        }
        // The libraries' finalisers run after this handler (the loader registered its own
        // first): a crash in one is named by what is mapped.
        activity::exiting();
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn install() {}
}
