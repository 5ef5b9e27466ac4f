#!/usr/bin/env bash
# Builds (idempotently) tests/cpp/sparse_vectors.cc against the libarrow of the current pyarrow
# wheel (target/venv-pyarrow, created by .ci/setup-python.sh) and prints the program's path,
# and nothing else, on stdout:
#
#   export TENSOR_IPC_SPARSE_CPP="$(bash .ci/sparse-cpp.sh)"
#
# The wheel ships the Arrow C++ headers (pyarrow/include) and libarrow.so.<major>00; manylinux
# wheels are built with the new libstdc++ ABI, and Arrow >= 23 headers need C++20.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/.ci/setup-python.sh" >&2
python="$repo/target/venv-pyarrow/bin/python"
read -r include libdir version < <("$python" -c '
import pyarrow as pa
print(pa.get_include(), pa.get_library_dirs()[0], pa.__version__)')
major="${version%%.*}"
lib="libarrow.so.${major}00"
if [ ! -e "$libdir/$lib" ]; then
  echo "sparse-cpp: $libdir/$lib not found (pyarrow $version)" >&2
  exit 1
fi
src="$repo/tests/cpp/sparse_vectors.cc"
out_dir="$repo/target/sparse-cpp"
out="$out_dir/sparse_vectors"
stamp="$out_dir/build-stamp"
cxx="${CXX:-g++}"
flags=(-std=c++20 -O2 -D_GLIBCXX_USE_CXX11_ABI=1 -Wall -Wno-deprecated-declarations
       -I"$include" "$src" -L"$libdir" "-l:$lib" "-Wl,-rpath,$libdir" -o "$out")
want="$cxx ${flags[*]} $(sha256sum "$src" | cut -d' ' -f1)"
mkdir -p "$out_dir"
if [ ! -x "$out" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "sparse-cpp: building $out against pyarrow $version ($lib)" >&2
  "$cxx" "${flags[@]}" >&2
  printf '%s' "$want" > "$stamp"
fi
echo "$out"
