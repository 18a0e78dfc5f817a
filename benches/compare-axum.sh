#!/usr/bin/env bash
# gp serve against a bare axum server with the same handler, under wrk, side by side in one run.
#
#   benches/compare-axum.sh                          # c=1, 32, 256 and --isolate at c=32; 5 pairs of 10 s
#   PAIRS=3 DURATION=5s benches/compare-axum.sh      # shorter
#   GP_SERVE_ARGS="--inline-budget 0" benches/compare-axum.sh   # every call on the blocking pool
#   GP=../old/target/release/gp benches/compare-axum.sh        # another build of gp
#
# Both servers answer `GET /api/plugin/sample/7` with the same JSON: gp through the `sample`
# example plugin (built in release), axum through `benches/examples/bare_axum.rs`. Both run
# pinned to CPU 0 with TOKIO_WORKER_THREADS=2 (as on a 2-vCPU machine), wrk pinned to CPU 1
# (with more CPUs: servers on the first half, wrk on the rest). At each concurrency the two
# are loaded in turn, PAIRS times (axum first, then gp, then the other way round), and each
# pair's gp/axum ratio is taken; the medians of the ratios and of each side's figures are
# reported, with the non-2xx counts summed. Needs wrk (Debian: apt-get install wrk) and curl;
# skips, saying so, without wrk. Not part of .ci/run: timings belong on an otherwise idle
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    echo "compare-axum: skipped, no \`wrk\` on PATH (Debian: apt-get install wrk)"
    exit 0
fi
PAIRS=${PAIRS:-5}
DURATION=${DURATION:-10s}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
    half=$((cpus / 2))
    SERVER_CPUS="0-$((half - 1))"
    CLIENT_CPUS="$half-$((cpus - 1))"
    PIN_SERVER=(taskset -c "$SERVER_CPUS")
    PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
else
    SERVER_CPUS=all CLIENT_CPUS=all
    PIN_SERVER=(env)
    PIN_CLIENT=(env)
fi
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-2}

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $cpus"
echo "kernel: $(uname -r); $(rustc --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "servers on CPU $SERVER_CPUS (TOKIO_WORKER_THREADS=$TOKIO_WORKER_THREADS), wrk on CPU $CLIENT_CPUS; $PAIRS pairs of $DURATION"

echo "== build (release): gp, the bare axum server, the sample plugin"
cargo build -q --release -p gp-host --features cli --bin gp
# AXUM_ALLOC=mimalloc: the baseline on the allocator the gp binary uses.
if [ "${AXUM_ALLOC:-system}" = mimalloc ]; then
    cargo build -q --release -p gp-benches --features mimalloc --example bare_axum
else
    cargo build -q --release -p gp-benches --example bare_axum
fi
target=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
# GP=/path/to/another/gp compares another build (an older commit's, say) against the same axum.
GP=${GP:-"$target/release/gp"}
AXUM="$target/release/examples/bare_axum"
"$GP" build examples/sample -o "$WORK/plugins" >/dev/null

wait_up() {
    for _ in $(seq 1 300); do
        if curl -fs "http://$1/api/plugin/sample/7" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "compare-axum: nothing answered on $1" >&2
    exit 1
}
start_gp() { # ADDR ADMIN [ARGS...]
    local addr=$1 admin=$2
    shift 2
    # shellcheck disable=SC2086
    "${PIN_SERVER[@]}" "$GP" serve "$WORK/plugins" --listen "$addr" --admin "$admin" --no-preflight \
        ${GP_SERVE_ARGS:-} "$@" >"$WORK/gp-$addr.log" 2>&1 &
    PIDS+=($!)
    wait_up "$addr"
}
"${PIN_SERVER[@]}" "$AXUM" 127.0.0.1:18081 >"$WORK/axum.log" 2>&1 &
PIDS+=($!)
wait_up 127.0.0.1:18081
start_gp 127.0.0.1:18080 127.0.0.1:19464
echo "gp answers:   $(curl -fs http://127.0.0.1:18080/api/plugin/sample/7)"
echo "axum answers: $(curl -fs http://127.0.0.1:18081/api/plugin/sample/7)"

# One wrk run: prints "rps p50_us p99_us non2xx".
load() { # ADDR CONNECTIONS
    "${PIN_CLIENT[@]}" wrk -t1 -c"$2" -d"$DURATION" --latency "http://$1/api/plugin/sample/7" |
        awk '
            function us(v) {
                if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000
                if (v ~ /s$/) return v * 1000000; return v
            }
            /^Requests\/sec:/ { rps = $2 }
            $1 == "50%" { p50 = us($2) }
            $1 == "99%" { p99 = us($2) }
            /Non-2xx or 3xx responses:/ { bad += $NF }
            /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) bad += $i + 0 }
            END { printf "%s %s %s %d\n", rps, p50, p99, bad }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

compare() { # LABEL GP_ADDR CONNECTIONS
    local label=$1 gp=$2 c=$3
    : >"$WORK/pairs"
    for pair in $(seq 1 "$PAIRS"); do
        if [ $((pair % 2)) -eq 1 ]; then
            a=$(load 127.0.0.1:18081 "$c"); g=$(load "$gp" "$c")
        else
            g=$(load "$gp" "$c"); a=$(load 127.0.0.1:18081 "$c")
        fi
        echo "$a $g" >>"$WORK/pairs"
        echo "  pair $pair: axum $a | gp $g"
    done
    ratio=$(awk '{ if ($1 > 0) printf "%.3f\n", $5 / $1 }' "$WORK/pairs" | median)
    dp50=$(awk '{ printf "%.1f\n", $6 - $2 }' "$WORK/pairs" | median)
    col() { awk -v c="$1" '{ print $c }' "$WORK/pairs" | median; }
    bad_axum=$(awk '{ s += $4 } END { print s + 0 }' "$WORK/pairs")
    bad_gp=$(awk '{ s += $8 } END { print s + 0 }' "$WORK/pairs")
    printf '| %s | %.0f | %.0f | **%.2f×** | %.0f / %.0f µs | %+.1f µs | %.0f / %.0f µs | %d / %d |\n' \
        "$label" "$(col 1)" "$(col 5)" "$ratio" "$(col 2)" "$(col 6)" "$dp50" "$(col 3)" "$(col 7)" \
        "$bad_axum" "$bad_gp" >>"$WORK/table"
}

: >"$WORK/table"
for c in 1 32 256; do
    echo "== c=$c"
    compare "c=$c" 127.0.0.1:18080 "$c"
done
if [ -z "${SKIP_ISOLATE:-}" ]; then
    echo "== --isolate sample, c=32"
    start_gp 127.0.0.1:18082 127.0.0.1:19465 --isolate sample
    compare "c=32, gp --isolate sample" 127.0.0.1:18082 32
fi

echo
echo "== medians over $PAIRS pairs (ratio: gp/axum requests per second, taken per pair)"
echo "| load | axum rps | gp rps | gp / axum | p50 axum / gp | p50 gp − axum | p99 axum / gp | non-2xx axum / gp |"
echo "|---|---|---|---|---|---|---|---|"
cat "$WORK/table"
