#!/usr/bin/env bash
# Instructions a request costs, gp serve against the bare axum server, counted by callgrind.
#
#   benches/serve-instructions.sh                 # 10 s of wrk -c32 on each, under valgrind
#   DURATION=5s benches/serve-instructions.sh
#   GP=../old/target/release/gp benches/serve-instructions.sh   # another build of gp
#   GP_ARGS=--no-access-log benches/serve-instructions.sh         # more gp serve flags
#   AXUM_ALLOC=mimalloc benches/serve-instructions.sh             # axum on gp's allocator
#   CONNECTIONS=256 benches/serve-instructions.sh                 # wrk -c256, not -c32
#   CACHE_SIM=1 benches/serve-instructions.sh   # also cache misses a request (see below)
#
# Requests per second move with the machine, its CPU and whatever else runs on it; the user-
# space instructions a request costs barely move (a few percent from run to run), so
# this is how a change to the request path is measured on a busy or shared machine. Both
# servers answer `GET /api/plugin/sample/7` (as in compare-axum.sh) under callgrind, are
# warmed up for 3 s, then their counters are zeroed, loaded with `wrk -t1 -c32` for
# DURATION and dumped: instructions / requests. Under valgrind a call takes far longer than
# gp's inline budget, so gp runs every call on the blocking pool here (a few hundred
# instructions more than inline). Kernel time is not counted: compare-axum.sh has the whole.
# CACHE_SIM=1 adds callgrind's cache and branch simulation (this machine's L1 caches, and its
# per-core L2 as the last level) and prints misses a request: slower, and a model, not the
# machine's counters (which a VM may not have), so compare the two servers only.
# Needs valgrind and wrk; skips, saying so, without them. Not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "serve-instructions: skipped, no \`$tool\` on PATH (Debian: apt-get install valgrind wrk curl)"
        exit 0
    fi
done
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
VALGRIND_ARGS=()
if [ -n "${CACHE_SIM:-}" ]; then
    # This machine's L1 caches and its per-core L2 (as callgrind's last level), from sysfs:
    # SIZE,WAYS,LINE for callgrind's --I1, --D1 and --LL.
    geometry() { # CACHE_LEVEL TYPE FALLBACK
        local dir
        for dir in /sys/devices/system/cpu/cpu0/cache/index*; do
            if [ "$(cat "$dir/level" 2>/dev/null)" = "$1" ] && [ "$(cat "$dir/type" 2>/dev/null)" = "$2" ]; then
                local size
                size=$(sed 's/K$/*1024/; s/M$/*1048576/' "$dir/size" | bc)
                echo "$size,$(cat "$dir/ways_of_associativity"),$(cat "$dir/coherency_line_size")"
                return
            fi
        done
        echo "$3"
    }
    VALGRIND_ARGS=(--cache-sim=yes --branch-sim=yes
        --I1="$(geometry 1 Instruction 32768,8,64)"
        --D1="$(geometry 1 Data 32768,8,64)"
        --LL="$(geometry 2 Unified 524288,8,64)")
    echo "== cache simulation: ${VALGRIND_ARGS[*]:2}"
fi
WORK=$(mktemp -d)
VG=""
cleanup() {
    if [ -n "$VG" ]; then kill "$VG" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-2}

echo "== build (release): gp, the bare axum server, the sample plugin"
cargo build -q --release -p gp-host --features cli --bin gp
# AXUM_ALLOC=mimalloc: the baseline on the allocator the gp binary uses.
if [ "${AXUM_ALLOC:-system}" = mimalloc ]; then
    cargo build -q --release -p gp-benches --features mimalloc --example bare_axum
else
    cargo build -q --release -p gp-benches --example bare_axum
fi
target=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
GP=${GP:-"$target/release/gp"}
"$GP" build examples/sample -o "$WORK/plugins" >/dev/null

# One server under callgrind: prints "requests instructions".
count() { # NAME COMMAND...
    local name=$1
    shift
    valgrind --tool=callgrind "${VALGRIND_ARGS[@]}" --callgrind-out-file="$WORK/$name.%p" "$@" >"$WORK/$name.log" 2>&1 &
    VG=$!
    local up=""
    for _ in $(seq 1 600); do
        if curl -fs http://127.0.0.1:18090/api/plugin/sample/7 >/dev/null 2>&1; then up=1; break; fi
        sleep 0.2
    done
    if [ -z "$up" ]; then
        echo "serve-instructions: $name did not answer under valgrind" >&2
        cat "$WORK/$name.log" >&2
        exit 1
    fi
    wrk -t1 -c32 -d3s http://127.0.0.1:18090/api/plugin/sample/7 >/dev/null
    callgrind_control -z "$VG" >/dev/null
    local requests
    requests=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" http://127.0.0.1:18090/api/plugin/sample/7 |
        awk '/requests in/ { print $1 }')
    callgrind_control -d "$VG" >/dev/null
    kill "$VG"
    wait "$VG" 2>/dev/null || true
    VG=""
    local dump
    dump=$(ls "$WORK/$name".*.1)
    local totals
    # Ir, then with the cache simulation I1mr D1mr D1mw DLmr DLmw (callgrind's event order).
    totals=$(awk '/^summary:/ { print $2, $5, $6, $7, $9, $10 }' "$dump")
    echo "$requests $totals"
    if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP.$name.callgrind"; fi
}

read -r axum_requests axum_ir axum_i1 axum_d1r axum_d1w axum_llr axum_llw < <(count axum "$target/release/examples/bare_axum" 127.0.0.1:18090)
read -r gp_requests gp_ir gp_i1 gp_d1r gp_d1w gp_llr gp_llw < <(count gp "$GP" serve "$WORK/plugins" --listen 127.0.0.1:18090 \
    --admin 127.0.0.1:19490 --no-preflight ${GP_ARGS:-})

echo
echo "== user-space instructions a request (wrk -c$CONNECTIONS for $DURATION under callgrind)"
echo "| server | requests | instructions / request |"
echo "|---|---|---|"
printf '| bare axum | %d | %d |\n' "$axum_requests" $((axum_ir / axum_requests))
printf '| gp serve | %d | %d |\n' "$gp_requests" $((gp_ir / gp_requests))
printf 'gp / axum: %.2f×\n' "$(echo "$gp_ir / $gp_requests / ($axum_ir / $axum_requests)" | bc -l)"
if [ -n "${CACHE_SIM:-}" ]; then
    echo
    echo "== simulated cache misses a request: L1 instruction, L1 data read / write, L2 read / write"
    echo "| server | I1 | D1 read | D1 write | L2 read | L2 write |"
    echo "|---|---|---|---|---|---|"
    for who in axum gp; do
        r=${who}_requests
        printf '| %s | %d | %d | %d | %d | %d |\n' "$who" \
            $((${who}_i1 / $r)) $((${who}_d1r / $r)) $((${who}_d1w / $r)) $((${who}_llr / $r)) $((${who}_llw / $r))
    done
fi
echo "(KEEP=/path/prefix keeps both profiles for callgrind_annotate --inclusive=yes)"
