#!/usr/bin/env bash
# The Python package (bindings/python, issue 9): builds it as a user would
# (`pip install ./bindings/python`: pip, maturin, cargo), installs the one abi3 wheel into two
# environments and runs its pytest suite in each:
#   target/venv-python      Python 3.11, numpy >= 2, pyarrow >= 26 (+ pandas < 3, scipy)
#   target/venv-python-np1  the oldest Python available from 3.9 up, numpy 1.26, scipy, and no
#                           pyarrow (tests marked needs_pyarrow are deselected there)
# Peers, installed on first use: pyarrow 11 and its plasma-store-server (.ci/plasma-client.sh),
# the seed's C++ producer (.ci/seed-cpp.sh --build-only), the Rust CLI and seed examples. Under
# CI a missing peer fails its tests (elsewhere it is skipped and listed in target/peer-skips.log).
#
#   bash .ci/python.sh            # everything
#   bash .ci/python.sh -k seed    # extra arguments go to both pytest runs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

pip_quiet=(--quiet --disable-pip-version-check)

# The first of the given interpreters that runs (pyenv shims of versions not selected fail).
find_python() {
  local candidate
  for candidate in "$@"; do
    if [[ -n "$candidate" ]] && "$candidate" -c 'import venv' >/dev/null 2>&1; then
      echo "$candidate"
      return
    fi
  done
  echo "no Python among: $*" >&2
  return 1
}
pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
pyenv_python() { ls -d "$pyenv_root"/versions/"$1".*/bin/python"$1" 2>/dev/null | sort -V | tail -1; }

venv="$root/target/venv-python"
if ! "$venv/bin/python" -c 'import numpy, pyarrow, pandas, scipy, pytest, sys; sys.exit(int(numpy.__version__.split(".")[0]) < 2 or int(pyarrow.__version__.split(".")[0]) < 26)' 2>/dev/null; then
  py="$(bash .ci/python311.sh)"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install "${pip_quiet[@]}" "numpy>=2" "pyarrow>=26" "pandas<3" scipy pytest
fi

venv_np1="$root/target/venv-python-np1"
if ! "$venv_np1/bin/python" -c 'import numpy, scipy, pytest, sys; sys.exit(not numpy.__version__.startswith("1.26"))' 2>/dev/null; then
  py="$(find_python python3.9 "$(pyenv_python 3.9)" python3.10 "$(pyenv_python 3.10)" \
    python3.11 python3)"
  "$py" -m venv "$venv_np1"
  "$venv_np1/bin/pip" install "${pip_quiet[@]}" "numpy==1.26.*" "scipy<1.14" pytest
fi

echo "== pip install ./bindings/python"
# The wheel's Rust build keeps its own target directory (the bindings are not a workspace
# member, so their dependency graph differs from the workspace's).
export_target=(env CARGO_TARGET_DIR="$root/target/python-wheel")
"${export_target[@]}" "$venv/bin/pip" install "${pip_quiet[@]}" --force-reinstall --no-deps ./bindings/python
wheels="$root/target/python-wheels"
rm -rf "$wheels"
"${export_target[@]}" "$venv/bin/pip" wheel "${pip_quiet[@]}" --no-deps -w "$wheels" ./bindings/python
wheel="$(ls "$wheels"/tensor_ipc-*-abi3-*.whl)"
"$venv_np1/bin/pip" install "${pip_quiet[@]}" --force-reinstall --no-deps "$wheel"
echo "one wheel: $(basename "$wheel")"

echo "== peers"
bash .ci/plasma-client.sh --setup-only
bash .ci/seed-cpp.sh --build-only
cargo build --release --bin tensor-ipc --bin plasma-store --example seed_producer --example seed_consumer
export PLASMA_STORE_ORIGINAL="$("$root/target/venv-pyarrow11/bin/python" -c 'import os, pyarrow; print(os.path.join(os.path.dirname(pyarrow.__file__), "plasma-store-server"))')"
export PLASMA_PYTHON11="$root/target/venv-pyarrow11/bin/python"
export TENSOR_IPC_SEED_CPP="$root/target/seed-cpp/seed_producer"
export TENSOR_IPC_RUST_BIN="$root/target/release"

tests="$root/bindings/python/tests"
echo "== pytest: $("$venv/bin/python" -c 'import sys, numpy, pyarrow; print("Python", sys.version.split()[0], "numpy", numpy.__version__, "pyarrow", pyarrow.__version__)')"
rm -rf "$root/target/pytest-tmp" && mkdir -p "$root/target/pytest-tmp"
# --basetemp keeps pytest's temporary folders under target/ (nothing left in /tmp).
(cd "$tests" && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider --basetemp="$root/target/pytest-tmp/current" "$@")
echo "== pytest: $("$venv_np1/bin/python" -c 'import sys, numpy; print("Python", sys.version.split()[0], "numpy", numpy.__version__, "no pyarrow")')"
(cd "$tests" && "$venv_np1/bin/python" -m pytest -q -rs -p no:cacheprovider --basetemp="$root/target/pytest-tmp/oldest" -m "not needs_pyarrow" "$@")
