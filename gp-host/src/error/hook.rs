//! [`Hook`]: which lifecycle hook an error is about, and the short durations hook messages
//! show.

use std::time::Duration;

/// A plugin's lifecycle hook, as errors and reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// `#[on_load]`: runs before the version serves; an error refuses the load.
    OnLoad,
    /// `#[on_unload]`: runs when the version's last call has returned.
    OnUnload,
}

impl Hook {
    /// `on_load`, `on_unload`: the name the plugin's attribute has.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::OnLoad => "on_load",
            Hook::OnUnload => "on_unload",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `1.5s`, `200ms`: a duration as messages show it.
pub(super) fn humantime_short(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
