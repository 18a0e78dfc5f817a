//! Standard output for every command. `println!` panics when the reader has gone
//! (`gp search | head -1`: "failed printing to stdout: Broken pipe"); `out!` and `outln!`
//! return [`Failure::Closed`] instead, which the command passes up with `?` like any other
//! failure, so that its destructors run (an isolated runner is stopped, its copy removed) and
//! `main` exits quietly.
//!
//! Why not restore SIGPIPE's default action, as C programs have it: the process would then
//! die at the first write to *any* closed pipe or socket, and gp writes to sockets that close
//! under it as a matter of course (a runner that crashed, an HTTP client that went away).

use std::io::Write;

use crate::failure::Failure;

/// Writes to standard output like `print!`; `Err(Failure::Closed)` once nobody reads it.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// Writes a line to standard output like `println!`; `Err(Failure::Closed)` once nobody
/// reads it.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes `text` to standard output (see the module documentation).
pub fn write(text: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    std::io::stdout().lock().write_fmt(text).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::unusable("standard output", format!("cannot write to it: {e}"))
        }
    })
}
