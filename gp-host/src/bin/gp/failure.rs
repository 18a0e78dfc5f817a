//! What a `gp` command reports when it fails: gp-host's errors as they are, and the command's
//! own, which are not gp-host's to name (a command line it cannot act on, a file or an
//! address it cannot use).

/// A command's failure, printed as `error: <it>`.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// gp-host's error, as it is.
    #[error(transparent)]
    Gp(#[from] gp_host::Error),
    /// A command line gp cannot act on, and what to give instead.
    #[error("gp: {0}")]
    Usage(String),
    /// A file, folder or address the command cannot use, and why.
    #[error("{what}: {reason}")]
    Unusable {
        /// The file, folder or address.
        what: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Standard output was closed by its reader (`gp search | head -1`): nothing is printed,
    /// and gp exits with [`CLOSED_EXIT_CODE`].
    #[error("standard output was closed")]
    Closed,
}

/// The exit code of a command whose standard output was closed under it: 141, the status a
/// shell reports for a program killed by SIGPIPE (128 + 13), as `seq 1 100000 | head -1`'s
/// `seq` is. Not 0: the command stopped before it was done, and a script running with
/// `set -o pipefail` sees the same as with coreutils.
pub const CLOSED_EXIT_CODE: u8 = 141;

impl Failure {
    /// A command line gp cannot act on.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    /// A file, folder or address (`what`, as the message shows it) the command cannot use.
    pub fn unusable(what: impl std::fmt::Display, reason: impl Into<String>) -> Failure {
        Failure::Unusable {
            what: what.to_string(),
            reason: reason.into(),
        }
    }
}
