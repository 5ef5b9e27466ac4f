#!/usr/bin/env python3
"""Cross-check (a): pyarrow reads the tensors Rust wrote, and writes the same bytes.

Usage: check_rust_written.py DIR

DIR/cases.json (written by tests/pyarrow_interop.rs) lists, per case: `file` (a message Rust
wrote), `dtype`, `shape`, the input view Rust wrote from (`base_values` in memory order,
`offset` in bytes, byte `strides`, `dim_names` or null) and what must be read back
(`expect_strides`, `expect_dim_names`, `expect_values` row-major).

DIR/stream.arrow_tensor, if present, holds every case's message back to back; they must read
in order with the expected values.

For each case: `pa.ipc.read_tensor` must give the expected type, shape, strides, names and
values, and `pa.ipc.write_tensor(pa.Tensor.from_numpy(view, dim_names=...))` of the same numpy
view over the same values must produce the file's bytes exactly. Prints one line per case and
a summary `checked N tensors, F failures`; exits 1 if any case fails.
"""

import json
import os
import sys

import numpy as np
import pyarrow as pa


def numpy_view(case):
    dtype = np.dtype(case["dtype"])
    base = np.array(case["base_values"], dtype=dtype)
    offset = case["offset"]
    assert offset % dtype.itemsize == 0, "offset must be a whole number of elements"
    return np.lib.stride_tricks.as_strided(
        base[offset // dtype.itemsize:], shape=tuple(case["shape"]),
        strides=tuple(case["strides"]), writeable=False)


def check(directory, case):
    path = os.path.join(directory, case["file"])
    with open(path, "rb") as f:
        data = f.read()
    problems = []
    t = pa.ipc.read_tensor(pa.BufferReader(data))
    arr = t.to_numpy()
    if str(arr.dtype) != case["dtype"]:
        problems.append(f"dtype {arr.dtype} != {case['dtype']}")
    if list(t.shape) != case["shape"]:
        problems.append(f"shape {t.shape} != {case['shape']}")
    if list(t.strides) != case["expect_strides"]:
        problems.append(f"strides {t.strides} != {case['expect_strides']}")
    if list(t.dim_names) != case["expect_dim_names"]:
        problems.append(f"dim_names {t.dim_names} != {case['expect_dim_names']}")
    expected = np.array(case["expect_values"], dtype=np.dtype(case["dtype"]))
    got = np.ascontiguousarray(arr).reshape(-1)
    if got.tobytes() != expected.tobytes():
        problems.append(f"values {got.tolist()} != {expected.tolist()}")
    if pa.ipc.get_tensor_size(t) != len(data):
        problems.append(f"get_tensor_size {pa.ipc.get_tensor_size(t)} != file size {len(data)}")
    # The same numpy input through pyarrow's writer gives the same bytes.
    view = numpy_view(case)
    if np.ascontiguousarray(view).reshape(-1).tobytes() != expected.tobytes():
        problems.append("the reconstructed numpy view does not hold the expected values")
    sink = pa.BufferOutputStream()
    pa.ipc.write_tensor(pa.Tensor.from_numpy(view, dim_names=case["dim_names"]), sink)
    ours = sink.getvalue().to_pybytes()
    if ours != data:
        first = next((i for i, (a, b) in enumerate(zip(ours, data)) if a != b),
                     min(len(ours), len(data)))
        problems.append(f"pyarrow writes {len(ours)} bytes, Rust wrote {len(data)}; "
                        f"first difference at byte {first}")
    return problems


def main():
    directory = sys.argv[1]
    with open(os.path.join(directory, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    failures = 0
    for case in cases:
        try:
            problems = check(directory, case)
        except Exception as e:  # noqa: BLE001 - reported as a failure of this case
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            failures += 1
            print(f"FAIL {case['file']}: " + "; ".join(problems))
        else:
            print(f"ok   {case['file']}")
    # All of them back to back in one stream (most start unaligned), read in order.
    stream_path = os.path.join(directory, "stream.arrow_tensor")
    if os.path.exists(stream_path):
        with open(stream_path, "rb") as f:
            reader = pa.BufferReader(f.read())
        for i, case in enumerate(cases):
            try:
                t = pa.ipc.read_tensor(reader)
                got = np.ascontiguousarray(t.to_numpy()).reshape(-1)
                want = np.array(case["expect_values"], dtype=np.dtype(case["dtype"]))
                ok = (got.tobytes() == want.tobytes() and list(t.shape) == case["shape"]
                      and list(t.strides) == case["expect_strides"])
                problem = "" if ok else f"shape {t.shape} strides {t.strides} values differ"
            except Exception as e:  # noqa: BLE001
                problem = f"{type(e).__name__}: {e}"
            if problem:
                failures += 1
                print(f"FAIL stream message {i} ({case['file']}): {problem}")
        if reader.tell() != reader.size():
            failures += 1
            print(f"FAIL stream: {reader.size() - reader.tell()} bytes left after the last message")
        else:
            print(f"ok   stream of {len(cases)} messages")
    print(f"pyarrow {pa.__version__}, numpy {np.__version__}: "
          f"checked {len(cases)} tensors, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
