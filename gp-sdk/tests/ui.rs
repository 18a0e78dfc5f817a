//! Every compile-time misuse of `#[plugin_entry]`, `#[on_load]` and `#[on_unload]`, pinned with
//! the message the author sees.
//!
//! The accepted forms (`tests/accepted/`) are built as real plugins, loaded and called by
//! gp-host's `plugins` test (`accepted.rs`), not here: one trybuild `pass` case makes trybuild
//! build, rather than check, every case, one cargo invocation at a time.
//!
//! Each file under `ui/` is a crate root of its own (a plugin has one entry per crate). To
//! update the expected output after changing a message, run
//! `TRYBUILD=overwrite cargo test -p gp-sdk --test ui` and review the `.stderr` diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
