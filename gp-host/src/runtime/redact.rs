//! What is scrubbed from what plugins say: each instance's secrets ([`Scrub`]), out of the
//! errors its calls and hooks return (`runtime::inprocess`) and out of every log line of its
//! plugin while it lives ([`Scrub::for_logs_of`], applied where the host's services log).
//!
//! By plugin, not by instance, for log lines: a log line reaches the host through the services
//! every instance of a build shares, and one the plugin's tracing events buffered outside a
//! call names no instance. So while two instances of a plugin live (a configuration change
//! overlapping the old one's last calls), both one's and the other's secrets are scrubbed
//! from its lines.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;

/// What replaces a secret's value in a message.
const REDACTED: &str = "[secret]";

/// The forms a configuration's secrets may take in a message, longest first: each value as it
/// is, escaped as Rust's `{:?}` prints it, and escaped as JSON (serde's messages quote strings
/// one of those ways). Cheap to clone; empty when there are no secrets.
#[derive(Clone, Default)]
pub(crate) struct Scrub(std::sync::Arc<[String]>);

impl Scrub {
    pub(crate) fn new(secrets: &[String]) -> Scrub {
        let mut forms: Vec<String> = Vec::new();
        for secret in secrets {
            let debug = format!("{secret:?}");
            let json = serde_json::to_string(secret).unwrap_or_default();
            for form in [
                secret.clone(),
                debug[1..debug.len() - 1].to_owned(),
                json.get(1..json.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_owned(),
            ] {
                if !form.is_empty() && !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
        forms.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrub(forms.into())
    }

    /// `message` with every form of every secret replaced.
    pub(crate) fn apply(&self, message: &str) -> String {
        replaced(message, self.0.iter().map(String::as_str))
    }

    /// Whether there is nothing to scrub.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Scrubs this instance's secrets from every log line of `plugin` until the returned
    /// guard is dropped; `None` when there are none.
    pub(crate) fn for_logs_of(&self, plugin: &str) -> Option<Redacting> {
        if self.is_empty() {
            return None;
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut live = LIVE.write().unwrap_or_else(|e| e.into_inner());
        live.push((id, plugin.to_owned(), self.clone()));
        LIVE_COUNT.store(live.len(), Ordering::Release);
        Some(Redacting { id })
    }
}

/// The secrets of live instances, by plugin, with the id of the guard that keeps them.
static LIVE: RwLock<Vec<(u64, String, Scrub)>> = RwLock::new(Vec::new());

/// `LIVE`'s length: no lock taken while no instance has a secret (the usual case).
static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Keeps an instance's secrets scrubbed from its plugin's log lines while it lives.
pub(crate) struct Redacting {
    id: u64,
}

impl Drop for Redacting {
    fn drop(&mut self) {
        let mut live = LIVE.write().unwrap_or_else(|e| e.into_inner());
        live.retain(|(id, _, _)| *id != self.id);
        LIVE_COUNT.store(live.len(), Ordering::Release);
    }
}

/// `message`, a log line of `plugin`, with the secrets of its live instances scrubbed.
pub(crate) fn log_line<'a>(plugin: &str, message: &'a str) -> Cow<'a, str> {
    if LIVE_COUNT.load(Ordering::Acquire) == 0 {
        return Cow::Borrowed(message);
    }
    let live = LIVE.read().unwrap_or_else(|e| e.into_inner());
    // Every live instance's forms together, longest first: a secret of one instance that
    // starts with another's (a rotated token) is replaced whole.
    let mut forms: Vec<&str> = live
        .iter()
        .filter(|(_, p, _)| p == plugin)
        .flat_map(|(_, _, scrub)| scrub.0.iter().map(String::as_str))
        .collect();
    if forms.is_empty() {
        return Cow::Borrowed(message);
    }
    // Equal forms end up side by side, for `dedup`.
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    forms.dedup();
    Cow::Owned(replaced(message, forms))
}

/// `message` with each of `forms` (longest first, so that none leaves a longer one's tail)
/// replaced, in that order.
fn replaced<'a>(message: &str, forms: impl IntoIterator<Item = &'a str>) -> String {
    let mut message = message.to_owned();
    for form in forms {
        message = message.replace(form, REDACTED);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::{log_line, Scrub};

    #[test]
    fn a_plugins_log_lines_lose_its_live_instances_secrets_and_only_its() {
        let scrub = Scrub::new(&["hunter2".to_owned()]);
        let line = "logged hunter2 and \"hunter2\"";
        {
            let _guard = scrub.for_logs_of("redact-test-a");
            assert_eq!(
                log_line("redact-test-a", line),
                "logged [secret] and \"[secret]\""
            );
            assert_eq!(
                log_line("redact-test-b", line),
                line,
                "another plugin's line"
            );
        }
        assert_eq!(
            log_line("redact-test-a", line),
            line,
            "the instance is gone"
        );
        assert!(Scrub::new(&[]).for_logs_of("redact-test-a").is_none());
    }

    #[test]
    fn two_instances_secrets_are_replaced_longest_first() {
        let old = Scrub::new(&["token-1".to_owned()]);
        let new = Scrub::new(&["token-1-rotated".to_owned()]);
        let _old = old.for_logs_of("redact-test-c");
        let _new = new.for_logs_of("redact-test-c");
        assert_eq!(
            log_line("redact-test-c", "using token-1-rotated"),
            "using [secret]"
        );
    }
}
