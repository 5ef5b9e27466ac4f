# Sourced by the .ci scripts that start a server around a command (webdav-server.sh,
# azurite.sh): each defines `install` and `run CMD [ARGS...]`, then calls `server_main "$@"`.

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Stops the server PID and removes its directory DIR when the script exits.
stop_on_exit() {
  server_pid="$1"
  server_dir="$2"
  trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$server_dir"' EXIT
}

# Runs CMD [ARGS...] and exits with its status (the caller's EXIT trap stops the server).
run_and_exit() {
  local status=0
  "$@" || status=$?
  exit "$status"
}

# The command line: `install`, or `run CMD [ARGS...]`.
server_main() {
  local usage="usage: $0 install | run CMD [ARGS...]"
  case "${1:-}" in
    install) install ;;
    run)
      shift
      [[ $# -ge 1 ]] || { echo "$usage" >&2; exit 2; }
      run "$@"
      ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
}
