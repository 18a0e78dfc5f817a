//! [`AdminToken`]: the management API's bearer token, made, read, written and compared in
//! constant time; never printed (logs name it by a hash prefix).

use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::Error;

/// Text that cannot be an [`AdminToken`]: too short, or with spaces or control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an admin token is at least 16 characters, without spaces")]
pub struct InvalidToken;

/// A bearer token for the management API.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken({})", self.id())
    }
}

impl AdminToken {
    /// A new random token: 32 bytes from the operating system, in hex.
    pub fn generate() -> AdminToken {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        AdminToken(crate::util::hex(&bytes))
    }

    /// A token given as text (from a file or an environment variable); surrounding
    /// whitespace is dropped. At least 16 characters.
    pub fn new(text: &str) -> Result<AdminToken, InvalidToken> {
        let text = text.trim();
        if text.len() < 16 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidToken);
        }
        Ok(AdminToken(text.to_owned()))
    }

    /// Reads a token from the file `path` (the whole file, trimmed).
    pub fn from_file(path: &Path) -> Result<AdminToken, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        AdminToken::new(&text).map_err(|invalid| Error::io(path, std::io::Error::other(invalid)))
    }

    /// Writes the token to `path`, readable and writable by its owner only (mode 0600).
    pub fn write_to(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        crate::util::write_atomically(path, |tmp| {
            std::fs::write(tmp, format!("{}\n", self.0))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        })
    }

    /// The token's text, to send as `Authorization: Bearer <token>`.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// A name for the token in logs: the first 8 hex digits of its SHA-256 (never the token).
    pub fn id(&self) -> String {
        crate::util::sha256_hex(self.0.as_bytes())[..8].to_owned()
    }

    /// Whether `offered` is this token, compared in constant time.
    pub(super) fn matches(&self, offered: &str) -> bool {
        self.0.as_bytes().ct_eq(offered.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::AdminToken;

    #[test]
    fn tokens_are_long_and_their_id_is_not_the_token() {
        assert!(AdminToken::new("short").is_err());
        let token = AdminToken::generate();
        assert_eq!(token.secret().len(), 64);
        assert!(!token.secret().starts_with(&token.id()));
        assert!(token.matches(token.secret()) && !token.matches("x"));
    }
}
