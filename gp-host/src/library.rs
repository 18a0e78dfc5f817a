//! Reading and loading plugin libraries.
//!
//! A library is read with an object-file parser first ([`inspect`]): the file must be a
//! complete shared library for this platform (a truncated one can kill the process with
//! SIGBUS inside `dlopen`), export abi_stable's root-module symbol, and embed a valid gp
//! manifest built against a compatible `gp-core`. Only then is it handed to the dynamic
//! loader ([`load`]), through abi_stable, which checks the version and the layout of every
//! type the plugin shares with the host before anything is called.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use gp_core::manifest::{Details, Embedded, Manifest, Source, SourceMode};
use gp_core::PluginModRef;
use object::{Object, ObjectSection, ObjectSegment};

use crate::Error;

/// What a library file says about itself, read without loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LibraryInfo {
    /// The library file.
    pub path: PathBuf,
    /// The `gp-core` version the plugin was built against.
    pub abi_version: String,
    /// The manifest embedded by `#[plugin_entry]` (without `source`).
    pub manifest: Manifest,
    /// What `#[plugin]` recorded about the handlers beside the manifest (which are async);
    /// the default for a library without the section.
    pub details: Details,
}

impl LibraryInfo {
    /// The `plugin.json` that matches this library when placed beside it: the embedded
    /// manifest with `source` set to the library's file name.
    pub fn plugin_json(&self) -> Manifest {
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Manifest {
            source: Some(Source {
                mode: SourceMode::LocalSo,
                path: file_name,
            }),
            ..self.manifest.clone()
        }
    }
}

/// Where a plugin's configuration is, as `gp inspect` says it.
const CONFIG_FILES: &str =
    "config.json beside plugin.json (or <name>.config.json beside a package)";

impl fmt::Display for LibraryInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "name:        {}", m.name)?;
        writeln!(f, "version:     {}", m.version)?;
        writeln!(
            f,
            "gp-core:     {} (this host: {})",
            self.abi_version,
            gp_core::ABI_VERSION
        )?;
        if let Some(d) = &m.description {
            writeln!(f, "description: {d}")?;
        }
        if !m.maintainers.is_empty() {
            writeln!(f, "maintainers: {}", m.maintainers.join(", "))?;
        }
        if let Some(h) = &m.home {
            writeln!(f, "home:        {h}")?;
        }
        if let Some(http) = &m.http_services {
            writeln!(f, "routes:")?;
            for r in &http.routes {
                let asynchronous = match self.details.is_async(&r.label) {
                    true => " (async)",
                    false => "",
                };
                writeln!(
                    f,
                    "  {:<7} {:<32} -> {}{asynchronous}",
                    r.method.as_str(),
                    r.route,
                    r.label
                )?;
            }
        }
        let d = &self.details;
        if d.has_async() {
            let mut labels = d.async_labels.join(", ");
            if d.async_fallback {
                let fallback = "every other label (the fallback)";
                labels = if labels.is_empty() {
                    fallback.into()
                } else {
                    format!("{labels}, {fallback}")
                };
            }
            writeln!(f, "async:       {labels}")?;
        }
        if d.config.is_none() && d.configured == Some(true) {
            writeln!(
                f,
                "config:      {CONFIG_FILES}; its type has no schema to show (derive gp_sdk::schema::ConfigSchema)"
            )?;
        }
        if let Some(schema) = &d.config {
            writeln!(
                f,
                "config:      {CONFIG_FILES}, of this JSON Schema (a string may be a secret reference):"
            )?;
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            for line in pretty.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

/// Reads a plugin library without loading it: checks that it is a complete shared library
/// for this platform that exports a gp root module, and returns its embedded manifest.
///
/// Nothing in the file runs. A library that passes can still be refused when it is loaded
/// ([`verify`] loads it): a layout mismatch is only visible to abi_stable's check.
pub fn inspect(path: &Path) -> Result<LibraryInfo, Error> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    inspect_bytes(path, &data)
}

/// [`inspect`] on the contents `data` of the file `path`.
pub(crate) fn inspect_bytes(path: &Path, data: &[u8]) -> Result<LibraryInfo, Error> {
    let invalid = |reason: String| Error::InvalidLibrary {
        path: path.to_owned(),
        reason,
    };
    if data.is_empty() {
        return Err(invalid("the file is empty".into()));
    }
    let file = object::File::parse(data).map_err(|e| {
        if data.starts_with(b"\x7fELF") || data.starts_with(&[0xcf, 0xfa, 0xed, 0xfe]) {
            invalid(format!(
                "the file is truncated or corrupt ({e}); build or copy it again"
            ))
        } else {
            invalid("unknown file format, expected a shared library (.so, .dylib)".into())
        }
    })?;
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(invalid(format!(
            "it is a {:?} file, not a shared library: build the plugin crate with crate-type = [\"cdylib\"]",
            file.kind()
        )));
    }
    if let Some(host) = host_architecture() {
        if file.architecture() != host {
            return Err(invalid(format!(
                "it is built for {:?}, this host runs on {host:?}",
                file.architecture()
            )));
        }
    }
    let len = data.len() as u64;
    let ranges = file
        .segments()
        .map(|s| s.file_range())
        .chain(file.sections().filter_map(|s| s.file_range()));
    for (offset, size) in ranges {
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(invalid(format!(
                "the file is truncated: it has {len} bytes but its contents reach byte {}; build or copy it again",
                offset.saturating_add(size)
            )));
        }
    }

    let not_a_plugin = |reason: &str| Error::NotAPlugin {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let symbol = abi_stable::library::ROOT_MODULE_LOADER_NAME.as_bytes();
    let exports = file
        .exports()
        .map_err(|e| invalid(format!("its export table is corrupt ({e})")))?;
    if !exports.iter().any(|e| e.name() == symbol) {
        return Err(not_a_plugin(
            "it exports no gp root module: build it from a crate that depends on gp-sdk and marks its entry with #[plugin_entry]",
        ));
    }
    let section = file
        .section_by_name(gp_core::MANIFEST_SECTION)
        .or_else(|| file.section_by_name("__gp_manifest"))
        .ok_or_else(|| {
            not_a_plugin(
                "it has no embedded gp manifest (section gp_manifest): build it with #[plugin_entry] from gp-sdk",
            )
        })?;
    let bytes = section
        .data()
        .map_err(|e| invalid(format!("its manifest section is unreadable ({e})")))?;
    let embedded = Embedded::parse(bytes).map_err(|e| not_a_plugin(&format!("{e}")))?;

    check_abi_version(path, &embedded)?;
    let details = match file
        .section_by_name(gp_core::DETAILS_SECTION)
        .or_else(|| file.section_by_name("__gp_details"))
    {
        None => Details::default(),
        Some(section) => section
            .data()
            .map_err(|e| e.to_string())
            .and_then(|bytes| Details::parse(bytes).map_err(|e| e.to_string()))
            .map_err(|e| {
                not_a_plugin(&format!(
                    "its handlers' details (section gp_details) are unreadable ({e}); build it again with gp-sdk"
                ))
            })?,
    };
    Ok(LibraryInfo {
        path: path.to_owned(),
        abi_version: embedded.gp_core,
        manifest: embedded.manifest,
        details,
    })
}

/// abi_stable's version rule, applied before loading so that an incompatible plugin never
/// runs: same major version and, for 0.x, a plugin minor not lower than the host's.
fn check_abi_version(path: &Path, embedded: &Embedded) -> Result<(), Error> {
    let host = semver::Version::parse(gp_core::ABI_VERSION).expect("gp-core's own version");
    let incompatible = |reason: String| Error::Incompatible {
        plugin: embedded.manifest.name.clone(),
        path: path.to_owned(),
        reason,
    };
    let plugin = semver::Version::parse(&embedded.gp_core).map_err(|e| {
        incompatible(format!(
            "its gp-core version {:?} is not semver ({e})",
            embedded.gp_core
        ))
    })?;
    let compatible = plugin.major == host.major && !(host.major == 0 && host.minor > plugin.minor);
    if compatible {
        Ok(())
    } else {
        Err(incompatible(version_mismatch(&host, &plugin)))
    }
}

/// The one line for a plugin built against a gp-core release this host cannot use: which
/// release it was, which this host speaks, and the gp-sdk to rebuild it with.
fn version_mismatch(host: &dyn fmt::Display, plugin: &dyn fmt::Display) -> String {
    let host = host.to_string();
    let speaks = match semver::Version::parse(&host) {
        Ok(v) if v.major == 0 => format!("{}.{}", v.major, v.minor),
        Ok(v) => v.major.to_string(),
        Err(_) => host.clone(),
    };
    format!("{plugin}, where this host speaks {speaks}.x; rebuild it with gp-sdk {speaks}")
}

/// Whether gp-core releases `a` and `b` differ in what abi_stable compares: the major
/// version, and for 0.x the minor.
fn another_release(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.major != b.major || (a.major == 0 && a.minor != b.minor),
        _ => a != b,
    }
}

fn host_architecture() -> Option<object::Architecture> {
    use object::Architecture as A;
    Some(match std::env::consts::ARCH {
        "x86_64" => A::X86_64,
        "aarch64" => A::Aarch64,
        "x86" => A::I386,
        "arm" => A::Arm,
        "riscv64" => A::Riscv64,
        _ => return None,
    })
}

/// Loads a library that passed [`inspect`] and returns its root module, after abi_stable has
/// checked its version and the layout of every type it shares with the host.
///
/// The library is never unloaded (abi_stable keeps every library it opens for the life of the
/// process): see the crate documentation.
///
/// `path` is the file to open; errors name `shown` (the file the user gave, of which `path`
/// is the host's private copy).
/// `abi_version` is the gp-core version the plugin was built against (from [`inspect`]): it
/// says which root module layout to check the library against.
pub(crate) fn load(
    path: &Path,
    shown: &Path,
    plugin: &str,
    abi_version: &str,
) -> Result<Module, Error> {
    let file = path;
    let path = shown;
    let incompatible = |reason: String| Error::Incompatible {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let refused = |error: LibraryError| {
        match error {
        LibraryError::OpenError { err, .. } => Error::InvalidLibrary {
            path: path.to_owned(),
            reason: format!("the dynamic loader refused it: {err}"),
        },
        LibraryError::GetSymbolError { .. } => Error::NotAPlugin {
            path: path.to_owned(),
            reason: "it exports no gp root module".into(),
        },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => incompatible(version_mismatch(&expected_version, &actual_version)),
        LibraryError::AbiInstability(report) => {
            let report = report.to_string();
            tracing::trace!(plugin, path = %path.display(), "layout check report:\n{report}");
            let summary = summarize_layout_report(&report);
            if another_release(abi_version, gp_core::ABI_VERSION) {
                // Every shared type differs by its release: one line says it all.
                tracing::debug!(target: "gp", plugin, path = %path.display(), "the types that differ: {summary}");
                incompatible(format!(
                    "{} (the types that differ are logged at debug level: `gp -v`)",
                    version_mismatch(&gp_core::ABI_VERSION, &abi_version)
                ))
            } else {
                incompatible(summary)
            }
        }
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => incompatible(
            "it was built with an abi_stable release this host cannot read; rebuild it against the host's gp-sdk".into(),
        ),
        LibraryError::RootModule { err, .. } => Error::LoadFailed {
            plugin: plugin.to_owned(),
            path: path.to_owned(),
            reason: err.to_string().trim().to_owned(),
        },
        other => incompatible(other.to_string().trim().to_owned()),
    }
    };
    let header = lib_header_from_path(file).map_err(refused)?;
    let built_with = semver::Version::parse(abi_version).ok();
    let since = |v: &str| {
        let since = semver::Version::parse(v).expect("a semver constant");
        built_with.as_ref().is_none_or(|b| *b >= since)
    };
    if since(gp_core::INSTANCE_SINCE) {
        header
            .init_root_module::<PluginModRef>()
            .map(Module::Current)
            .map_err(refused)
    } else if since(gp_core::TABLE_SINCE) {
        header
            .init_root_module::<gp_core::v0_1_3::PluginModRef>()
            .map(Module::V0_1_3)
            .map_err(refused)
    } else if since(gp_core::SERVICES_SINCE) {
        header
            .init_root_module::<gp_core::v0_1_2::PluginModRef>()
            .map(Module::V0_1_2)
            .map_err(refused)
    } else if since(gp_core::HOOKS_SINCE) {
        header
            .init_root_module::<gp_core::v0_1_1::PluginModRef>()
            .map(Module::V0_1_1)
            .map_err(refused)
    } else {
        header
            .init_root_module::<gp_core::v0_1_0::PluginModRef>()
            .map(Module::V0_1_0)
            .map_err(refused)
    }
}

/// A plugin's root module, in the layout of the gp-core version it was built against.
#[derive(Clone, Copy)]
pub(crate) enum Module {
    /// Built against this host's gp-core minor, from [`gp_core::INSTANCE_SINCE`] on.
    Current(PluginModRef),
    /// Built against gp-core 0.1.3: the table entry point, no instance state or call info.
    V0_1_3(gp_core::v0_1_3::PluginModRef),
    /// Built against gp-core 0.1.2: hooks and host services, no table entry point.
    V0_1_2(gp_core::v0_1_2::PluginModRef),
    /// Built against gp-core 0.1.1: lifecycle hooks, no host services.
    V0_1_1(gp_core::v0_1_1::PluginModRef),
    /// Built against gp-core 0.1.0: no lifecycle hooks.
    V0_1_0(gp_core::v0_1_0::PluginModRef),
}

/// The entry point a host calls a plugin through.
#[derive(Clone, Copy)]
pub(crate) enum Entry {
    /// With the table, the call's label and the instance's state (`PluginMod::call_with`,
    /// gp-core 0.1.4 on).
    Info(gp_core::CallWithFn),
    /// With the table of the context's values (`PluginMod::call`, gp-core 0.1.3).
    Table(gp_core::CallFn),
    /// With the context alone (`PluginMod::execute`): plugins built before 0.1.3.
    Context(gp_core::ExecuteFn),
}

impl Module {
    /// The entry point to call: the table one when the plugin has it.
    pub(crate) fn entry(&self) -> Entry {
        match self {
            Module::Current(m) => match (m.call_with(), m.call()) {
                (Some(call_with), _) => Entry::Info(call_with),
                (None, Some(call)) => Entry::Table(call),
                (None, None) => Entry::Context(m.execute()),
            },
            Module::V0_1_3(m) => match m.call() {
                Some(call) => Entry::Table(call),
                None => Entry::Context(m.execute()),
            },
            Module::V0_1_2(m) => Entry::Context(m.execute()),
            Module::V0_1_1(m) => Entry::Context(m.execute()),
            Module::V0_1_0(m) => Entry::Context(m.execute()),
        }
    }

    pub(crate) fn on_load(&self) -> Option<gp_core::ExecuteFn> {
        match self {
            Module::Current(m) => m.on_load(),
            Module::V0_1_3(m) => m.on_load(),
            Module::V0_1_2(m) => m.on_load(),
            Module::V0_1_1(m) => m.on_load(),
            Module::V0_1_0(_) => None,
        }
    }

    pub(crate) fn on_unload(&self) -> Option<gp_core::ExecuteFn> {
        match self {
            Module::Current(m) => m.on_unload(),
            Module::V0_1_3(m) => m.on_unload(),
            Module::V0_1_2(m) => m.on_unload(),
            Module::V0_1_1(m) => m.on_unload(),
            Module::V0_1_0(_) => None,
        }
    }

    /// The plugin's `open` and `close`, when it keeps state per instance (gp-core 0.1.4 on).
    pub(crate) fn state(&self) -> Option<(gp_core::OpenFn, gp_core::CloseFn)> {
        match self {
            Module::Current(m) => m.open().zip(m.close()),
            _ => None,
        }
    }

    /// Hands the plugin `services` (see [`gp_core::HostServices`]), if it was built to take
    /// them. Idempotent: the plugin keeps the first.
    pub(crate) fn bind_host(&self, services: gp_core::HostServices) {
        let bind = match self {
            Module::Current(m) => m.bind_host(),
            Module::V0_1_3(m) => m.bind_host(),
            Module::V0_1_2(m) => m.bind_host(),
            Module::V0_1_1(_) | Module::V0_1_0(_) => None,
        };
        if let Some(bind) = bind {
            bind(services);
        }
    }
}

/// abi_stable's layout report is a few hundred lines describing both type trees; a user
/// needs the lines that say what differs and where. Each mismatch in the report is a trail of
/// `field_name:` / `type:` lines leading to the offending type, then both layouts, then
/// `Error:<what>`, `Expected:` and `Found:` with the values on the following lines.
fn summarize_layout_report(report: &str) -> String {
    let mut trail: Vec<(&str, &str)> = Vec::new();
    let mut field = "";
    let mut at = String::new();
    let mut mismatches: Vec<String> = Vec::new();
    let mut lines = report.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("field_name:") {
            field = name;
        } else if let Some(ty) = line.strip_prefix("type:") {
            trail.push((field, ty));
        } else if line == "Layout of expected type:" {
            at = match trail.as_slice() {
                [.., (_, parent), (field, _)] => format!("{parent}.{field}"),
                [(_, ty)] => (*ty).to_owned(),
                [] => "a shared type".to_owned(),
            };
            trail.clear();
        } else if let Some(what) = line.strip_prefix("Error:") {
            let mut value_after = |label: &str| {
                lines
                    .by_ref()
                    .skip_while(|l| *l != label)
                    .nth(1)
                    .unwrap_or("?")
                    .to_owned()
            };
            let expected = value_after("Expected:");
            let found = value_after("Found:");
            mismatches.push(format!(
                "`{at}`: {} (host expects {expected}, plugin has {found})",
                what.trim()
            ));
        }
    }
    mismatches.dedup();
    let advice =
        "rebuild it against the host's gp-sdk (the full layout report is logged at trace level)";
    if mismatches.is_empty() {
        format!("the layout of the types it shares with the host differs; {advice}")
    } else {
        format!("{}; {advice}", mismatches.join("; "))
    }
}

/// [`inspect`]s a library, then loads it into this process so that abi_stable checks its
/// version and type layouts: the full verification a [`Manager`](crate::Manager) does,
/// without registering the plugin.
///
/// The library stays loaded (see the crate documentation on unloading), and loading runs its
/// initialisers: use it on libraries you would load anyway, as `gp inspect` does.
pub fn verify(path: &Path) -> Result<LibraryInfo, Error> {
    verified(path).map(|(info, _)| info)
}

/// [`verify`], keeping the root module.
pub(crate) fn verified(path: &Path) -> Result<(LibraryInfo, Module), Error> {
    let info = inspect(path)?;
    let module = load(path, path, &info.manifest.name, &info.abi_version)?;
    Ok((info, module))
}
