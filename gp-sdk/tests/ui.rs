//! Every compile-time misuse of `#[plugin_entry]`, `#[on_load]` and `#[on_unload]`, pinned with
//! the message the author sees.
//!
//! Each file under `ui/` is a crate root of its own (a plugin has one entry per crate). To
//! update the expected output after changing a message, run
//! `TRYBUILD=overwrite cargo test -p gp-sdk --test ui` and review the `.stderr` diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
