//! Readiness: the plugins a host cannot do without ([`ManagerBuilder::require`]), whether
//! the first load of the base directory is done, and what followers refuse. One answer,
//! [`Manager::readiness`], for every probe that asks (`gp serve`'s `/-/readyz`, the
//! management API's `/api/v1/readyz`), and [`Manager::init`], the seed's `Init(required)`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;

use crate::error::Error;
use crate::manager::builder::ManagerBuilder;
use crate::manager::report::LoadReport;
use crate::manager::Manager;
use crate::util::{lock, read};

/// Whether a host is ready for traffic, and if not, why: what `/-/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Readiness {
    /// The first load is done and every required plugin serves.
    pub ready: bool,
    /// [`Manager::load_plugins`] has returned at least once.
    pub loaded: bool,
    /// How many plugins serve.
    pub plugins: usize,
    /// The required plugins ([`ManagerBuilder::require`]), by name.
    pub required: Vec<String>,
    /// The required plugins that do not serve now.
    pub missing: Vec<String>,
    /// Versions a follower refuses while its target names them (feature `hub`): the
    /// version loaded keeps serving, so they do not make a host unready, but a fleet's
    /// operator must see them.
    pub refusing: Vec<Refusal>,
}

/// A version a follower will not install, while its target names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Refusal {
    /// The plugin followed.
    pub plugin: String,
    /// What it follows (`oci://…:stable`, `name@^1 in …`).
    pub target: String,
    /// The refused artifact's digest.
    pub digest: String,
    /// Why it was refused.
    pub reason: String,
}

impl Readiness {
    /// Why it is not ready, in a sentence (`None` when ready).
    pub fn reason(&self) -> Option<String> {
        if self.ready {
            None
        } else if !self.loaded {
            Some("the first load of the plugin directory is not finished".into())
        } else {
            Some(format!(
                "required plugin(s) not serving: {}",
                self.missing.join(", ")
            ))
        }
    }
}

impl ManagerBuilder {
    /// Plugins this host cannot do without, by name: [`Manager::init`] fails unless each of
    /// them loads, and [`Manager::readiness`] is not ready while one of them does not serve
    /// (not loaded, failed, unloaded, disabled). Default: none, so a host is ready once its
    /// first load is done.
    pub fn require<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required.extend(names.into_iter().map(Into::into));
        self.required.sort();
        self.required.dedup();
        self
    }
}

impl Manager {
    /// The plugins this manager requires ([`ManagerBuilder::require`]).
    pub fn required(&self) -> &[String] {
        &self.inner.config.required
    }

    /// Whether this host is ready for traffic: its first load done, each required plugin
    /// serving; with the versions its followers refuse.
    pub fn readiness(&self) -> Readiness {
        let loaded = self.inner.first_load_done.load(Ordering::Acquire);
        let (plugins, missing) = {
            let slots = read(&self.inner.slots);
            let serving = |name: &String| slots.get(name).is_some_and(|s| s.spec().is_some());
            let plugins = slots.values().filter(|s| s.spec().is_some()).count();
            let missing: Vec<String> = self
                .required()
                .iter()
                .filter(|name| !serving(name))
                .cloned()
                .collect();
            (plugins, missing)
        };
        Readiness {
            ready: loaded && missing.is_empty(),
            loaded,
            plugins,
            required: self.required().to_vec(),
            missing,
            refusing: self.refusing(),
        }
    }

    /// Loads the base directory ([`load_plugins`](Self::load_plugins)), then fails with
    /// [`Error::RequiredNotLoaded`] if a required plugin does not serve, naming each with
    /// why (its load's error, or that no folder holds it): the seed's `Init(required)`. The
    /// plugins that did load stay loaded either way.
    pub fn init(&self) -> Result<LoadReport, Error> {
        let report = self.load_plugins();
        self.check_required(&report)?;
        Ok(report)
    }

    /// [`Error::RequiredNotLoaded`] if a required plugin does not serve now, each named with
    /// why: its failure in `report` (a [`load_plugins`](Self::load_plugins)'s), or that no
    /// folder holds it.
    pub fn check_required(&self, report: &LoadReport) -> Result<(), Error> {
        let missing = self.readiness().missing;
        if missing.is_empty() {
            return Ok(());
        }
        let plugins = missing
            .into_iter()
            .map(|name| {
                let why = report
                    .failed
                    .iter()
                    .chain(&report.disabled)
                    .find(|f| failed_as(f, &name))
                    .map(|f| f.error.to_string())
                    .unwrap_or_else(|| {
                        format!(
                            "no plugin folder or package in {} declares it",
                            self.base_dir().display()
                        )
                    });
                (name, why)
            })
            .collect();
        Err(Error::RequiredNotLoaded { plugins })
    }

    /// Registers this manager's readiness as metrics (`gp_ready`, `gp_required_missing`,
    /// `gp_follow_refusing`) in `registry`.
    #[cfg(feature = "metrics")]
    pub(crate) fn register_readiness(&self, registry: &mut prometheus_client::registry::Registry) {
        let manager = Arc::downgrade(&self.inner);
        registry
            .sub_registry_with_prefix("gp")
            .register_collector(Box::new(ReadinessCollector {
                readiness: Box::new(move || {
                    manager.upgrade().map(|inner| Manager { inner }.readiness())
                }),
            }));
    }

    /// What the followers refuse now.
    fn refusing(&self) -> Vec<Refusal> {
        let probes: Vec<Arc<RefusalProbe>> = lock(&self.inner.refusals.0)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        probes.iter().filter_map(|probe| probe()).collect()
    }
}

/// What a follower refuses now, asked when readiness is.
pub(crate) type RefusalProbe = dyn Fn() -> Option<Refusal> + Send + Sync;

/// The followers' probes, each kept by its follower (a follower gone, its probe goes).
#[derive(Default)]
pub(crate) struct Refusals(Mutex<Vec<Weak<RefusalProbe>>>);

impl Refusals {
    /// Adds a follower's probe.
    #[cfg_attr(not(feature = "hub"), allow(dead_code))]
    pub(crate) fn add(&self, probe: &Arc<RefusalProbe>) {
        let mut probes = lock(&self.0);
        probes.retain(|p| p.strong_count() > 0);
        probes.push(Arc::downgrade(probe));
    }
}

/// Whether `failure` is plugin `name`'s: its error names it, or its folder (or package) does,
/// as folders are usually named after their plugin (a library that cannot be read has no
/// name to give).
fn failed_as(failure: &crate::manager::report::LoadFailure, name: &str) -> bool {
    if let Some(plugin) = failure.error.plugin() {
        return plugin == name;
    }
    let file = failure
        .dir
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let stem = file.strip_suffix(".plg").unwrap_or(file);
    stem == name || stem.rsplit_once('-').is_some_and(|(n, _)| n == name)
}

/// The manager's readiness as metrics: `gp_ready`, and one series per required plugin missing
/// and per version a follower refuses.
#[cfg(feature = "metrics")]
struct ReadinessCollector {
    readiness: Box<dyn Fn() -> Option<Readiness> + Send + Sync>,
}

#[cfg(feature = "metrics")]
impl std::fmt::Debug for ReadinessCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadinessCollector")
    }
}

#[cfg(feature = "metrics")]
impl prometheus_client::collector::Collector for ReadinessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        let Some(readiness) = (self.readiness)() else {
            return Ok(());
        };
        let family = encoder.encode_descriptor(
            "ready",
            "1 while the first load is done and every required plugin serves (what /-/readyz says)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(readiness.ready)).encode(family)?;
        let mut family = encoder.encode_descriptor(
            "required_missing",
            "1 for each required plugin that does not serve",
            None,
            MetricType::Gauge,
        )?;
        for name in &readiness.missing {
            ConstGauge::new(1i64).encode(family.encode_family(&[("plugin", name.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "follow_refusing",
            "1 for each version a follower refuses while its target names it (the version loaded keeps serving)",
            None,
            MetricType::Gauge,
        )?;
        for refusal in &readiness.refusing {
            let labels = [
                ("plugin", refusal.plugin.as_str()),
                ("target", refusal.target.as_str()),
                ("digest", refusal.digest.as_str()),
            ];
            ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
