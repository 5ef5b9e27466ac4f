#!/usr/bin/env bash
# Dense to COO and dense to CSR of a 4096 x 4096 float32 matrix with 10% non-zeros (int64
# indices), tensor-ipc (criterion, benches/sparse.rs) beside Arrow C++ 26 from the pyarrow wheel
# (tests/cpp/sparse_vectors.cc bench mode), in one run. Prints a table of medians.
#
#   bash benches/sparse_compare.sh            # SPARSE_BENCH_SAMPLES / SPARSE_BENCH_SECS tune criterion
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cpp="$(bash .ci/sparse-cpp.sh)"
reps="${SPARSE_BENCH_SAMPLES:-10}"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
cargo bench --bench sparse >&2
cpp_json="$("$cpp" bench 4096 4096 0.1 "$reps" 20261125)"
python3 - "$target_dir/criterion/dense_to_sparse_4096x4096_f32_10pct" "$cpp_json" <<'PY'
import json, os, platform, sys
group, cpp = sys.argv[1], json.loads(sys.argv[2])
def rust(op):
    with open(os.path.join(group, op, "new", "estimates.json")) as f:
        return json.load(f)["median"]["point_estimate"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
print(f"matrix: {cpp['rows']}x{cpp['cols']} float32, nnz {cpp['nnz']} (Arrow C++ run), int64 indices")
print(f"{'conversion':<14}{'tensor-ipc (ms)':>18}{'Arrow C++ (ms)':>18}{'C++ / Rust':>12}")
for op in ("coo", "csr"):
    r, c = rust(op) / 1e6, cpp[f"{op}_median_ns"] / 1e6
    print(f"{'dense->' + op.upper():<14}{r:>18.1f}{c:>18.1f}{c / r:>12.2f}")
PY
