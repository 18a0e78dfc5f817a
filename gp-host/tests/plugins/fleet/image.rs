//! The container image (deploy/container): built from the `gp` binary this test run built
//! (`stage.sh`, `Containerfile.local`) with buildah, its root filesystem exported, and `gp
//! serve` run from it as the image says (entrypoint, environment, user) in a chroot: the root
//! read-only, the plugins on a volume, `/proc` and `/dev` mounted (pre-flight starts runners
//! from `/proc/self/exe`). Containers cannot be run in this sandbox; a chroot in a mount
//! namespace of its own is as close as it allows, and the mounts go with the process.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{base_dir, example, tool_present, workspace};

/// The user the image runs as.
const USER: &str = "65532:65532";

fn run(what: &str, command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// What is missing to run this test here, if anything.
fn missing() -> Option<String> {
    let root = Command::new("id").arg("-u").output().ok()?.stdout == b"0\n";
    for tool in ["buildah", "unshare", "chroot"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("`{tool}`"));
        }
    }
    (!root).then(|| "root (the test mounts /proc and /dev for a chroot)".to_owned())
}

#[test]
fn the_image_serves_a_plugin_route_from_its_root_filesystem() {
    if !tool_present(
        "GP_IMAGE_TESTS",
        missing(),
        "apt-get install buildah, and root",
    ) {
        return;
    }
    let work = base_dir();
    let (rootfs, config) = built_and_exported(work.path());
    let config = &config;
    // The volume: the sample plugin, owned by the image's user.
    let volume = work.path().join("volume");
    std::fs::create_dir_all(volume.join("plugins")).unwrap();
    gp_host::build::install_library(example("sample"), &volume.join("plugins")).unwrap();
    run(
        "chown",
        Command::new("chown").args(["-R", USER]).arg(&volume),
    );

    let stderr = work.path().join("stderr");
    // The image's gp.toml logs JSON to standard output, what a container's collector reads;
    // the server is killed when `server` drops (a failed assertion leaves nothing behind).
    let mut server = super::JsonServer::new(serve_from(&rootfs, &volume, config, &stderr));
    let said = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let plugins = server.plugins_addr();
    server.event("ready: every plugin folder tried (1 loaded, 0 failed, 0 disabled)");
    let reply = crate::http::get(plugins, "/api/plugin/sample/7");
    assert_eq!(reply.status, 200, "{}\n{}", reply.text(), said());
    assert_eq!(
        reply.json(),
        serde_json::json!({"greeting": "sample plugin says: hello, sample 7", "id": "7"})
    );
    let ready = crate::http::get(plugins, "/-/readyz");
    assert_eq!(ready.json()["required"], serde_json::json!(["sample"]));
    assert_eq!(ready.status, 200);
    // Pre-flight ran (from /proc/self/exe, in the chroot): its pass is on the volume.
    let passes = std::fs::read_dir(volume.join("plugins/.gp-runtime/preflight"))
        .unwrap()
        .count();
    assert_eq!(passes, 1);

    // SIGTERM, as a container runtime stops it.
    let status = server.terminate("gp serve in the chroot did not stop");
    assert!(status.success(), "{status:?}\n{}", said());
}

/// The image built from this run's `gp` (stage.sh, Containerfile.local) in buildah storage
/// under `work`, checked to say what it should (user, entrypoint, stop signal, volume), and
/// its root filesystem exported to `work/rootfs`; returns that and the image's configuration.
fn built_and_exported(work: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let context = work.join("context");
    run(
        "stage.sh",
        Command::new(workspace().join("deploy/container/stage.sh"))
            .arg(env!("CARGO_BIN_EXE_gp"))
            .arg(&context),
    );
    let storage = work.join("storage");
    let buildah = || {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs"]);
        command
    };
    let image = "localhost/gp:fleet-test";
    run(
        "buildah build",
        buildah()
            .args(["build", "-q", "-f"])
            .arg(context.join("Containerfile.local"))
            .args(["-t", image])
            .arg(&context),
    );
    let inspected: serde_json::Value = serde_json::from_str(&run(
        "buildah inspect",
        buildah().args(["inspect", "--type", "image", image]),
    ))
    .unwrap();
    let config = &inspected["OCIv1"]["config"];
    assert_eq!(config["User"], USER);
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/gp", "serve"])
    );
    assert_eq!(config["StopSignal"], "SIGTERM");
    assert!(config["Volumes"]["/var/lib/gp"].is_object(), "{config}");

    // The root filesystem, exported: the image's one layer, as a container sees it.
    let container = run("buildah from", buildah().args(["from", "-q", image]));
    let container = container.trim();
    let mounted = run("buildah mount", buildah().args(["mount", container]));
    let rootfs = work.join("rootfs");
    run(
        "copy the root filesystem",
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", mounted.trim()))
            .arg(&rootfs),
    );
    run("buildah rm", buildah().args(["rm", container]));
    // The volume's mount point is the image's user's: run with no volume, gp can still write.
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(rootfs.join("var/lib/gp")).unwrap());
    assert_eq!(owner, 65532, "/var/lib/gp in the image");

    (rootfs, config.clone())
}

/// `gp serve` as the image runs it, in a chroot of `rootfs` with `volume` on /var/lib/gp:
/// the image's entrypoint, environment and user; its listeners moved to loopback ports of
/// the system's choosing, and `sample` required.
fn serve_from(
    rootfs: &Path,
    volume: &Path,
    config: &serde_json::Value,
    stderr: &Path,
) -> std::process::Child {
    let root = rootfs.display();
    let mounts = format!(
        "mount --bind {root} {root} && mount -o remount,bind,ro {root} \
         && mount --bind {} {root}/var/lib/gp \
         && mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev",
        volume.display()
    );
    let chroot = run(
        "command -v chroot",
        Command::new("sh").args(["-c", "command -v chroot"]),
    );
    let entrypoint: Vec<&str> = config["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "{mounts} && exec {} --userspec={USER} {root} {}",
            chroot.trim(),
            entrypoint.join(" ")
        ))
        .env_clear()
        .envs(config["Env"].as_array().unwrap().iter().map(|pair| {
            let (name, value) = pair.as_str().unwrap().split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        }))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("GP_SERVE_LISTEN", "127.0.0.1:0")
        .env("GP_SERVE_METRICS", "127.0.0.1:0")
        .env("GP_SERVE_ADMIN", "127.0.0.1:0")
        .env("GP_SERVE_REQUIRED", "sample")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap());
    command.spawn().expect("run gp serve in a chroot")
}
