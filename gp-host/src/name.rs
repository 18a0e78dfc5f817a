//! [`PluginName`]: a plugin's name, checked once, before it touches a path.
//!
//! A name arrives from a manifest (checked when it is read), and also from a URL, a disabled
//! marker, a registry or a command line. Each of those is checked here, with the manifest's
//! own rule, before it is joined to a folder: `../../etc` is never a plugin name.

use std::fmt;
use std::ops::Deref;

use crate::error::Error;

/// A plugin's name: 1 to 64 ASCII letters, digits, `-` or `_`, starting with a letter (the
/// rule of [`gp_core::manifest::validate_name`]), so it is also a safe file name, URL path
/// segment and metrics label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName(String);

impl PluginName {
    /// `name`, if it is a valid plugin name; [`Error::InvalidName`] otherwise.
    pub fn new(name: impl Into<String>) -> Result<PluginName, Error> {
        let name = name.into();
        match gp_core::manifest::validate_name(&name) {
            Ok(()) => Ok(PluginName(name)),
            Err(reason) => Err(Error::InvalidName {
                name,
                reason: reason.to_string(),
            }),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for PluginName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PluginName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PluginName {
    type Err = Error;

    fn from_str(name: &str) -> Result<PluginName, Error> {
        PluginName::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::PluginName;

    #[test]
    fn a_path_is_not_a_name() {
        for bad in ["../evil", "..", "a/b", "", ".hidden", "a b", "a\\b", "1abc"] {
            let error = PluginName::new(bad).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("invalid plugin name {bad:?}: use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter"),
            );
        }
        assert_eq!(PluginName::new("web-v1_2").unwrap().as_str(), "web-v1_2");
    }
}
