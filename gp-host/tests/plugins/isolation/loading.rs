//! Loading through a runner: a library that crashes while loading is refused by name (with the
//! pre-flight, before it reaches the host process), and a program that is not a runner is
//! refused with what to do.

use gp_host::isolation::Isolation;
use gp_host::Manager;

use super::{isolation, unruly};
use crate::harness::{base_dir, example};

#[test]
fn a_crash_while_loading_refuses_that_plugin_only() {
    let crashes = crate::faults::crash_on_load();
    let base = base_dir();
    gp_host::build::install_library(crashes, base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path()).isolation(isolation()).build();
    let report = manager.load_plugins();
    assert_eq!(report.loaded.len(), 1, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let error = report.failed[0].error.to_string();
    assert_eq!(
        error,
        "plugin `crash-on-load`: its runner died while loading it (killed by signal 11 (SIGSEGV))"
    );
    crate::harness::assert_sample_serves(&manager);
}

#[test]
fn a_program_that_is_not_a_runner_is_refused_with_what_to_do() {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .isolation(Isolation::all().program("/bin/true"))
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(
        report.failed[0].error.to_string(),
        "plugin `sample`: its runner /bin/true exited without answering (exited with status 0): a program that isolates plugins calls gp_host::isolation::run_if_runner() first in main, or names a runner with Isolation::program"
    );
}

/// Byte ranges of the sections the dynamic loader and abi_stable's checks read: damage there
/// can crash the loader; damage elsewhere (debug info, most code) usually goes unnoticed.
fn loader_ranges(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(data).unwrap();
    [
        ".dynamic",
        ".rela.dyn",
        ".dynsym",
        ".dynstr",
        ".gnu.hash",
        ".init_array",
        ".data.rel.ro",
        ".got",
    ]
    .iter()
    .filter_map(|name| file.section_by_name(name))
    .filter_map(|section| section.file_range())
    .map(|(offset, size)| offset as usize..(offset + size) as usize)
    .filter(|range| !range.is_empty())
    .collect()
}

/// A copy of `data` damaged in its loader-read sections, the same for the same `seed`: 16 bits
/// flipped, or a run of 64 bytes overwritten.
fn corrupted(data: &[u8], ranges: &[std::ops::Range<usize>], seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut copy = data.to_vec();
    let range = &ranges[next() as usize % ranges.len()];
    let at = |n: u64| range.start + n as usize % range.len();
    if seed % 2 == 0 {
        for _ in 0..16 {
            let byte = at(next());
            copy[byte] ^= 1 << (next() % 8);
        }
    } else {
        let start = at(next());
        for byte in &mut copy[start..(start + 64).min(range.end)] {
            *byte = next() as u8;
        }
    }
    copy
}

/// `gp list` on a base dir holding `sample` and `library` as plugin `unruly`: how it ended.
fn list_with(library: &[u8], extra: &[&str]) -> std::process::Output {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let dir = base.path().join("unruly");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("libunruly.so"), library).unwrap();
    let info = gp_host::inspect(unruly()).unwrap();
    std::fs::write(dir.join("plugin.json"), info.plugin_json().to_json_pretty()).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("list")
        .args(extra)
        .arg(base.path())
        .env_remove("GP_LOG")
        .output()
        .unwrap()
}

#[test]
fn with_preflight_a_library_that_crashes_the_loader_is_refused_and_the_others_load() {
    // A library whose start-up code crashes, every time: refused by name, sample loads.
    let crashes = crate::faults::crash_on_load();
    let base = base_dir();
    gp_host::build::install_library(crashes, base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .preflight(true)
        .isolation(Isolation::default().program(env!("CARGO_BIN_EXE_gp")))
        .build();
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(
        report.failed[0].error.to_string(),
        "plugin `crash-on-load`: pre-flight: its runner died while loading it (killed by signal 11 (SIGSEGV)); it was not loaded into this process"
    );
    crate::harness::assert_sample_serves(&manager);
    // The verdict is kept: loading again does not start another runner, and says the same.
    let again = manager.load_plugins();
    assert_eq!(
        again.failed[0].error.to_string(),
        report.failed[0].error.to_string()
    );

    // Generated damage in the sections the loader reads, through `gp list` (pre-flight on by
    // default). With it, `gp` survives every copy; without it, some copies kill it.
    let data = std::fs::read(unruly()).unwrap();
    let ranges = loader_ranges(&data);
    assert!(ranges.len() >= 5, "{ranges:?}");
    let (mut refused_by_preflight, mut killed_without) = (0, 0);
    for seed in 1..=16u64 {
        let library = corrupted(&data, &ranges, seed);
        let output = list_with(&library, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.code().is_some(),
            "seed {seed}: gp died ({:?}) with the pre-flight on:\n{stdout}\n{stderr}",
            output.status
        );
        assert!(stdout.contains("sample"), "seed {seed}: {stdout}");
        if stdout.contains("pre-flight: its runner died while loading it") {
            refused_by_preflight += 1;
        }
        if list_with(&library, &["--no-preflight"])
            .status
            .code()
            .is_none()
        {
            killed_without += 1;
        }
    }
    eprintln!(
        "16 damaged copies: {refused_by_preflight} refused by the pre-flight; without it, {killed_without} killed gp"
    );
}
