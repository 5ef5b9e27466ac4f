#!/usr/bin/env bash
# The seed program, both halves, against our plasma-store: the C++ producer
# (examples/seed_producer.cc, built against the pyarrow 11 wheel's headers and
# libraries) stores a tensor; the Python reader (examples/seed_reader.py,
# pyarrow 11) reads it back and checks it.
#
#   cargo build --release && bash .ci/seed-cpp.sh
#   bash .ci/seed-cpp.sh --build-only      # only build target/seed-cpp/seed_producer
#
# Needs g++, python3.11 and PyPI. Idempotent (venv in target/venv-pyarrow11, shared with .ci/plasma-client.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
store="$root/target/release/plasma-store"
[[ -x "$store" || "${1:-}" == "--build-only" ]] || cargo build --release -p tensor-ipc-plasma-store
command -v g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++; }
venv="$root/target/venv-pyarrow11"
if ! "$venv/bin/python" -c "import pyarrow; assert pyarrow.__version__ == '11.0.0'" 2>/dev/null; then
  py="$(bash "$root/.ci/python311.sh")"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow==11.0.0 "numpy<2" "pytest<8" hypothesis "pandas<2.2"
fi
pa="$("$venv/bin/python" -c 'import pyarrow, os; print(os.path.dirname(pyarrow.__file__))')"
out="$root/target/seed-cpp"
mkdir -p "$out"
if [[ ! -x "$out/seed_producer" || examples/seed_producer.cc -nt "$out/seed_producer" ]]; then
  g++ -std=c++17 -O1 -Wno-cpp -D_GLIBCXX_USE_CXX11_ABI=0 -I"$pa/include" examples/seed_producer.cc \
    -o "$out/seed_producer.tmp" -L"$pa" -l:libplasma.so.1100 -l:libarrow.so.1100 -Wl,-rpath,"$pa"
  mv "$out/seed_producer.tmp" "$out/seed_producer"
fi
[[ "${1:-}" != "--build-only" ]] || exit 0

tmp="$(mktemp -d)"
sock="$tmp/plasma.sock"
"$store" -s "$sock" -m 100000000 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.05; done
"$out/seed_producer" "$sock"
"$venv/bin/python" examples/seed_reader.py "$sock"
kill -TERM $pid
wait $pid
echo "OK: seed C++ producer -> plasma-store -> pyarrow 11 reader"
