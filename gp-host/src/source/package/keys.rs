//! Signing keys: an ed25519 public key a host trusts, and the secret key `gp keygen` writes
//! and `gp pack --key` signs with.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;

use super::Refusal;
use crate::error::Error;

/// An ed25519 public key, written as 44 characters of base64.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads a key from its text (base64), or from a file that holds that text.
    pub fn from_text_or_file(text_or_path: &str) -> Result<PublicKey, Error> {
        let path = Path::new(text_or_path);
        let text = if path.is_file() {
            std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?
        } else {
            text_or_path.to_owned()
        };
        PublicKey::parse(text.trim()).map_err(|refusal| refusal.of_key(text_or_path))
    }

    /// Whether `signature` is this key's signature of `message`.
    pub(super) fn verifies(&self, message: &[u8], signature: &ed25519_dalek::Signature) -> bool {
        ed25519_dalek::Verifier::verify(&self.0, message, signature).is_ok()
    }

    fn parse(text: &str) -> Result<PublicKey, Refusal> {
        let bytes = decode_32(text)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| refused!(e => "not an ed25519 public key ({e})"))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// An ed25519 signing key. Its file holds the 32-byte seed in base64; keep it private.
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A new random key, from the operating system's generator.
    pub fn generate() -> Result<SecretKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| refused!(e => "{e}").of_key("the operating system's random generator"))?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a key file written by [`write`](Self::write) (`gp keygen`).
    pub fn read(path: &Path) -> Result<SecretKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let seed =
            decode_32(text.trim()).map_err(|refusal| refusal.of_key(path.display().to_string()))?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Writes the key to `path` (readable by its owner only, on Unix), refusing to overwrite.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        let text = base64::engine::general_purpose::STANDARD.encode(self.0.to_bytes());
        writeln!(file, "{text}").map_err(|e| Error::io(path, e))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`.
    pub(super) fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        ed25519_dalek::Signer::sign(&self.0, message)
    }
}

fn decode_32(text: &str) -> Result<[u8; 32], Refusal> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| refused!(e => "not base64 ({e})"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| refused!("{} bytes, expected 32", bytes.len()))
}
