#!/usr/bin/env bash
# Tests of the Rust Plasma client (issue 4) against its real peers:
#   * Arrow 11's plasma-store-server and pyarrow.plasma (pyarrow 11.0.0 wheel, in
#     target/venv-pyarrow11),
#   * a C++ libplasma reader built against that wheel (target/plasma-client/plasma_reader),
#   * our plasma-store (target/release/plasma-store).
#
#   cargo build --release && bash .ci/plasma-client.sh            # set up, then cargo test
#   bash .ci/plasma-client.sh --setup-only                       # set up only
#   bash .ci/plasma-client.sh --seed-only                        # set up, run the seed examples
#
# Self-contained and idempotent (kept under target/). Exports PLASMA_STORE_ORIGINAL,
# PLASMA_STORE_OURS, PLASMA_PYTHON11 and PLASMA_CPP_READER for the tests, which fail
# under CI when a peer is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/target/venv-pyarrow11"
if ! "$venv/bin/python" -c "import pyarrow, numpy; assert pyarrow.__version__ == '11.0.0'" 2>/dev/null; then
  py="$(bash "$root/.ci/python311.sh")"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check pyarrow==11.0.0 "numpy<2"
fi
wheel="$("$venv/bin/python" -c 'import os, pyarrow; print(os.path.dirname(pyarrow.__file__))' 2>/dev/null)"
[[ -x "$wheel/plasma-store-server" ]] || { echo "no plasma-store-server in $wheel" >&2; exit 1; }

out="$root/target/plasma-client"
mkdir -p "$out"
src="$root/backends/plasma-client/tests/client_reader.cpp"
reader="$out/plasma_reader"
if [[ ! -x "$reader" || "$src" -nt "$reader" ]]; then
  arrow_lib="$(cd "$wheel" && ls libarrow.so.* | grep -E '^libarrow\.so\.[0-9]+$' | head -1)"
  plasma_lib="$(cd "$wheel" && ls libplasma.so.* | grep -E '^libplasma\.so\.[0-9]+$' | head -1)"
  g++ -O2 -std=c++17 -Wno-cpp -D_GLIBCXX_USE_CXX11_ABI=0 -I"$wheel/include" "$src" -o "$reader.tmp" \
    -L"$wheel" -l:"$plasma_lib" -l:"$arrow_lib" -Wl,-rpath,"$wheel"
  mv "$reader.tmp" "$reader"
fi

store="$root/target/release/plasma-store"
# (Not built in --setup-only mode, which tests call from inside `cargo test`.)
[[ -x "$store" || "${1:-}" == "--setup-only" ]] || cargo build --release -p tensor-ipc-plasma-store

export PLASMA_STORE_ORIGINAL="$wheel/plasma-store-server"
export PLASMA_STORE_OURS="$store"
export PLASMA_PYTHON11="$venv/bin/python"
export PLASMA_CPP_READER="$reader"

if [[ "${1:-}" == "--setup-only" ]]; then
  exit 0
fi
# --seed-only: skip the cargo tests (run by .ci/test with the rest of the workspace).
[[ "${1:-}" == "--seed-only" ]] || cargo test -p tensor-ipc-plasma

# The seed in Rust, as built binaries: seed_producer writes, seed_consumer and the seed's
# Python step 3 (examples/seed_reader.py, pyarrow 11) read, against both stores.
[[ -x target/release/examples/seed_producer && -x target/release/examples/seed_consumer ]] ||
  cargo build --release -p tensor-ipc --example seed_producer --example seed_consumer
for exe in "$PLASMA_STORE_ORIGINAL" "$PLASMA_STORE_OURS"; do
  tmp="$(mktemp -d)"
  "$exe" -s "$tmp/plasma.sock" -m 100000000 2>/dev/null &
  pid=$!
  ok=0
  if target/release/examples/seed_producer --socket "$tmp/plasma.sock" --length 1000 &&
    target/release/examples/seed_consumer --socket "$tmp/plasma.sock" | grep -q 'shape=\[1000\] dtype=float32 checksum=2000$' &&
    "$PLASMA_PYTHON11" -W ignore examples/seed_reader.py "$tmp/plasma.sock" | grep -q 'all 2.0: OK'; then
    ok=1
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
  [[ "$ok" == 1 ]] || { echo "seed examples failed against $exe" >&2; exit 1; }
  echo "seed examples: OK against $(basename "$exe")"
done
