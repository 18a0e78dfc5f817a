//! A request's id: the client's `x-request-id` when it is a sensible one, else one of this
//! process's, `{prefix:08x}-{n:08x}`.

use std::sync::atomic::Ordering;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::Shared;

/// The header's name, made once: a `&str` name is parsed again at every use.
pub(super) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's id: the client's `x-request-id` value, shared rather than copied, or one of
/// this process's, kept inline (cloned as bytes, made into a header value once, for the
/// response).
#[derive(Clone)]
pub(crate) enum RequestId {
    /// The client's.
    Given(HeaderValue),
    /// This process's: `text[..len]`, ASCII hex digits and a dash.
    Ours { text: [u8; OURS], len: u8 },
}

/// The longest id of this process's: `{prefix:08x}-{n:016x}`.
const OURS: usize = 8 + 1 + 16;

impl RequestId {
    /// The id as text (it is ASCII by construction).
    pub(super) fn as_str(&self) -> &str {
        match self {
            RequestId::Given(value) => value.to_str().unwrap_or_default(),
            RequestId::Ours { text, len } => {
                std::str::from_utf8(&text[..usize::from(*len)]).unwrap_or_default()
            }
        }
    }

    /// The id's bytes: [`as_str`](Self::as_str)'s, without checking them again.
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            RequestId::Given(value) => value.as_bytes(),
            RequestId::Ours { text, len } => &text[..usize::from(*len)],
        }
    }

    /// The id as a header value.
    pub(super) fn header(&self) -> HeaderValue {
        match self {
            RequestId::Given(value) => value.clone(),
            RequestId::Ours { text, len } => HeaderValue::from_bytes(&text[..usize::from(*len)])
                .expect("hex digits and a dash are a header value"),
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Shared {
    /// The request's id: the client's `x-request-id` if it is a sensible one, else one of
    /// this process's.
    pub(super) fn request_id(&self, headers: &HeaderMap) -> RequestId {
        let given = headers.get(&X_REQUEST_ID).filter(|v| {
            (1..=128).contains(&v.len())
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        });
        if let Some(id) = given {
            return RequestId::Given(id.clone());
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        // `{prefix:08x}-{n:08x}`, wider when `n` outgrows 32 bits.
        let mut text = [0u8; OURS];
        hex(u64::from(self.id_prefix), 8, &mut text[..8]);
        text[8] = b'-';
        let digits = (16 - (n.leading_zeros() as usize) / 4).max(8);
        hex(n, digits, &mut text[9..9 + digits]);
        RequestId::Ours {
            text,
            len: (9 + digits) as u8,
        }
    }
}

/// Writes the low `digits` hex digits of `n` into `out`, most significant first.
fn hex(mut n: u64, digits: usize, out: &mut [u8]) {
    for slot in out[..digits].iter_mut().rev() {
        *slot = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
    }
}

/// Distinguishes this process's request ids from another's (or a restart's).
pub(super) fn id_prefix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (nanos as u32) ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn hex_digits_are_written_most_significant_first() {
        let mut out = [0u8; 16];
        hex(0xab, 8, &mut out);
        assert_eq!(&out[..8], b"000000ab");
        hex(0x1_2345_6789, 9, &mut out);
        assert_eq!(&out[..9], b"123456789");
    }
}
