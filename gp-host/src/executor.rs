use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use abi_stable::std_types::RResult;
use gp_core::manifest::Manifest;
use gp_core::{CallErrorKind, PluginModRef};

use crate::{Context, Error};

/// What a host knows about a loaded plugin: its manifest and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The plugin's `plugin.json`, verified against the manifest embedded in its library.
    pub manifest: Manifest,
    /// The plugin's folder.
    pub dir: PathBuf,
    /// The library that was loaded.
    pub library: PathBuf,
    /// The `gp-core` version the plugin was built against.
    pub abi_version: String,
}

impl Spec {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &semver::Version {
        &self.manifest.version
    }
}

/// A loaded plugin: its spec and its entry point.
pub(crate) struct Loaded {
    pub(crate) spec: Spec,
    pub(crate) module: PluginModRef,
}

/// Calls one plugin. Cheap to clone, `Send + Sync`, and callable from many threads at once:
/// a call takes no lock.
///
/// ```no_run
/// # fn main() -> Result<(), gp_host::Error> {
/// let manager = gp_host::Manager::new("plugins");
/// manager.load_plugins();
/// let (_spec, executor) = manager.get_plugin("sample")?;
/// let mut ctx = gp_host::Context::new();
/// ctx.set("sample", "hello");
/// executor.execute(&mut ctx)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Executor {
    plugin: Arc<Loaded>,
}

impl Executor {
    pub(crate) fn new(plugin: Arc<Loaded>) -> Executor {
        Executor { plugin }
    }

    /// The plugin's spec.
    pub fn spec(&self) -> &Spec {
        &self.plugin.spec
    }

    /// Calls the plugin's entry point with `ctx`.
    ///
    /// A plugin that returns an error gives [`Error::Failed`]; one that panics gives
    /// [`Error::Panicked`] (the panic is caught inside the plugin, logged here, and both
    /// carry on); one that stops because `ctx` was cancelled or passed its deadline gives
    /// [`Error::Cancelled`] or [`Error::DeadlineExceeded`].
    pub fn execute(&self, ctx: &mut Context) -> Result<(), Error> {
        let plugin = &*self.plugin;
        let execute = plugin.module.execute();
        let outcome =
            crate::context::__with_host_context(ctx, &plugin.spec.manifest.name, |host| {
                execute(host)
            });
        match outcome {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(error) => Err(self.call_error(ctx, error)),
        }
    }

    #[cold]
    fn call_error(&self, ctx: &Context, error: gp_core::CallError) -> Error {
        let plugin = self.plugin.spec.manifest.name.clone();
        let message = error.message.into_string();
        if error.kind == CallErrorKind::PANICKED {
            tracing::error!(target: "gp::plugin", plugin = %plugin, "plugin panicked: {message}");
            Error::Panicked { plugin, message }
        } else if ctx.is_cancelled() {
            Error::Cancelled { plugin }
        } else if ctx.is_past_deadline() {
            Error::DeadlineExceeded { plugin }
        } else {
            Error::Failed { plugin, message }
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("plugin", &self.plugin.spec.manifest.name)
            .field("version", &self.plugin.spec.manifest.version.to_string())
            .finish()
    }
}
