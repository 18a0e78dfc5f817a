#!/usr/bin/env bash
# `gp serve`'s start against `gp list` of the same base directory: 256 generated plugins of
# 64 routes each (issue 31, item 6). gp serve is timed from its start until it prints its
# `ready:` line (every folder tried, the report and the routes printed), read from a pipe
# with no polling; GET /-/healthz is then asked once, to check that every plugin is listed.
# gp list is timed until it exits. Both without the pre-flight. (Until 2026-12-07 the script
# polled /-/healthz with curl every 5 ms instead: a fork and exec every few milliseconds on
# the machine gp serve was starting on, which gp list did not have to share.)
#
#   benches/serve-start.sh                  # 256 plugins, 5 runs of each, interleaved
#   PLUGINS=64 RUNS=3 benches/serve-start.sh
#   GP=target/debug/gp benches/serve-start.sh   # another gp binary (default: a release build)
#
# One plugin crate is built (release), with 64 routes under a placeholder prefix; its library
# and plugin.json are then copied under 256 names, the placeholder replaced by the plugin's
# number (same length), so each is another build to gp with routes of its own, without 256
# cargo builds. Not part of .ci/run: timings belong on an otherwise idle machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLUGINS=${PLUGINS:-256}
RUNS=${RUNS:-5}
WORK=${WORK:-$ROOT/target/bench-serve-start}
GP=${GP:-$ROOT/target/release/gp}
LISTEN=127.0.0.1:${PORT:-18731}
for tool in curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "serve-start: skipped, no \`$tool\` on PATH"
        exit 0
    fi
done

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"

if [ ! -x "$GP" ]; then
    echo "== building gp (release)"
    cargo build --release --manifest-path "$ROOT/Cargo.toml" -p gp-host --features cli,http --bin gp
fi

echo "== the template plugin: 64 routes under /qzqzq"
mkdir -p "$WORK/template/src"
cat >"$WORK/template/Cargo.toml" <<EOF
[package]
name = "rt-qzqzq"
version = "1.0.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
gp-sdk = { path = "$ROOT/gp-sdk" }

[workspace]
EOF
python3 - "$WORK/template/src/lib.rs" <<'EOF'
import sys
routes = []
for r in range(16):
    one = f"/qzqzq/r{r}/{{id}}"
    for i, (method, route) in enumerate([("GET", f"/qzqzq/r{r}"), ("GET", one), ("PUT", one), ("DELETE", one)]):
        routes.append(f'    route({method}, "{route}", label = "r{r}.{i}"),')
open(sys.argv[1], "w").write(
    "use gp_sdk::{plugin_entry, Context, Result};\n\n#[plugin_entry(\n    driver = \"axum\",\n"
    + "\n".join(routes)
    + "\n)]\nfn execute(_ctx: &mut Context) -> Result {\n    Ok(())\n}\n"
)
EOF
rm -rf "$WORK/out"
"$GP" build "$WORK/template" --out "$WORK/out" >/dev/null

echo "== $PLUGINS copies"
rm -rf "$WORK/base"
python3 - "$WORK/out/rt-qzqzq" "$WORK/base" "$PLUGINS" <<'EOF'
import os, sys
template, base, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = {name: open(os.path.join(template, name), "rb").read() for name in os.listdir(template)}
for n in range(count):
    tag = f"{n:05d}".encode()
    folder = os.path.join(base, f"rt-{n:05d}")
    os.makedirs(folder)
    for name, data in files.items():
        with open(os.path.join(folder, name.replace("qzqzq", tag.decode())), "wb") as f:
            f.write(data.replace(b"qzqzq", tag))
EOF

list() {
    local started=$(date +%s.%N)
    "$GP" list "$WORK/base" --no-preflight >/dev/null 2>&1 || true
    echo "$(date +%s.%N) - $started" | bc
}

serve() {
    local out=$WORK/serve.out
    rm -f "$out"
    mkfifo "$out"
    local started=$(date +%s.%N)
    GP_ADMIN_TOKEN=bench-serve-start-token "$GP" serve "$WORK/base" --no-preflight --listen "$LISTEN" \
        --admin 127.0.0.1:0 >"$out" 2>/dev/null &
    local pid=$!
    exec 3<"$out"
    # grep blocks on the pipe (no polling) and exits at the line.
    if ! grep -q -m1 '^ready: ' <&3; then
        echo "serve-start: gp serve ended without its ready line" >&2
        exit 1
    fi
    local ended=$(date +%s.%N)
    # Whatever it prints later (its shutdown) has a reader.
    cat <&3 >/dev/null &
    local drain=$!
    if ! curl -sf "http://$LISTEN/-/healthz" | grep -q "\"plugins\":$PLUGINS"; then
        echo "serve-start: gp serve was ready without $PLUGINS plugins" >&2
        exit 1
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    exec 3<&-
    wait "$drain" 2>/dev/null || true
    rm -f "$out"
    echo "$ended - $started" | bc
}

echo "== $RUNS runs each, interleaved (seconds)"
list >/dev/null # warm the page cache
for run in $(seq "$RUNS"); do
    l=$(list)
    s=$(serve)
    echo "run $run: gp list $l, gp serve $s, ratio $(echo "scale=2; $s / $l" | bc)"
done
