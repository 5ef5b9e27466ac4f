#!/usr/bin/env python3
"""Prints the sinks benchmark (benches/sinks.rs) as ratios against the baselines of the same
run, checked against the targets of issue 15 (every contiguous row >= 0.9x its baseline).

Usage: sinks_summary.py RESULTS_DIR [--markdown]

RESULTS_DIR holds rust-N.json files (criterion medians in ns, gathered by
`summarize.py collect`). Each ratio is the time of the sink's own baseline row (measured just
before it) / the sink's time (above 1: faster than the baseline), computed per round and
reported as the median over rounds, with the range.
"""

import glob
import json
import os
import statistics
import sys

# (group, sink, baseline name); each sink row "<sink>/<layout>" has its own baseline row
# "<sink>.baseline/<layout>", measured just before it.
PAIRS = [
    ("sinks_memory", "vec", "memcpy"),
    ("sinks_memory", "memory", "memcpy"),
    ("sinks_memory", "plasma", "memcpy"),
    ("sinks_file", "file_create", "write_all_sync"),
    ("sinks_file", "file_append", "write_all_sync"),
    ("sinks_file", "file_atomic", "write_all_sync"),
    ("sinks_file", "file_write", "write_all"),
]
SIZES = ["1MiB", "64MiB", "256MiB"]
TARGET = 0.9


def main():
    results = sys.argv[1]
    markdown = "--markdown" in sys.argv
    runs = []
    for path in sorted(glob.glob(os.path.join(results, "rust-*.json"))):
        with open(path) as f:
            runs.append(json.load(f)["rows"])
    rows = []
    verdicts = []
    for group, sink, base in PAIRS:
        for size in SIZES:
            for layout in ["contiguous", "transposed"]:
                key = f"{group}/{size}/{sink}/{layout}"
                base_key = f"{group}/{size}/{sink}.baseline/{layout}"
                ratios = [r[base_key] / r[key] for r in runs if key in r and base_key in r]
                if not ratios:
                    continue
                ours = statistics.median(r[key] for r in runs if key in r) / 1e6
                theirs = statistics.median(r[base_key] for r in runs if base_key in r) / 1e6
                ratio = statistics.median(ratios)
                verdict = ""
                if layout == "contiguous":
                    verdict = "met" if ratio >= TARGET else "MISSED"
                    verdicts.append(verdict)
                rows.append([f"{sink} {layout}", size, f"{ours:.2f}", base, f"{theirs:.2f}",
                             f"{ratio:.2f}", f"{min(ratios):.2f}-{max(ratios):.2f}",
                             ">= 0.9x" if layout == "contiguous" else "", verdict])
    head = ["sink", "size", "ms", "baseline", "baseline ms", "baseline/sink", "per round",
            "target", ""]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        for r in [head] + rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print(f"\n{len(runs)} round(s); contiguous rows at >= {TARGET}x: "
          f"{verdicts.count('met')} met, {verdicts.count('MISSED')} missed")


if __name__ == "__main__":
    main()
