//! The Kubernetes manifests (deploy/kubernetes) agree with gp serve: the ConfigMap's gp.toml
//! is a configuration gp serve takes, each pod's termination grace period is longer than
//! gp serve's own shutdown bound, the probes ask `/-/readyz` and `/-/healthz` on the plugin
//! listener's port, and Prometheus scrapes the metrics listener's. (Their schemas are checked
//! by `kubernetes-validate` in .ci/run.)

use gp_host::http::ServeConfig;

use crate::harness::workspace;

fn manifest(name: &str) -> String {
    std::fs::read_to_string(workspace().join("deploy/kubernetes").join(name)).unwrap()
}

/// The block of text under `key: |` in a YAML file, unindented.
fn literal_block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let indent = header.len() - header.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every value of `key: VALUE` lines in `yaml`.
fn values<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    yaml.lines()
        .filter_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix(&format!("{key}: "))
        })
        .map(|v| v.trim_matches('"'))
        .collect()
}

#[test]
fn the_manifests_agree_with_gp_serve() {
    let configmap = manifest("configmap.yaml");
    let config: ServeConfig = toml::from_str(&literal_block(&configmap, "gp.toml"))
        .unwrap_or_else(|e| panic!("the ConfigMap's gp.toml: {e}"));
    assert!(!config.required.is_empty(), "a fleet requires its plugins");
    assert!(!config.follow.is_empty(), "a fleet follows its registry");
    let bound = config.shutdown_bound().as_secs();
    for name in ["deployment.yaml", "deployment-canary.yaml"] {
        let deployment = manifest(name);
        let grace: u64 = values(&deployment, "terminationGracePeriodSeconds")[0]
            .parse()
            .unwrap();
        let pause: u64 = values(&deployment, "seconds")[0].parse().unwrap();
        assert!(
            grace > pause + bound,
            "{name}: terminationGracePeriodSeconds {grace} must be above the preStop pause, {pause} s, plus gp serve's shutdown bound, {bound} s (ServeConfig::shutdown_bound)"
        );
        assert_eq!(
            values(&deployment, "enableServiceLinks"),
            ["false"],
            "{name}"
        );
        let ports = values(&deployment, "containerPort");
        assert_eq!(
            ports,
            [
                config.listen.port().to_string(),
                config.metrics.unwrap().port().to_string()
            ]
        );
        let probes: Vec<&str> = values(&deployment, "path")
            .into_iter()
            .filter(|p| p.starts_with('/'))
            .collect();
        assert_eq!(probes[..2], ["/-/readyz", "/-/healthz"], "{name}");
        assert!(probes[2..].iter().all(|p| *p == "/-/readyz"), "{name}");
        assert_eq!(
            values(&deployment, "prometheus.io/port"),
            [config.metrics.unwrap().port().to_string()]
        );
        assert_eq!(values(&deployment, "readOnlyRootFilesystem"), ["true"]);
        assert_eq!(values(&deployment, "runAsUser"), ["65532"]);
        assert_eq!(values(&deployment, "value")[0], "/etc/gp/gp.toml");
    }
    // The canary differs by one variable: the tag it follows.
    let canary = manifest("deployment-canary.yaml");
    let follow = values(&canary, "value")[2];
    assert!(follow.ends_with(":canary"), "{follow}");
    assert_eq!(
        follow.replace(":canary", ":stable"),
        config.follow[0],
        "the canary follows the stable tag's repository"
    );
    // Every manifest is in the kustomization, but the example Secrets.
    let kustomization = manifest("kustomization.yaml");
    let mut listed: Vec<&str> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    listed.sort_unstable();
    let mut present: Vec<String> = std::fs::read_dir(workspace().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.ends_with(".yaml") && n != "kustomization.yaml" && n != "secrets.example.yaml"
        })
        .collect();
    present.sort_unstable();
    assert_eq!(listed, present);
}
