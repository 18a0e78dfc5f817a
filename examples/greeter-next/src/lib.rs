//! The next release of `greeter`: the same plugin (named `greeter`), version 2.0.0.

#[path = "../../greeter/src/plugin.rs"]
mod plugin;
