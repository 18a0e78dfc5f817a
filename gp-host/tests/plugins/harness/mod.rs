//! What the tests share, one idea a file: building the real plugins they load (`build`),
//! fixtures built against altered copies of the interface crates (`interface`), the plugins of
//! the lifecycle tests (`lifecycle`), base directories (`base`), a small HTTP server
//! (`http_server`), a child `gp` interrupted (`interrupt`) a captured host log (`log`), and what a test that needs a browser or a registry does without it (`tools`). Everything is re-exported here, so that a
//! test names `harness::...` whichever file holds it.

mod base;
mod build;
mod http_server;
mod interface;
mod interrupt;
mod lifecycle;
mod log;
mod tools;

pub use base::{
    assert_sample_serves, base_dir, base_dir_with, eventually, in_flight, wait_in_flight,
};
pub use build::{
    build_env, build_workspace, example, options, plain_cdylib, plugin_manifest, profile,
    target_dir, workspace, DEBUG_INFO,
};
pub use http_server::{http_server, Reply};
pub use interface::{custom_fixture, fixture, host_fixture, Interface};
pub use interrupt::{exit_status, gp_serve, interrupt, names, send_sigterm, temporary_file_of};
pub use lifecycle::{hook_log, install_lifecycle, lifecycle};
pub use log::{with_captured_log, Written};
pub use tools::tool_present;
