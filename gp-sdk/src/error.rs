use std::fmt;

/// The error a plugin returns: a message for the host (and whoever called it).
///
/// Any `std::error::Error` converts into it with `?`, keeping its chain of causes in the
/// message; [`Error::msg`] and [`bail!`](crate::bail) make one from text.
pub struct Error {
    message: String,
    /// The HTTP status a typed route answers with when its handler returns this error.
    status: Option<u16>,
}

/// `Result<T, gp_sdk::Error>`, with `T = ()` by default: the usual return type of an entry.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string(),
            status: None,
        }
    }

    /// An error a typed route answers with `status` (400–599; anything else is 500) and
    /// `{"error": message}`: `Err(Error::with_status(404, format!("no item {id}")))`.
    ///
    /// Outside a typed route (an entry's own error, a label's), the status is ignored and the
    /// message is the call's error, as with [`Error::msg`].
    pub fn with_status(status: u16, message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string(),
            status: Some(status).filter(|s| (400..=599).contains(s)),
        }
    }

    /// The status given with [`Error::with_status`], if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The error a plugin returns when it notices that its call was cancelled; the host then
    /// reports the call as cancelled (or as past its deadline).
    pub fn cancelled() -> Error {
        Error::msg("call cancelled")
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Error {
        Error::msg(chain(&error))
    }
}

/// `error`'s message followed by those of its causes, each after `: `.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}
