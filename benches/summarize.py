#!/usr/bin/env python3
"""Combines repeated runs of benches/codec.rs (criterion) and benches/pyarrow_compare.py into
one table of medians and ratios, checked against the targets of issue 2.

Usage: summarize.py RESULTS_DIR [--markdown]

RESULTS_DIR holds rust-N.json (criterion medians collected by run.sh with `collect`) and
pyarrow-N.json (written by pyarrow_compare.py). For every row, the figure reported is the
median over runs of each run's median. GB/s are decimal (1e9 bytes per second) of tensor body.

`summarize.py collect CRITERION_DIR SINCE OUT` gathers the criterion medians (ns per
iteration) of benchmarks measured after the UNIX time SINCE into OUT.
"""

import glob
import json
import os
import statistics
import sys

WRITE_SIZES = ["1MiB", "64MiB", "256MiB"]
READ_SIZES = ["1KiB", "1MiB", "64MiB", "1GiB"]
SIZE_BYTES = {"1KiB": 1 << 10, "1MiB": 1 << 20, "64MiB": 64 << 20, "256MiB": 256 << 20, "1GiB": 1 << 30}

CONTIGUOUS_TARGET = 0.9  # ours / memcpy
TRANSPOSED_TARGET = 4.0  # ours / pyarrow (issue 2)
TRANSPOSED_MEMCPY_TARGET = 0.9  # ours / memcpy (issue 12)
TRANSPOSED_2D_TARGET = 0.3  # ours / memcpy (issue 12)
TRANSPOSED_2D = ["uint8x4096x4096", "uint16x4096x4096", "float32x4096x4096", "float64x4096x4096"]
SIZE_2D = {"uint8x4096x4096": 16 << 20, "uint16x4096x4096": 32 << 20,
           "float32x4096x4096": 64 << 20, "float64x4096x4096": 128 << 20}
READ_TARGET_NS = 1000.0
FLAT_TOLERANCE = 1.5  # largest / smallest median across sizes


def collect(criterion_dir, since, out):
    rows = {}
    for path in glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True):
        estimates = os.path.join(os.path.dirname(path), "estimates.json")
        if not os.path.exists(estimates) or os.path.getmtime(estimates) < since:
            continue
        with open(path) as f:
            bench = json.load(f)
        with open(estimates) as f:
            median = json.load(f)["median"]["point_estimate"]
        full_id = bench["full_id"]
        parts = full_id.split("/")
        if len(parts) == 2:  # read groups: group/size
            full_id = f"{parts[0]}/tensor_ipc/{parts[1]}"
        rows[full_id] = median
    with open(out, "w") as f:
        json.dump({"rows": rows}, f, indent=1, sort_keys=True)
    print(f"collected {len(rows)} criterion medians into {out}")


def load_runs(results_dir, prefix):
    runs = []
    for path in sorted(glob.glob(os.path.join(results_dir, f"{prefix}-*.json"))):
        with open(path) as f:
            runs.append(json.load(f)["rows"])
    return runs


def medians(runs):
    keys = sorted({k for run in runs for k in run})
    return {k: statistics.median([run[k] for run in runs if k in run]) for k in keys}, len(runs)


def gbs(nbytes, ns):
    return nbytes / ns if ns else float("nan")


def fmt(x, digits=2):
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def summarize(results_dir, markdown):
    rust, n_rust = medians(load_runs(results_dir, "rust"))
    py, n_py = medians(load_runs(results_dir, "pyarrow"))
    lines, verdicts = [], []
    sep = " | "

    def row(cells):
        lines.append(("| " + sep.join(cells) + " |") if markdown else "  ".join(f"{c:>14s}" for c in cells))

    def header(cells):
        row(cells)
        if markdown:
            lines.append("|" + "|".join("---" for _ in cells) + "|")

    lines.append(f"Medians of {n_rust} criterion run(s) and {n_py} pyarrow run(s); GB/s = 1e9 B/s of tensor body.")
    lines.append("")
    header(["write row", "ours GB/s", "memcpy GB/s", "ours/memcpy", "pyarrow GB/s",
            "np.copyto GB/s", "pyarrow/memcpy", "ours/pyarrow", "target", "met?"])
    write_rows = [("write_contiguous", s) for s in WRITE_SIZES] + [("write_transposed", "256MiB")]
    for group, size in write_rows:
        nbytes = SIZE_BYTES[size]
        ours = gbs(nbytes, rust.get(f"{group}/tensor_ipc/{size}"))
        memcpy = gbs(nbytes, rust.get(f"{group}/memcpy/{size}"))
        pa_ = gbs(nbytes, py.get(f"{group}/pyarrow/{size}"))
        npc = gbs(nbytes, py.get(f"{group}/numpy_copyto/{size}"))
        if ours != ours:
            continue  # Not in this run (a filter left it out): no verdict.
        if group == "write_contiguous":
            ratio, target, name = ours / memcpy, CONTIGUOUS_TARGET, f"contiguous {size}"
            goal = f">= {target}x memcpy"
        else:
            ratio, target, name = ours / pa_, TRANSPOSED_TARGET, f"transposed {size}"
            goal = f">= {target}x pyarrow"
            # Issue 12: the same row against memcpy.
            verdicts.append((f"{name} vs memcpy", f">= {TRANSPOSED_MEMCPY_TARGET}x memcpy",
                             ours / memcpy, ours / memcpy >= TRANSPOSED_MEMCPY_TARGET))
        met = ratio >= target
        verdicts.append((name, goal, ratio, met))
        row([name, fmt(ours), fmt(memcpy), fmt(ours / memcpy), fmt(pa_), fmt(npc), fmt(pa_ / npc),
             fmt(ours / pa_), goal, "met" if met else "MISSED"])
    for shape in TRANSPOSED_2D:
        nbytes = SIZE_2D[shape]
        ours = gbs(nbytes, rust.get(f"write_transposed_2d/tensor_ipc/{shape}"))
        memcpy = gbs(nbytes, rust.get(f"write_transposed_2d/memcpy/{shape}"))
        if ours != ours:
            continue
        name, goal = f"2-D transpose {shape}", f">= {TRANSPOSED_2D_TARGET}x memcpy"
        met = ours / memcpy >= TRANSPOSED_2D_TARGET
        verdicts.append((name, goal, ours / memcpy, met))
        row([name, fmt(ours), fmt(memcpy), fmt(ours / memcpy), "", "", "", "", goal,
             "met" if met else "MISSED"])

    lines.append("")
    header(["read row", "1KiB ns", "1MiB ns", "64MiB ns", "1GiB ns", "max/min", "pyarrow 1KiB..1GiB ns",
            "pyarrow/ours", "target", "met?"])
    for group, desc in [("read_memory", "memory"), ("read_mmap", "mmap'd file"),
                        ("open_read_mmap", "open + mmap + read")]:
        ours = [rust.get(f"{group}/tensor_ipc/{s}") for s in READ_SIZES]
        theirs = [py.get(f"{group}/pyarrow/{s}") for s in READ_SIZES]
        have = [x for x in ours if x is not None]
        if not have:
            continue  # Not in this run: no verdict.
        spread = max(have) / min(have) if have else float("nan")
        pa_range = [x for x in theirs if x is not None]
        pa_text = f"{min(pa_range):.0f}..{max(pa_range):.0f}" if pa_range else "n/a"
        speedups = [p / o for p, o in zip(theirs, ours) if p is not None and o is not None]
        speedup = statistics.median(speedups) if speedups else float("nan")
        if group == "open_read_mmap":
            goal, met_text = "(informational)", "-"
        else:
            goal = f"< {READ_TARGET_NS:.0f} ns, flat (max/min <= {FLAT_TOLERANCE})"
            under = bool(have) and max(have) < READ_TARGET_NS
            flat = spread <= FLAT_TOLERANCE
            met = under and flat
            met_text = "met" if met else ("MISSED" + ("" if under else " (>= 1 us)") + ("" if flat else " (not flat)"))
            verdicts.append((f"read {desc}", goal, max(have) if have else float("nan"), met))
        row([f"read {desc}"] + [fmt(x, 0) for x in ours] + [fmt(spread), pa_text, fmt(speedup, 1), goal, met_text])

    lines.append("")
    for name, goal, value, met in verdicts:
        lines.append(f"{'- ' if markdown else ''}{'met   ' if met else 'MISSED'}  {name}: {goal} (measured {value:.2f}{' ns max' if name.startswith('read') else 'x'})")
    print("\n".join(lines))


def main(argv):
    if len(argv) >= 2 and argv[1] == "collect":
        collect(argv[2], float(argv[3]), argv[4])
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    summarize(argv[1], "--markdown" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
