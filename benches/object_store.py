#!/usr/bin/env python3
"""The object-storage benchmark (issue 13): the backend against boto3, same run, same server.

Run it as one command: ``bash benches/object-store.sh [--rounds N]`` (installs SeaweedFS and
boto3 under target/, builds the backend's bench_transfer example, runs this script with the
venv's python). It starts a SeaweedFS S3 server on loopback, then, round by round and
alternating the two clients so that both see the same machine:

* write: a 256 MiB float32 tensor written through ``ObjectStoreSink`` (one Arrow tensor
  message, multipart upload) vs ``boto3``'s ``upload_file`` of the same bytes from a file
  in the page cache (its default TransferConfig: 8 MiB parts, 10 threads);
* read: ``read_tensor`` through ``ObjectStoreSource`` (header, then the body into one
  aligned allocation) vs ``download_file`` of the same object to a file;
* inspect: open + ``read_message_header`` until the end on a 1 GiB object and on a 1 KiB
  one, with the 4 KiB first window ``tensor-ipc inspect`` uses (each process start included),
  beside boto3's ranged GET of the same 4 KiB of each object: the server's own cost of
  serving the first bytes of a large object, which no client can go below.

Prints medians (MiB/s, ms) and the ratios: backend / boto3 throughput (>= 1.0 is the
target both ways) and inspect(1 GiB) / inspect(1 KiB) (1.0: the body is never fetched).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "examples", "bench_transfer")
SERVER = os.path.join(ROOT, ".ci", "s3-server.sh")
MIB = 1 << 20


def start_server(directory):
    out = subprocess.run(["bash", SERVER, "start", directory], check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def ours(env, *args):
    out = subprocess.run([BENCH, *args], check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip())


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--inspect-mib", type=int, default=1024)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-s3-", dir=os.path.join(ROOT, "target"))
    settings = start_server(os.path.join(work, "server"))
    try:
        env = dict(os.environ)
        env.update({k: v for k, v in settings.items() if k.startswith("AWS_")})
        bucket = settings["TENSOR_IPC_S3_BUCKET"]
        s3 = boto3.client("s3", endpoint_url=settings["AWS_ENDPOINT"],
                          aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
                          region_name=settings["AWS_REGION"])
        url = f"s3://{bucket}/bench/tensor"
        # The same bytes for boto3: the message our sink wrote.
        ours(env, "write", url, f"{args.mib}M")
        local = os.path.join(work, "tensor.bin")
        s3.download_file(bucket, "bench/tensor", local)
        size = os.path.getsize(local)
        rows = {"write_ours": [], "write_boto3": [], "read_ours": [], "read_boto3": []}
        for _ in range(args.rounds):
            rows["write_ours"].append(ours(env, "write", url, f"{args.mib}M"))
            rows["write_boto3"].append(
                timed(lambda: s3.upload_file(local, bucket, "bench/boto3")))
            rows["read_ours"].append(ours(env, "read", url))
            down = os.path.join(work, "down.bin")
            rows["read_boto3"].append(
                timed(lambda: s3.download_file(bucket, "bench/boto3", down)))
            os.unlink(down)
        os.unlink(local)

        big, small = f"s3://{bucket}/bench/big", f"s3://{bucket}/bench/small"
        ours(env, "write", big, f"{args.inspect_mib}M")
        ours(env, "write", small, "1K")
        # As `tensor-ipc inspect` reads: a 4 KiB first window (no body follows).
        headers_env = dict(env, TENSOR_IPC_READ_AHEAD="4K")
        # The server's own floor: boto3's ranged GET of the same first 4 KiB of each object.
        def first_window(key):
            return timed(lambda: s3.get_object(Bucket=bucket, Key=key,
                                               Range="bytes=0-4095")["Body"].read())
        for key in ("inspect_big", "inspect_small", "range_big_boto3", "range_small_boto3"):
            rows[key] = []
        for _ in range(max(3 * args.rounds, 9)):
            rows["inspect_big"].append(ours(headers_env, "inspect", big))
            rows["inspect_small"].append(ours(headers_env, "inspect", small))
            rows["range_big_boto3"].append(first_window("bench/big"))
            rows["range_small_boto3"].append(first_window("bench/small"))
    finally:
        subprocess.run(["bash", SERVER, "stop", os.path.join(work, "server")], check=False)
        subprocess.run(["rm", "-rf", work], check=False)

    med = {k: statistics.median(v) for k, v in rows.items()}
    mibs = size / MIB
    print(f"object-store benchmark, {args.rounds} rounds, {mibs:.1f} MiB message, "
          f"SeaweedFS on loopback, {platform.node()} ({os.cpu_count()} CPUs), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'row':<30}{'median':>12}{'MiB/s':>10}")
    for key in ("write_ours", "write_boto3", "read_ours", "read_boto3"):
        print(f"{key:<30}{med[key] * 1e3:>10.0f}ms{mibs / med[key]:>10.0f}")
    for key in ("inspect_big", "inspect_small", "range_big_boto3", "range_small_boto3"):
        print(f"{key:<30}{med[key] * 1e3:>10.2f}ms")
    ratios = {
        "write backend/boto3 (throughput)": med["write_boto3"] / med["write_ours"],
        "read backend/boto3 (throughput)": med["read_boto3"] / med["read_ours"],
        f"inspect {args.inspect_mib} MiB / 1 KiB (time)": med["inspect_big"] / med["inspect_small"],
        f"boto3 4 KiB range, {args.inspect_mib} MiB / 1 KiB object (time)":
            med["range_big_boto3"] / med["range_small_boto3"],
        f"inspect {args.inspect_mib} MiB - boto3 range of it (ms)":
            (med["inspect_big"] - med["range_big_boto3"]) * 1e3,
        "inspect 1 KiB - boto3 range of it (ms)":
            (med["inspect_small"] - med["range_small_boto3"]) * 1e3,
    }
    for name, ratio in ratios.items():
        print(f"{name:<44}{ratio:>6.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "medians": med, "ratios": ratios, "bytes": size}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
