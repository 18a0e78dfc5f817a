//! Shared set-up for gp's benchmarks (`cargo bench -p gp-benches`).
//!
//! [`BenchPlugins::get`] builds the benchmark plugins (`bench-noop`, `bench-getset`, `bench-typed`) in
//! release mode, installs them into the plugin base directory `target/bench-plugins/installed`
//! and loads them with a [`gp_host::Manager`], once per process. See `benches/README.md` for what each benchmark
//! measures and the figures.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gp_host::build::{cargo_build, install_library, BuildOptions};
use gp_host::{Executor, Manager};

/// The package (and plugin) name of the plugin whose entry point does nothing.
pub const NOOP: &str = "bench-noop";

/// The package (and plugin) name of the plugin that reads `n` and stores `n + 1`.
pub const GETSET: &str = "bench-getset";

/// The package (and plugin) name of the plugin with typed handlers: `getset` (the body of
/// [`GETSET`] behind the generated dispatch by label) and `inc` (serde input and output).
pub const TYPED: &str = "bench-typed";

/// Every benchmark plugin.
pub const ALL: [&str; 3] = [NOOP, GETSET, TYPED];

/// The symbol `bench-getset` exports for calls through a raw function pointer.
pub const RAW_GETSET_SYMBOL: &str = "gp_bench_raw_getset";

/// The symbol `bench-noop` exports its body under, as a bare `extern "C"` function.
pub const RAW_NOOP_SYMBOL: &str = "gp_bench_raw_noop";

/// The benchmark plugins, built, installed and loaded.
pub struct BenchPlugins {
    /// A manager over [`base_dir`](Self::base_dir) with every plugin loaded.
    pub manager: Manager,
    /// The plugin base directory, `target/bench-plugins/installed`: `<base>/bench-noop/`,
    /// `<base>/bench-getset/`. Reinstalled on every run (each file is replaced by a rename, so
    /// a process that already loaded the previous copy keeps it).
    pub base_dir: PathBuf,
    /// The libraries as cargo built them (in `target/bench-plugins/release`), by plugin name.
    pub built: Vec<(String, PathBuf)>,
}

impl BenchPlugins {
    /// The plugins, built and loaded on first use. Panics if they cannot be built or loaded:
    /// there is nothing to benchmark then.
    pub fn get() -> &'static BenchPlugins {
        static PLUGINS: OnceLock<BenchPlugins> = OnceLock::new();
        PLUGINS.get_or_init(|| BenchPlugins::build().unwrap_or_else(|e| panic!("{e}")))
    }

    fn build() -> Result<BenchPlugins, gp_host::Error> {
        let built = build_plugins()?;
        let base_dir = plugins_target_dir().join("installed");
        for (_, library) in &built {
            install_library(library, &base_dir)?;
        }
        let manager = Manager::new(&base_dir);
        for name in ALL {
            manager.load_plugin(base_dir.join(name))?;
        }
        Ok(BenchPlugins {
            manager,
            base_dir,
            built,
        })
    }

    /// The executor of the plugin `name` (one of [`ALL`]).
    pub fn executor(&self, name: &str) -> Executor {
        self.manager
            .executor(name)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A manager of its own over the base directory, configured by `configure`, with every
    /// plugin loaded. Panics if they do not load.
    pub fn manager_with(
        &self,
        configure: impl FnOnce(gp_host::ManagerBuilder) -> gp_host::ManagerBuilder,
    ) -> Manager {
        let manager = configure(Manager::builder(&self.base_dir)).build();
        for name in ALL {
            manager
                .load_plugin(self.plugin_dir(name))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        manager
    }

    /// The plugin folder of `name` in the base directory.
    pub fn plugin_dir(&self, name: &str) -> PathBuf {
        self.base_dir.join(name)
    }

    /// The installed (and loaded) library of `name`.
    pub fn installed_library(&self, name: &str) -> PathBuf {
        self.manager
            .get_plugin(name)
            .map(|(spec, _)| spec.library)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The library of `name` as cargo built it.
    pub fn built_library(&self, name: &str) -> &Path {
        self.built
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, path)| path.as_path())
            .unwrap_or_else(|| panic!("{name} was not built"))
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_owned()
}

/// `target/bench-plugins`, where the plugins are built and installed.
pub fn plugins_target_dir() -> PathBuf {
    workspace_dir().join("target").join("bench-plugins")
}

/// Builds the benchmark plugins in release mode into `target/bench-plugins` (a target
/// directory of their own, so the build neither waits for nor disturbs the one running the
/// benchmarks) and returns each library with its plugin name.
pub fn build_plugins() -> Result<Vec<(String, PathBuf)>, gp_host::Error> {
    let workspace = workspace_dir();
    let options = BuildOptions {
        release: true,
        target_dir: Some(plugins_target_dir()),
        quiet: true,
    };
    let libraries = cargo_build(&workspace.join("Cargo.toml"), &ALL, &options)?;
    let mut built = Vec::new();
    for library in libraries {
        let info = gp_host::inspect(&library)?;
        built.push((info.manifest.name, library));
    }
    for name in ALL {
        if !built.iter().any(|(n, _)| n == name) {
            return Err(gp_host::Error::Build {
                path: workspace.join("Cargo.toml"),
                reason: format!("cargo built no library for {name}"),
                source: None,
            });
        }
    }
    Ok(built)
}
