//! Packages on real plugins: packing, verifying, loading, and every hostile package refused
//! with its message, leaving nothing behind and the registry as it was.
//!
//! This file holds what the tests share: the `dispatch` plugin folder they pack, and the
//! SHA-256 a package is named by.

mod git;
mod hostile;
mod install;
mod interrupted;
mod packages;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::harness::{base_dir, example};

/// A plugin folder holding `dispatch`, built from source, outside any base directory.
fn dispatch_folder() -> (tempfile::TempDir, PathBuf) {
    let staging = base_dir();
    gp_host::build::install_library(example("dispatch"), staging.path()).unwrap();
    let dir = staging.path().join("dispatch");
    (staging, dir)
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
