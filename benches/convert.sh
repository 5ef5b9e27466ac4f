#!/usr/bin/env bash
# `tensor-ipc convert` (.npy <-> tensor, C and Fortran order, 256 MiB) against `cp` of the
# same file in the same run, with peak memory (issue 12). One command:
#
#   benches/convert.sh                  # 7 rounds, files in the system temporary directory
#   benches/convert.sh --rounds 3 --dir /some/disk --mib 64
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg); git $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
cargo build --release -q -p tensor-ipc-cli
python3 benches/convert_compare.py "${CARGO_TARGET_DIR:-target}/release/tensor-ipc" "$@"
