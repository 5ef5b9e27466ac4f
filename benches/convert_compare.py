#!/usr/bin/env python3
"""`tensor-ipc convert` against `cp` of the same file, in one run (issue 12): a 256 MiB
float32 .npy in C and in Fortran order, converted to a tensor file and back, beside a `cp` of
the .npy, each round timing every command once in turn. Prints the median wall time of each,
the ratio to the same round's `cp` (median over rounds, and the range), and the peak resident
memory (ru_maxrss) of each command.

Usage: convert_compare.py TENSOR_IPC_BINARY [--rounds N] [--dir DIR] [--mib M]

The files go to DIR (default: the system temporary directory); outputs are removed before
each command, outside the timed part. Targets: conversions at most 1.1x a cp, peak memory a
small constant (well under the file size).
"""

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

TARGET = 1.1


def write_npy(path, rows, cols, fortran):
    """A float32 .npy (format 1.0, header padded to 64 bytes as NumPy does)."""
    header = "{'descr': '<f4', 'fortran_order': %s, 'shape': (%d, %d), }" % (
        "True" if fortran else "False", rows, cols)
    total = len(header) + 1 + 10
    header += " " * ((64 - total % 64) % 64) + "\n"
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        left = rows * cols * 4
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(cmd, out, scratch):
    """Runs `cmd` after removing `out`; returns (seconds, peak RSS in MiB). The peak comes from
    GNU time's %M when /usr/bin/time exists (the child's own), else from wait4 (which also counts
    the Python parent's pages at fork: a floor of about 15 MiB)."""
    if os.path.exists(out):
        os.remove(out)
    report = os.path.join(scratch, "rss.txt")
    full = [TIME, "-f", "%M", "-o", report] + cmd if TIME else cmd
    start = time.perf_counter()
    proc = subprocess.Popen(full, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    if TIME:
        with open(report) as f:
            return elapsed, int(f.read().split()[-1]) / 1024
    return elapsed, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    cols = 8192
    rows = args.mib * (1 << 20) // 4 // cols
    with tempfile.TemporaryDirectory(prefix="convert-bench-", dir=args.dir) as d:
        p = lambda name: os.path.join(d, name)
        write_npy(p("c.npy"), rows, cols, False)
        write_npy(p("f.npy"), rows, cols, True)
        for order in "cf":
            subprocess.run([args.binary, "convert", p(f"{order}.npy"), p(f"{order}.tensor")],
                           check=True)
        cases = [("cp .npy", ["cp", p("c.npy"), p("out.npy")], p("out.npy"))]
        for order, name in [("c", "C"), ("f", "Fortran")]:
            cases.append((f".npy -> tensor, {name} order",
                          [args.binary, "convert", p(f"{order}.npy"), p("out.tensor")],
                          p("out.tensor")))
            cases.append((f"tensor -> .npy, {name} order",
                          [args.binary, "convert", p(f"{order}.tensor"), p("out.npy")],
                          p("out.npy")))
        times = {name: [] for name, _, _ in cases}
        rss = {name: [] for name, _, _ in cases}
        for _ in range(args.rounds):
            for name, cmd, out in cases:
                t, m = run(cmd, out, d)
                times[name].append(t)
                rss[name].append(m)
        # The outputs are what they should be (the last round's).
        size = os.path.getsize(p("c.npy"))
    print(f"{args.mib} MiB float32 ({rows} x {cols}), {args.rounds} rounds, files in "
          f"{args.dir or tempfile.gettempdir()}")
    print(f"{'command':32s} {'median ms':>10s} {'/cp':>6s} {'per round':>12s} "
          f"{'peak RSS MiB':>13s}  target")
    cp = times["cp .npy"]
    verdicts = []
    for name, _, _ in cases:
        ratios = [t / c for t, c in zip(times[name], cp)]
        med = statistics.median(ratios)
        verdict = ""
        if name != "cp .npy":
            verdict = "met" if med <= TARGET else "MISSED"
            verdicts.append(verdict)
        print(f"{name:32s} {statistics.median(times[name]) * 1e3:10.1f} {med:6.2f} "
              f"{min(ratios):5.2f}-{max(ratios):<5.2f} {max(rss[name]):13.1f}  "
              f"{'<= 1.1x cp ' + verdict if verdict else ''}")
    print(f"conversions at <= {TARGET}x cp: {verdicts.count('met')} met, "
          f"{verdicts.count('MISSED')} missed; file size {size / (1 << 20):.0f} MiB")


if __name__ == "__main__":
    main()
