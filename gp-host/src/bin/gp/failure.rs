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
}

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
