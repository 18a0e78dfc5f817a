//! A request's path parameters, as the route table matched them: offsets into the request's
//! path, decoded when a call reads them.

use std::borrow::Cow;

use super::RouteEntry;

/// A request's path parameters as its route matched them: which of the route's parameters
/// each is, and where its value is in the path. Routing copies nothing; a value is
/// percent-decoded when a call reads it ([`Params::iter`]).
#[derive(Debug, Default)]
pub(crate) struct Params {
    found: smallvec::SmallVec<[Param; 4]>,
    /// Values the matcher handed back from outside the path (none, with matchit 0.8, whose
    /// values borrow the path), copied.
    copied: Vec<String>,
}

/// One parameter: its place in [`RouteEntry::params`] and bytes `start..end` of the path
/// (`start == u32::MAX`: `end` is its place in [`Params::copied`]). 12 bytes, since the
/// request's future carries them.
#[derive(Debug, Clone, Copy)]
struct Param {
    name: u32,
    start: u32,
    end: u32,
}

impl Params {
    pub(super) fn found(
        entry: &RouteEntry,
        path: &str,
        matched: &matchit::Params<'_, '_>,
    ) -> Params {
        let base = path.as_ptr() as usize;
        let mut params = Params::default();
        for (name, raw) in matched.iter() {
            let Some(index) = entry.params.iter().position(|n| n == name) else {
                continue;
            };
            let start = (raw.as_ptr() as usize).wrapping_sub(base);
            let end = start.wrapping_add(raw.len());
            let within = path
                .get(start..end)
                .is_some_and(|within| std::ptr::eq(within, raw));
            let (start, end) = match (u32::try_from(start), u32::try_from(end)) {
                (Ok(start), Ok(end)) if within && start != u32::MAX => (start, end),
                _ => {
                    params.copied.push(raw.to_owned());
                    (u32::MAX, (params.copied.len() - 1) as u32)
                }
            };
            params.found.push(Param {
                name: index as u32,
                start,
                end,
            });
        }
        params
    }

    /// Each parameter's name and its value, percent-decoded, in the route's order: `entry`
    /// is the route and `path` the request's path, as matched.
    pub(crate) fn iter<'a>(
        &'a self,
        entry: &'a RouteEntry,
        path: &'a str,
    ) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + 'a {
        self.found.iter().map(move |param| {
            let raw = if param.start == u32::MAX {
                self.copied[param.end as usize].as_str()
            } else {
                path.get(param.start as usize..param.end as usize)
                    .unwrap_or_default()
            };
            (entry.params[param.name as usize].as_str(), decode(raw))
        })
    }
}

/// A path parameter percent-decoded (borrowed unless it had escapes).
pub(super) fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.as_bytes().contains(&b'%') {
        // Nothing to decode (most values): spares the decoder's pass and its UTF-8 check.
        return Cow::Borrowed(raw);
    }
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
}
