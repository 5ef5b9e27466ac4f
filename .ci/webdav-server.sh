#!/usr/bin/env bash
# A plain HTTP server with WebDAV on loopback, for the object-store backend's `http://` URLs:
# WsgiDAV (PyPI packages wsgidav and cheroot) serving a temporary folder, anonymous access.
# object_store's HTTP store writes with PUT (MKCOL for missing folders) and reads with ranged
# GETs; it has no multipart uploads, which is what the tests check the sink copes with.
#
#   bash .ci/webdav-server.sh install           # venv target/venv-webdav (idempotent)
#   bash .ci/webdav-server.sh run CMD [ARGS...] # start a server on a free port, export
#        # TENSOR_IPC_HTTP_ENDPOINT (http://127.0.0.1:PORT), run CMD, stop the server;
#        # exits with CMD's status.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=server-common.sh
source "$root/.ci/server-common.sh"
venv="$root/target/venv-webdav"

install() {
  if [[ ! -x "$venv/bin/wsgidav" ]] || ! "$venv/bin/python" -c 'import cheroot' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check wsgidav cheroot >&2
  fi
  [[ -x "$venv/bin/wsgidav" ]] || { echo "webdav-server: no wsgidav in $venv" >&2; exit 1; }
}

run() {
  install
  mkdir -p "$root/target/webdav-servers"
  local dir port pid
  dir="$(mktemp -d "$root/target/webdav-servers/run.XXXXXX")"
  mkdir "$dir/root"
  port="$(free_port)"
  "$venv/bin/wsgidav" --host 127.0.0.1 --port "$port" --root "$dir/root" --auth anonymous \
    --no-config -q >"$dir/log" 2>&1 &
  pid=$!
  stop_on_exit "$pid" "$dir"
  local deadline=$((SECONDS + 30))
  until python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || (( SECONDS > deadline )); then
      echo "webdav-server: WsgiDAV did not start:" >&2
      cat "$dir/log" >&2
      exit 1
    fi
    sleep 0.1
  done
  export TENSOR_IPC_HTTP_ENDPOINT="http://127.0.0.1:$port"
  echo "webdav-server: WsgiDAV at $TENSOR_IPC_HTTP_ENDPOINT" >&2
  run_and_exit "$@"
}

server_main "$@"
