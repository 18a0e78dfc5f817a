//! What isolation costs: a call into a plugin running in its own runner process, against the
//! same call in process, the bare channel (a ping and its answer over the runner's socket, no
//! call), and a HashiCorp-style baseline (a JSON request and answer over a Unix socket to a
//! child process doing the same get+set). Also the pre-flight's cost per new build. See
//! `benches/README.md` for the figures.
//!
//! This binary is its own runner (`run_if_runner` first in `main`) and its own JSON child
//! (`GP_BENCH_JSON_CHILD`).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use gp_benches::{BenchPlugins, GETSET, NOOP};
use gp_host::isolation::Isolation;
use gp_host::{Context, Manager};

const JSON_CHILD: &str = "GP_BENCH_JSON_CHILD";

fn main() {
    gp_host::isolation::run_if_runner();
    if std::env::var_os(JSON_CHILD).is_some() {
        json_child();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    calls(&mut c);
    preflight(&mut c);
    c.final_summary();
}

/// How long both sides poll before they sleep, in the spinning variants.
const SPIN: Duration = Duration::from_micros(200);

/// A manager over the bench plugins' base dir with both plugins isolated.
fn isolated_manager(spin: Duration) -> Manager {
    let plugins = BenchPlugins::get();
    let runtime_dir = plugins
        .base_dir
        .join(format!(".gp-isolated-{}", spin.as_micros()));
    plugins.manager_with(|b| {
        b.runtime_dir(runtime_dir).isolation(Isolation {
            spin,
            ..Isolation::all()
        })
    })
}

fn calls(c: &mut Criterion) {
    let plugins = BenchPlugins::get();
    let manager = isolated_manager(Duration::ZERO);
    let noop = manager.executor(NOOP).unwrap();
    let getset = manager.executor(GETSET).unwrap();
    let spinning_manager = isolated_manager(SPIN);
    let spinning_noop = spinning_manager.executor(NOOP).unwrap();
    let spinning_getset = spinning_manager.executor(GETSET).unwrap();
    let in_process = plugins.executor(GETSET);
    assert!(noop.isolation().is_some() && in_process.isolation().is_none());

    // Every way must really do the work once per call.
    let mut check = Context::new();
    check.set("n", 0);
    getset.execute(&mut check).unwrap();
    assert_eq!(check.get("n").and_then(|v| v.as_i64()), Some(1));
    let mut child = JsonChild::start();
    assert_eq!(child.getset(1), 2);

    let mut group = c.benchmark_group("isolation");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("ping/bare_channel", |b| {
        b.iter(|| gp_host::__private::ping_runner(&noop).unwrap().unwrap())
    });
    group.bench_function("noop/isolated", |b| {
        let mut ctx = Context::new();
        b.iter(|| noop.execute(black_box(&mut ctx)).unwrap())
    });
    group.bench_function("getset/isolated", |b| {
        let mut ctx = Context::new();
        ctx.set("n", 0);
        b.iter(|| getset.execute(black_box(&mut ctx)).unwrap())
    });
    group.bench_function("ping/bare_channel_spinning", |b| {
        b.iter(|| {
            gp_host::__private::ping_runner(&spinning_noop)
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("getset/isolated_spinning", |b| {
        let mut ctx = Context::new();
        ctx.set("n", 0);
        b.iter(|| spinning_getset.execute(black_box(&mut ctx)).unwrap())
    });
    group.bench_function("getset/in_process", |b| {
        let mut ctx = Context::new();
        ctx.set("n", 0);
        b.iter(|| in_process.execute(black_box(&mut ctx)).unwrap())
    });
    group.bench_function("getset/json_over_unix_socket", |b| {
        let mut n = 0;
        b.iter(|| n = child.getset(black_box(n)))
    });
    // Two threads calling one isolated plugin: the time per call per thread.
    for threads in [1usize, 2] {
        group.bench_function(format!("threads/getset/{threads}"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        let getset = &getset;
                        scope.spawn(move || {
                            let mut ctx = Context::new();
                            ctx.set("n", 0);
                            for _ in 0..iters {
                                getset.execute(&mut ctx).unwrap();
                            }
                        });
                    }
                });
                started.elapsed()
            })
        });
    }
    group.finish();
}

/// Loading a build this process has not seen, with and without the pre-flight (each
/// iteration appends a byte to the library, which changes its SHA-256 and nothing else).
fn preflight(c: &mut Criterion) {
    let plugins = BenchPlugins::get();
    let original = std::fs::read(plugins.built_library(NOOP)).unwrap();
    let mut group = c.benchmark_group("preflight");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for on in [false, true] {
        let name = if on { "new_build/on" } else { "new_build/off" };
        let mut salt = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    salt += 1;
                    let base = tempfile::tempdir().unwrap();
                    let dir = base.path().join(NOOP);
                    std::fs::create_dir(&dir).unwrap();
                    let mut data = original.clone();
                    data.extend_from_slice(&salt.to_le_bytes());
                    data.extend_from_slice(&(on as u64).to_le_bytes());
                    let library = dir.join("libbench_noop.so");
                    std::fs::write(&library, &data).unwrap();
                    let info = gp_host::inspect(&library).unwrap();
                    std::fs::write(dir.join("plugin.json"), info.plugin_json().to_json_pretty())
                        .unwrap();
                    let manager = Manager::builder(base.path()).gc(None).preflight(on).build();
                    let started = Instant::now();
                    manager.load_plugin(&dir).unwrap();
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

/// The HashiCorp-style baseline: a child process answering `{"n": N}` with `{"n": N + 1}`,
/// one JSON line each way over a Unix socket (its standard input).
struct JsonChild {
    child: std::process::Child,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    line: String,
}

impl JsonChild {
    fn start() -> JsonChild {
        let (host, child_end) = UnixStream::pair().unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .env(JSON_CHILD, "1")
            .stdin(Stdio::from(OwnedFd::from(child_end)))
            .spawn()
            .unwrap();
        JsonChild {
            child,
            writer: host.try_clone().unwrap(),
            reader: BufReader::new(host),
            line: String::new(),
        }
    }

    fn getset(&mut self, n: i64) -> i64 {
        let request = serde_json::json!({ "values": { "n": n } });
        let mut out = serde_json::to_vec(&request).unwrap();
        out.push(b'\n');
        self.writer.write_all(&out).unwrap();
        self.line.clear();
        self.reader.read_line(&mut self.line).unwrap();
        let answer: serde_json::Value = serde_json::from_str(&self.line).unwrap();
        answer["values"]["n"].as_i64().unwrap()
    }
}

impl Drop for JsonChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: read a JSON line, do the get+set on a map, answer a JSON line.
fn json_child() {
    let socket = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned().unwrap());
    let mut writer = socket.try_clone().unwrap();
    let mut reader = BufReader::new(socket);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut request: serde_json::Value = serde_json::from_str(&line).unwrap();
        let values = request["values"].as_object_mut().unwrap();
        let n = values.get("n").and_then(|v| v.as_i64()).unwrap();
        values.insert("n".into(), (n + 1).into());
        let mut out = serde_json::to_vec(&request).unwrap();
        out.push(b'\n');
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}
