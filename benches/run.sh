#!/usr/bin/env bash
# Runs the codec benchmarks of issue 2 side by side: the criterion bench (benches/codec.rs) and
# the pyarrow side (benches/pyarrow_compare.py), REPEATS times each, interleaved, then prints
# one table of medians (over runs) with ratios against memcpy and pyarrow and the targets.
#
#   benches/run.sh                 # 3 rounds (REPEATS=3)
#   REPEATS=5 benches/run.sh
#   CODEC_BENCH_SECS=1 REPEATS=1 benches/run.sh   # a quick look
#
# Extra arguments go to criterion (e.g. a filter: `benches/run.sh write_transposed`).
# Needs a venv with pyarrow>=26 and numpy>=2 at target/venv-pyarrow (created if missing) or
# PYTHON=/path/to/python. Results: target/bench-results/<UTC timestamp>/ (summary.txt,
# summary.md, per-run JSON and logs, machine.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=${REPEATS:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PY=${PYTHON:-$TARGET_DIR/venv-pyarrow/bin/python}
if [ ! -x "$PY" ]; then
    python3 -m venv "$TARGET_DIR/venv-pyarrow"
    "$TARGET_DIR/venv-pyarrow/bin/pip" install -q "pyarrow>=26" "numpy>=2"
    PY=$TARGET_DIR/venv-pyarrow/bin/python
fi
OUT=${OUT:-$TARGET_DIR/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT" "$TARGET_DIR/tmp"

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -sr)"
    echo "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo n/a)"
    echo "rustc: $(rustc --version)"
    echo "pyarrow: $("$PY" -c 'import pyarrow, numpy; print(pyarrow.__version__, "numpy", numpy.__version__)')"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
    echo "repeats: $REPEATS"
} | tee "$OUT/machine.txt"

cargo bench --bench codec --no-run
for i in $(seq 1 "$REPEATS"); do
    echo "=== round $i/$REPEATS: criterion (benches/codec.rs) ==="
    since=$(date +%s)
    cargo bench --bench codec -- "$@" 2>&1 | tee "$OUT/criterion-$i.log"
    "$PY" benches/summarize.py collect "$TARGET_DIR/criterion" "$since" "$OUT/rust-$i.json"
    echo "=== round $i/$REPEATS: pyarrow (benches/pyarrow_compare.py) ==="
    "$PY" benches/pyarrow_compare.py --json "$OUT/pyarrow-$i.json" \
        | tee "$OUT/pyarrow-$i.log"
done

echo "=== summary ($OUT) ==="
"$PY" benches/summarize.py "$OUT" | tee "$OUT/summary.txt"
"$PY" benches/summarize.py "$OUT" --markdown > "$OUT/summary.md"
