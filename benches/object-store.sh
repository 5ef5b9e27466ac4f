#!/usr/bin/env bash
# The object-storage benchmark (issue 13) as one command: the backend against boto3's
# upload_file/download_file on the same SeaweedFS server in the same run, and header reads
# of a 1 GiB vs a 1 KiB object. Arguments go to benches/object_store.py (--rounds N, --json F).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/s3-server.sh install
cargo build --release -q -p tensor-ipc-object-store --example bench_transfer
exec target/venv-s3/bin/python benches/object_store.py "$@"
