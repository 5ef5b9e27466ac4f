#!/usr/bin/env bash
# Acceptance test of issue 3: pyarrow 11.0.0's own tests/test_plasma.py run
# against our plasma-store, and (for the baseline) against the original
# plasma-store-server bundled in the wheel.
#
#   cargo build --release && bash .ci/plasma-pyarrow11.sh
#
# Needs python3.11 (python3 -m venv) and PyPI. Idempotent: the venv is kept in
# target/venv-pyarrow11, shared with .ci/plasma-client.sh. Fails unless every test that passes against the
# original also passes against ours.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
store="$root/target/release/plasma-store"
[[ -x "$store" ]] || cargo build --release -p tensor-ipc-plasma-store
venv="$root/target/venv-pyarrow11"
if ! "$venv/bin/python" -c "import pyarrow, pytest, hypothesis, pandas; assert pyarrow.__version__ == '11.0.0'" 2>/dev/null; then
  py="$(bash "$root/.ci/python311.sh")"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow==11.0.0 "numpy<2" "pytest<8" hypothesis "pandas<2.2"
fi
out="$root/target/plasma-pyarrow11"
mkdir -p "$out"
run() {  # run NAME [env...]
  local name="$1"; shift
  env "$@" PYTHONPATH="$root/tests/plasma" "$venv/bin/python" -m pytest -p plasma_store_override \
    --pyargs pyarrow.tests.test_plasma -rA -q -p no:cacheprovider --basetemp="$out/$name-tmp" \
    >"$out/$name.log" 2>&1 || true
  grep -E '^PASSED ' "$out/$name.log" | sed 's/^PASSED //; s/ - .*//' | sort >"$out/$name.passed"
  echo "$name: $(tail -1 "$out/$name.log")"
}
run original PLASMA_STORE_EXECUTABLE=
run ours PLASMA_STORE_EXECUTABLE="$store"
missing="$(comm -23 "$out/original.passed" "$out/ours.passed")"
if [[ -n "$missing" ]]; then
  echo "tests passing against the original but not against plasma-store:" >&2
  echo "$missing" >&2
  exit 1
fi
n="$(wc -l <"$out/ours.passed")"
[[ "$n" -gt 0 ]] || { echo "no test passed" >&2; exit 1; }
echo "OK: all $(wc -l <"$out/original.passed") tests passing against the original pass against plasma-store ($n pass)"
