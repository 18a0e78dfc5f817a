use std::fmt;

/// The error a plugin returns: a message for the host (and whoever called it).
///
/// Any `std::error::Error` converts into it with `?`, keeping its chain of causes in the
/// message; [`Error::msg`] and [`bail!`](crate::bail) make one from text.
pub struct Error {
    message: String,
}

/// `Result<T, gp_sdk::Error>`, with `T = ()` by default: the usual return type of an entry.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string(),
        }
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
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error { message }
    }
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
