#!/usr/bin/env bash
# The Python package's benchmarks (issue 9), one command, every peer in the same run:
# tensor_ipc.plasma against pyarrow 11's pyarrow.plasma (on Arrow 11's plasma-store-server and
# on ours) and against Ray 2.60 (ray.put / ray.get on a local ray.init); write_tensor against
# pa.ipc.write_tensor. Prints a Markdown table with the ratios and the targets.
#
#   bash benches/python/run.sh            # 15 rounds (ROUNDS=15), 5 first-put rounds
#
# Installs what it needs under target/: a venv with Ray 2.60.0, current pyarrow and this
# package (target/venv-ray), pyarrow 11 (.ci/plasma-client.sh), the release store binary.
# Raw results: target/bench-python/<time>.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${ROUNDS:-15}"
first_rounds="${FIRST_ROUNDS:-5}"

bash .ci/plasma-client.sh --setup-only
cargo build --release -p tensor-ipc-plasma-store --bins

venv="$root/target/venv-ray"
if ! "$venv/bin/python" -c 'import ray, pyarrow, numpy; assert ray.__version__ == "2.60.0"' 2>/dev/null; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ray==2.60.0" "numpy>=2" "pyarrow>=26"
fi
CARGO_TARGET_DIR="$root/target/python-wheel" \
  "$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps ./bindings/python

export PLASMA_STORE_OURS="$root/target/release/plasma-store"
export PLASMA_STORE_ORIGINAL="$("$root/target/venv-pyarrow11/bin/python" -c 'import os, pyarrow; print(os.path.join(os.path.dirname(pyarrow.__file__), "plasma-store-server"))')"
export PLASMA_PYTHON11="$root/target/venv-pyarrow11/bin/python"
out="$root/target/bench-python"
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
echo "tensor_ipc Python benchmarks, $stamp, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" benches/python/bench.py all --rounds "$rounds" --first-rounds "$first_rounds" \
  --json "$out/$stamp.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
