#!/usr/bin/env bash
# gp against Go's `plugin` package on the same work, back to back in one run, with ratios.
#
#   benches/compare-go.sh                 # Go: -benchtime 2s, 5 counts; gp: the call and load benches
#   BENCHTIME=1s COUNT=3 benches/compare-go.sh
#
# Needs `go` (Debian: apt-get install golang-go) and a C compiler for cgo; skips, saying so,
# when `go` is missing. Not part of .ci/run: timings belong on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v go >/dev/null 2>&1; then
    echo "compare-go: skipped, no \`go\` on PATH (Debian: apt-get install golang-go)"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export CGO_ENABLED=1

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
echo "kernel: $(uname -r); $(go version); $(rustc --version)"

echo "== Go: build the plugin and the benchmark binary"
(cd go && go build -buildmode=plugin -o "$WORK/plugin.so" ./plugin && go test -c -o "$WORK/host.test" ./host)
export GP_GO_PLUGIN="$WORK/plugin.so"

echo "== Go: plugin calls (-benchtime ${BENCHTIME:-2s}, ${COUNT:-5} counts)"
"$WORK/host.test" -test.run '^$' -test.bench . -test.benchtime "${BENCHTIME:-2s}" \
    -test.count "${COUNT:-5}" | tee "$WORK/go.txt"

echo "== Go: the first plugin.Open of a process (5 processes)"
for _ in 1 2 3 4 5; do
    GP_GO_OPEN_FIRST=1 "$WORK/host.test" -test.run TestOpenFirst -test.v |
        awk '/first-open-ns/ { print $NF }'
done | tee "$WORK/go-open.txt"

echo "== gp: call and load benchmarks"
(cd .. && cargo bench -q -p gp-benches --bench call --bench load) 2>&1 | tee "$WORK/gp.txt"

# Medians of Go's counts, in ns.
go_median() {
    awk -v name="$1" '$1 ~ "^"name"(-[0-9]+)?$" { print $3 }' "$WORK/go.txt" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
# Criterion's point estimate of a benchmark, in ns.
gp_estimate() {
    awk -v name="$1" '
        $1 == name { found = 1 }
        found && /time:/ {
            sub(/.*\[/, ""); split($0, f, " ")
            unit = f[4]; v = f[3]
            if (unit == "ps") v /= 1000; else if (unit == "µs" || unit == "us") v *= 1000
            else if (unit == "ms") v *= 1000000; else if (unit == "s") v *= 1000000000
            print v; exit
        }' "$WORK/gp.txt"
}
go_open=$(sort -g "$WORK/go-open.txt" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
go_getset=$(go_median BenchmarkGetsetPlugin)
go_noop=$(go_median BenchmarkNoopPlugin)
gp_getset=$(gp_estimate execute/getset/executor)
gp_in_process=$(gp_estimate execute/getset/in_process)
gp_fxhashmap=$(gp_estimate execute/getset/fxhashmap)
gp_noop=$(gp_estimate execute/noop/executor)
gp_noop_raw=$(gp_estimate execute/noop/raw_fn_pointer)
gp_load=$(gp_estimate load/load_plugin/cached)

echo "== side by side, on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
awk -v go_getset="$go_getset" -v go_noop="$go_noop" -v go_open="$go_open" \
    -v gp_getset="$gp_getset" -v gp_in_process="$gp_in_process" -v gp_noop="$gp_noop" \
    -v gp_fxhashmap="$gp_fxhashmap" \
    -v gp_noop_raw="$gp_noop_raw" -v gp_load="$gp_load" 'BEGIN {
    printf "%-44s %12s %12s %10s\n", "", "gp", "reference", "gp / ref"
    printf "%-44s %9.1f ns %9.1f ns %9.2fx\n", "get+set: Executor vs Go plugin call", gp_getset, go_getset, gp_getset / go_getset
    printf "%-44s %9.1f ns %9.1f ns %9.2fx\n", "get+set: Executor vs the body in-process", gp_getset, gp_in_process, gp_getset / gp_in_process
    printf "%-44s %9.1f ns %9.1f ns %9.2fx\n", "get+set: the body in-process vs FxHashMap", gp_in_process, gp_fxhashmap, gp_in_process / gp_fxhashmap
    printf "%-44s %9.1f ns %9.1f ns %9.2fx\n", "empty call: Executor vs Go plugin call", gp_noop, go_noop, gp_noop / go_noop
    printf "%-44s %9.1f ns %9.1f ns %+8.1f ns\n", "empty call: Executor vs raw fn pointer", gp_noop, gp_noop_raw, gp_noop - gp_noop_raw
    printf "%-44s %9.3f ms %9.3f ms %9.2fx\n", "cached load_plugin vs Go first plugin.Open", gp_load / 1e6, go_open / 1e6, gp_load / go_open
}'
