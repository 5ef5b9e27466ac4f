#!/usr/bin/env bash
# Creates (idempotently) the Python environments the tests use and prints nothing else.
#   target/venv-pyarrow   current pyarrow (>= 26) with numpy >= 2: codec cross-checks
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/target/venv-pyarrow"
if ! "$venv/bin/python" -c 'import pyarrow, numpy, sys; sys.exit(int(pyarrow.__version__.split(".")[0]) < 26 or int(numpy.__version__.split(".")[0]) < 2)' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyarrow>=26" "numpy>=2" flatbuffers
fi
