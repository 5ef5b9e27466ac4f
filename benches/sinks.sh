#!/usr/bin/env bash
# Every sink beside its baseline (issue 15): benches/sinks.rs REPEATS times, then one table of
# ratios (baseline time / sink time, median over rounds) against the 0.9x target.
#
#   benches/sinks.sh                        # 3 rounds
#   REPEATS=1 SINK_BENCH_SIZES=64 SINK_BENCH_SECS=1 benches/sinks.sh   # a quick look
#
# Extra arguments go to criterion (a filter: `benches/sinks.sh sinks_file`). Files are
# written under SINK_BENCH_DIR (default: the system temporary directory): the file rows
# measure that medium. Results: target/bench-results/sinks-<UTC time>/ (summary.txt,
# summary.md, per-round JSON and logs, machine.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=${REPEATS:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET_DIR/bench-results/sinks-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -sr)"
    dir=${SINK_BENCH_DIR:-${TMPDIR:-/tmp}}
    echo "file medium: $dir on $(df --output=fstype,source "$dir" | tail -1)"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
    echo "repeats: $REPEATS"
} | tee "$OUT/machine.txt"

cargo build --release -q -p tensor-ipc-plasma-store
cargo bench --bench sinks --no-run
for i in $(seq 1 "$REPEATS"); do
    echo "=== round $i/$REPEATS ==="
    since=$(date +%s)
    cargo bench --bench sinks -- "$@" 2>&1 | tee "$OUT/criterion-$i.log"
    python3 benches/summarize.py collect "$TARGET_DIR/criterion" "$since" "$OUT/rust-$i.json"
done
echo "=== summary ($OUT) ==="
python3 benches/sinks_summary.py "$OUT" | tee "$OUT/summary.txt"
python3 benches/sinks_summary.py "$OUT" --markdown > "$OUT/summary.md"
