#!/usr/bin/env bash
# Two plasma-stores on two hosts sharing one bucket (issue 13): store A and store B run with
# `-e s3://tensors/PREFIX --write-through`; the seed's C++ producer writes its tensor through
# store A, and the seed's Python step 3 (pyarrow 11) reads it through store B, which never saw
# it; then pyarrow 11 compares the object's bytes and digest on both stores.
#
# Where `ip netns` works (root, a kernel that allows it), the S3 server (SeaweedFS) and each
# store run in network namespaces of their own, joined by a bridge on a private test subnet
# (10.77.13.0/24, which exists only inside these namespaces): the stores reach the bucket
# over a network, not loopback. Elsewhere all three run on loopback. The clients reach the
# stores through their Unix sockets, which namespaces do not separate.
#
#   bash .ci/two-stores.sh            # after `cargo build --release` and .ci/seed-cpp.sh
#   TENSOR_IPC_NO_NETNS=1 bash .ci/two-stores.sh   # on loopback even where namespaces work
#
# Leaves nothing behind: stores, server, namespaces and files are removed on exit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
store="$root/target/release/plasma-store"
producer="$root/target/seed-cpp/seed_producer"
python11="$root/target/venv-pyarrow11/bin/python"
[[ -x "$store" ]] || cargo build --release -p tensor-ipc-plasma-store
[[ -x "$producer" ]] || bash .ci/seed-cpp.sh >/dev/null
bash .ci/s3-server.sh install

work="$(mktemp -d "$root/target/two-stores.XXXXXX")"
tag="t$$"
ns_s3="tipc-s3-$tag" ns_a="tipc-a-$tag" ns_b="tipc-b-$tag"
pids=()
namespaces=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  bash .ci/s3-server.sh stop "$work/s3" || true
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

in_ns() { # NAMESPACE CMD...: runs CMD there, or here on loopback (NAMESPACE empty)
  local ns="$1"
  shift
  if [[ -n "$ns" ]]; then ip netns exec "$ns" "$@"; else "$@"; fi
}
exec_in_ns() { # the same, replacing the (sub)shell, so `$!` is the command's pid
  local ns="$1"
  shift
  if [[ -n "$ns" ]]; then exec ip netns exec "$ns" "$@"; else exec "$@"; fi
}

mode="loopback"
s3_ip="127.0.0.1"
host_s3="" host_a="" host_b=""
if [[ -z "${TENSOR_IPC_NO_NETNS:-}" ]] && ip netns add "$ns_s3" 2>/dev/null; then
  namespaces+=("$ns_s3")
  ip netns add "$ns_a" && namespaces+=("$ns_a")
  ip netns add "$ns_b" && namespaces+=("$ns_b")
  ip -n "$ns_s3" link add br0 type bridge
  ip -n "$ns_s3" link set br0 up
  ip -n "$ns_s3" addr add 10.77.13.1/24 dev br0
  n=2
  for ns in "$ns_a" "$ns_b"; do
    ip link add "v$n$tag" type veth peer name "p$n$tag"
    ip link set "v$n$tag" netns "$ns"
    ip link set "p$n$tag" netns "$ns_s3"
    ip -n "$ns_s3" link set "p$n$tag" master br0 up
    ip -n "$ns" addr add "10.77.13.$n/24" dev "v$n$tag"
    ip -n "$ns" link set "v$n$tag" up
    ip -n "$ns" link set lo up
    n=$((n + 1))
  done
  ip -n "$ns_s3" link set lo up
  mode="network namespaces"
  s3_ip="10.77.13.1"
  host_s3="$ns_s3" host_a="$ns_a" host_b="$ns_b"
fi
echo "two-stores: $mode"

settings="$(in_ns "$host_s3" env TENSOR_IPC_S3_IP="$s3_ip" bash .ci/s3-server.sh start "$work/s3" --max-seconds 300)"
aws_env=()
while IFS='=' read -r key value; do
  [[ "$key" == AWS_* ]] && aws_env+=("$key=$value")
done <<<"$settings"
endpoint="s3://tensors/two-stores-$tag"

start_store() { # HOST NAME
  local sock="$work/$2.sock"
  (exec_in_ns "$1" env "${aws_env[@]}" "$store" -s "$sock" -m 100000000 -e "$endpoint" \
    --write-through) </dev/null >"$work/$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do [[ -S "$sock" ]] && return 0; sleep 0.05; done
  echo "two-stores: store $2 did not start" >&2
  cat "$work/$2.log" >&2
  return 1
}
start_store "$host_a" a
start_store "$host_b" b

"$producer" "$work/a.sock"
"$python11" -W ignore examples/seed_reader.py "$work/b.sock"
"$python11" -W ignore - "$work/a.sock" "$work/b.sock" <<'EOF'
import sys
import pyarrow.plasma as plasma
a, b = (plasma.connect(path) for path in sys.argv[1:3])
oid = plasma.ObjectID(20 * b"1")
[from_a], [from_b] = a.get_buffers([oid]), b.get_buffers([oid])
assert from_a.to_pybytes() == from_b.to_pybytes(), "the bytes differ"
assert a.hash(oid) == b.hash(oid), "the digests differ"
print(f"byte-identical on both stores: {from_b.size} bytes, digest {b.hash(oid).hex()}")
EOF
if grep -h "failed" "$work/a.log" "$work/b.log"; then
  echo "two-stores: a store reported a failure" >&2
  exit 1
fi
echo "OK: seed C++ producer -> store A -> bucket -> store B -> pyarrow 11 reader ($mode)"
