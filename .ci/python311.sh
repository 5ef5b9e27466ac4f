#!/usr/bin/env bash
# Prints the path of a Python 3.11 interpreter, which pyarrow 11 (the Arrow 11 Plasma peers:
# plasma-store-server, pyarrow.plasma, libplasma) needs: $TENSOR_IPC_PYTHON311 if set, else
# python3.11, else python3 if it is 3.11. Without one it stops at once with one line saying
# what to install.
set -euo pipefail
for py in "${TENSOR_IPC_PYTHON311:-}" python3.11 python3; do
  [[ -n "$py" ]] || continue
  path="$(command -v "$py" 2>/dev/null)" || continue
  if "$path" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "$path"
    exit 0
  fi
done
echo "tensor-ipc: the Arrow 11 peers (pyarrow 11) need Python 3.11 with venv and pip, and none was found: install python3.11 (e.g. apt install python3.11 python3.11-venv, or pyenv install 3.11), or point TENSOR_IPC_PYTHON311 at one" >&2
exit 1
