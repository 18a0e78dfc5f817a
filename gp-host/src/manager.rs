use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use gp_core::manifest::{Manifest, SourceMode};

use crate::executor::{Executor, Loaded, Spec};
use crate::{library, Error};

/// The plugin base directory a [`Manager::default`] uses: `plugins`, relative to the working
/// directory (as in the original go-plugin).
pub const DEFAULT_BASE_DIR: &str = "plugins";

/// The name of a plugin's manifest file inside its folder.
pub const MANIFEST_FILE: &str = "plugin.json";

/// Discovers, verifies, loads and hands out plugins.
///
/// Plugins live in a base directory, one folder each: `BASE/<folder>/plugin.json` plus the
/// library its `source.path` names, relative to that folder.
///
/// ```no_run
/// use gp_host::{Context, Manager};
///
/// let manager = Manager::new("plugins");
/// let report = manager.load_plugins();
/// for failure in &report.failed {
///     eprintln!("{}", failure.error); // one bad plugin never stops the others
/// }
/// let (spec, executor) = manager.get_plugin("sample")?;
/// println!("plugin '{}' loaded with version '{}'", spec.name(), spec.version());
/// let mut ctx = Context::new();
/// ctx.set("sample", "hello gp");
/// executor.execute(&mut ctx)?;
/// # Ok::<(), gp_host::Error>(())
/// ```
pub struct Manager {
    base_dir: PathBuf,
    plugins: RwLock<BTreeMap<String, Arc<Loaded>>>,
}

impl Default for Manager {
    /// A manager over [`DEFAULT_BASE_DIR`].
    fn default() -> Manager {
        Manager::new(DEFAULT_BASE_DIR)
    }
}

/// What [`Manager::load_plugins`] did: every plugin folder, loaded or not.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Plugins loaded by this call.
    pub loaded: Vec<Spec>,
    /// Plugins that were already loaded from the same folder and library, left as they are.
    pub unchanged: Vec<Spec>,
    /// Folders that could not be loaded, each with the reason.
    pub failed: Vec<LoadFailure>,
}

/// A plugin folder that could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    /// The plugin folder (or the base directory, if it could not be read).
    pub dir: PathBuf,
    /// Why.
    pub error: Error,
}

impl LoadReport {
    /// Whether every plugin folder loaded.
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for LoadReport {
    /// One line per plugin folder: the folder, then its plugin and version or its error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let folder = |dir: &Path| {
            dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        for (specs, status) in [(&self.loaded, "loaded"), (&self.unchanged, "unchanged")] {
            for spec in specs {
                let plugin = format!("{} {}", spec.name(), spec.version());
                rows.push((folder(&spec.dir), status.to_owned(), plugin));
            }
        }
        for failure in &self.failed {
            rows.push((
                folder(&failure.dir),
                "failed".to_owned(),
                failure.error.to_string(),
            ));
        }
        rows.sort();
        let width = rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(0)
            .max("FOLDER".len());
        writeln!(f, "{:<width$}  {:<9}  PLUGIN / ERROR", "FOLDER", "STATUS")?;
        for (dir, status, detail) in rows {
            writeln!(f, "{dir:<width$}  {status:<9}  {detail}")?;
        }
        Ok(())
    }
}

impl Manager {
    /// A manager over the plugin base directory `base_dir`. Nothing is read until
    /// [`load_plugins`](Self::load_plugins).
    pub fn new(base_dir: impl Into<PathBuf>) -> Manager {
        Manager {
            base_dir: base_dir.into(),
            plugins: RwLock::new(BTreeMap::new()),
        }
    }

    /// The plugin base directory.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Loads every plugin folder in the base directory that is not loaded yet.
    ///
    /// Folders are visited in name order; hidden folders (`.name`) are skipped. A folder
    /// that fails is reported and changes nothing: the others load, and plugins already
    /// loaded keep serving.
    pub fn load_plugins(&self) -> LoadReport {
        let mut report = LoadReport::default();
        let entries = match std::fs::read_dir(&self.base_dir) {
            Ok(entries) => entries,
            Err(e) => {
                let error = if e.kind() == std::io::ErrorKind::NotFound {
                    Error::MissingBaseDir {
                        dir: self.base_dir.clone(),
                    }
                } else {
                    Error::io(&self.base_dir, e)
                };
                report.failed.push(LoadFailure {
                    dir: self.base_dir.clone(),
                    error,
                });
                return report;
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        for dir in dirs {
            match self.load_dir(&dir) {
                Ok((spec, true)) => {
                    tracing::info!(plugin = spec.name(), version = %spec.version(), dir = %dir.display(), "plugin loaded");
                    report.loaded.push(spec);
                }
                Ok((spec, false)) => report.unchanged.push(spec),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), "plugin not loaded: {error}");
                    report.failed.push(LoadFailure { dir, error });
                }
            }
        }
        report
    }

    /// Loads the plugin in one folder (`dir/plugin.json` and its library).
    pub fn load_plugin(&self, dir: impl AsRef<Path>) -> Result<Spec, Error> {
        self.load_dir(dir.as_ref()).map(|(spec, _)| spec)
    }

    /// Loads `dir`; `true` if it was not loaded before.
    fn load_dir(&self, dir: &Path) -> Result<(Spec, bool), Error> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingManifest {
                    dir: dir.to_owned(),
                })
            }
            Err(e) => return Err(Error::io(&manifest_path, e)),
        };
        let manifest =
            Manifest::from_plugin_json(&text).map_err(|source| Error::InvalidManifest {
                path: manifest_path.clone(),
                source,
            })?;
        let source = manifest
            .source
            .as_ref()
            .expect("validated plugin.json has a source");
        if source.mode == SourceMode::RemoteGit {
            return Err(Error::NeedsBuild {
                name: manifest.name.clone(),
                repository: source.path.clone(),
                path: manifest_path,
            });
        }
        let library_path = dir.join(&source.path);
        let library_path = match library_path.canonicalize() {
            Ok(path) => path,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::InvalidLibrary {
                    path: library_path,
                    reason: "the file does not exist (plugin.json's source.path names it)".into(),
                })
            }
            Err(e) => return Err(Error::io(&library_path, e)),
        };

        let info = library::inspect(&library_path)?;
        if let Some((field, in_file, in_library)) = manifest.first_difference(&info.manifest) {
            return Err(Error::ManifestMismatch {
                path: manifest_path,
                library: library_path,
                field,
                in_file,
                in_library,
            });
        }
        if let Some(existing) = self
            .plugins
            .read()
            .expect("registry lock")
            .get(&manifest.name)
        {
            return self.already_loaded(existing, dir, &library_path);
        }

        let module = library::load(&library_path, &manifest.name)?;
        let spec = Spec {
            manifest,
            dir: dir.to_owned(),
            library: library_path.clone(),
            abi_version: info.abi_version,
        };
        let mut plugins = self.plugins.write().expect("registry lock");
        // Another thread may have loaded the same name while this one was loading.
        if let Some(existing) = plugins.get(spec.name()) {
            return self.already_loaded(existing, dir, &library_path);
        }
        plugins.insert(
            spec.name().to_owned(),
            Arc::new(Loaded {
                spec: spec.clone(),
                module,
            }),
        );
        Ok((spec, true))
    }

    fn already_loaded(
        &self,
        existing: &Loaded,
        dir: &Path,
        library: &Path,
    ) -> Result<(Spec, bool), Error> {
        if existing.spec.library == library {
            Ok((existing.spec.clone(), false))
        } else {
            Err(Error::Duplicate {
                name: existing.spec.name().to_owned(),
                first: existing.spec.dir.clone(),
                second: dir.to_owned(),
            })
        }
    }

    /// The plugin called `name`: its spec and an executor to call it with.
    pub fn get_plugin(&self, name: &str) -> Result<(Spec, Executor), Error> {
        let plugins = self.plugins.read().expect("registry lock");
        let loaded = plugins.get(name).ok_or_else(|| Error::NotFound {
            name: name.to_owned(),
        })?;
        Ok((loaded.spec.clone(), Executor::new(Arc::clone(loaded))))
    }

    /// The executor of the plugin called `name`.
    pub fn executor(&self, name: &str) -> Result<Executor, Error> {
        self.get_plugin(name).map(|(_, executor)| executor)
    }

    /// The specs of every loaded plugin, by name.
    pub fn list(&self) -> Vec<Spec> {
        let plugins = self.plugins.read().expect("registry lock");
        plugins.values().map(|p| p.spec.clone()).collect()
    }
}
