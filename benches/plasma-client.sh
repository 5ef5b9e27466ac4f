#!/usr/bin/env bash
# Benchmarks of the Rust Plasma client (issue 4), beside the Arrow 11 C++ client:
#   * 1 KiB cycles/s (create, write, seal, get, read, release, delete): the Rust client
#     against our plasma-store vs the Arrow 11 C++ client against the original store
#     (and the two other pairings for context);
#   * a 256 MiB float32 tensor put through PlasmaSink into our store vs a warm memcpy,
#     beside the C++ client putting the same tensor (ipc::WriteTensor) into the original;
#   * get + read_tensor (zero-copy) latency for 1 KiB .. 256 MiB tensors.
#
#   cargo build --release && bash benches/plasma-client.sh [ROUNDS]     (default 3)
#
# Each round starts fresh stores (-m 1000000000). Prints every measurement, then medians.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${1:-3}"
cycles="${CYCLES:-5000}"
bash .ci/plasma-client.sh --setup-only
[[ -x target/release/plasma-store ]] || cargo build --release -p tensor-ipc-plasma-store
cargo bench -q -p tensor-ipc-plasma-client --bench client --no-run 2>/dev/null
wheel="$(target/venv-pyarrow11/bin/python -c 'import os, pyarrow; print(os.path.dirname(pyarrow.__file__))')"
original="$wheel/plasma-store-server"
ours="$root/target/release/plasma-store"
cpp="$root/target/plasma-client/plasma_reader"
rust() { cargo bench -q -p tensor-ipc-plasma-client --bench client -- "$@" 2>/dev/null | grep '='; }

out="$root/target/plasma-client"
results="$out/bench-results.txt"
: >"$results"
for round in $(seq "$rounds"); do
  tmp="$(mktemp -d)"
  "$original" -s "$tmp/orig.sock" -m 1000000000 2>/dev/null &
  p1=$!
  "$ours" -s "$tmp/ours.sock" -m 1000000000 2>/dev/null &
  p2=$!
  sleep 8  # both sockets up, our store's background pre-fault done
  rec() { echo "round=$round $*" | tee -a "$results"; }
  rec "what=cycles client=rust store=ours $(rust "$tmp/ours.sock" cycles "$cycles" 1024)"
  rec "what=cycles client=cpp store=original $("$cpp" cycles "$tmp/orig.sock" "$cycles" 1024)"
  rec "what=cycles client=rust store=original $(rust "$tmp/orig.sock" cycles "$cycles" 1024)"
  rec "what=cycles client=cpp store=ours $("$cpp" cycles "$tmp/ours.sock" "$cycles" 1024)"
  rec "what=put client=rust store=ours $(rust "$tmp/ours.sock" put 268435456 5)"
  rec "what=put client=cpp store=original $("$cpp" put "$tmp/orig.sock" 268435456 5)"
  rec "what=memcpy $(rust - memcpy 268435456 5)"
  for line in $(rust "$tmp/ours.sock" get 50 1024 1048576 67108864 268435456 | tr ' ' ','); do
    rec "what=get store=ours ${line//,/ }"
  done
  kill -TERM $p1 $p2; wait $p1 $p2 2>/dev/null || true
  rm -rf "$tmp"
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in open(sys.argv[1])]
def med(key, **match):
    vals = [float(r[key]) for r in rows if key in r and all(r.get(k) == v for k, v in match.items())]
    return statistics.median(vals) if vals else float("nan")
print("\nmedians over", len({r["round"] for r in rows}), "rounds")
for c, s in [("rust", "ours"), ("cpp", "original"), ("rust", "original"), ("cpp", "ours")]:
    print(f"cycles/s {c:4} client vs {s:8} store: {med('cycles_per_s', what='cycles', client=c, store=s):9.0f}")
r, o = med('cycles_per_s', what='cycles', client='rust', store='ours'), med('cycles_per_s', what='cycles', client='cpp', store='original')
print(f"ratio rust+ours / cpp+original: {r / o:.2f}x (target >= 2x)")
pr, pc, mc = med('gbps', what='put', client='rust', store='ours'), med('gbps', what='put', client='cpp', store='original'), med('gbps', what='memcpy')
print(f"256 MiB put GB/s: rust PlasmaSink->ours {pr:.3f} (median {med('put_ms', what='put', client='rust', store='ours'):.1f} ms, first {med('first_ms', what='put', client='rust', store='ours'):.1f} ms)")
print(f"256 MiB put GB/s: cpp WriteTensor->original {pc:.3f} (median {med('put_ms', what='put', client='cpp', store='original'):.1f} ms, first {med('first_ms', what='put', client='cpp', store='original'):.1f} ms)")
print(f"memcpy GB/s {mc:.3f}; put / memcpy = {pr / mc:.2f} (target >= 0.5)")
for b in ["1024", "1048576", "67108864", "268435456"]:
    print(f"get+read {int(b):>10} B: {med('get_us', what='get', get_bytes=b):7.1f} us")
PY
