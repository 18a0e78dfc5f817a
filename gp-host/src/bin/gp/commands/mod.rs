//! The subcommands of `gp`, one module each: its arguments (`Args`) and what it does (`exec`).

pub mod build;
pub mod call;
pub mod gc;
pub mod hub;
pub mod inspect;
pub mod install;
pub mod keygen;
pub mod list;
pub mod manifest;
pub mod new;
pub mod pack;
pub mod serve;
pub mod serve_config;
pub mod serve_load;
pub mod serve_start;
pub mod serve_stop;
pub mod shared;
pub mod stats;
pub mod verify;
