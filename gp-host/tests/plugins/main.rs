//! Integration tests on real plugins: built from source with cargo, installed into temporary
//! base directories, loaded and called.

mod harness;

mod accepted;
mod admin;
mod api_shapes;
mod call_cli;
mod calls;
mod cli;
mod collect;
mod context_table;
mod devloop;
mod distribution;
mod faults;
mod fleet;
mod gui;
mod http;
mod hub;
mod isolation;
mod lifecycle;
mod loading;
mod metadata;
mod metrics;
mod newcomer;
mod plugin_logs;
mod reclaim;
mod rejects;
mod shutdown;
mod typed;
mod watching;
mod web_fixture;
