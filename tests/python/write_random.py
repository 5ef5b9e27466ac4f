#!/usr/bin/env python3
"""Cross-check (b): pyarrow writes random tensors for Rust to read.

Usage: write_random.py DIR [SEED] [COUNT]

Writes COUNT (default 200) random tensors, seeded (default 20261125): every tensor value type,
0 to 4 dimensions (empty axes included), C order, F order, transposed (random axis
permutation) and sliced (steps, offsets) numpy views, random dimension names. Each goes to its
own file `rand_NNN.arrow_tensor` with `pa.ipc.write_tensor`, and all of them back to back (no
padding between them, so most start unaligned) to `stream.arrow_tensor`.

DIR/cases.json lists per case: `file`, `stream_offset`, `dtype`, `shape`, the numpy input
(`base_values` memory order, `offset` bytes, byte `strides`, `dim_names` or null,
`is_contiguous`), pyarrow's read-back (`read_strides`, `read_dim_names`), `values` (row-major)
and `size` (bytes written). Float values (`base_values`, `values`) are given as their IEEE bit
patterns, as unsigned integers. Prints `wrote N tensors`.
"""

import json
import os
import sys

import numpy as np
import pyarrow as pa

DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"]
NAME_CHARS = list("abcxyz_0 ") + ["\u00f6", "\u00df", "\u5b57", "\U0001f980"]


def jsonable(arr):
    """Integers as they are; floats as their IEEE bit patterns (unsigned integers of the same
    width), so that no decimal conversion can round them."""
    if arr.dtype.kind == "f":
        arr = arr.view(f"uint{arr.dtype.itemsize * 8}")
    return [int(x) for x in arr]


def random_values(rng, dtype, n):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        # Finite values only (JSON has no NaN); float16 stays in range.
        scale = 1000.0 if dtype == "float16" else 1e6
        return (rng.standard_normal(n) * scale).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=n, endpoint=True, dtype=dt)


def random_array(rng):
    """A random numpy array and how it was made."""
    dtype = DTYPES[rng.integers(len(DTYPES))]
    ndim = int(rng.integers(0, 5))
    shape = [int(rng.choice([0, 1, 2, 3, 4, 5], p=[.08, .2, .18, .18, .18, .18]))
             for _ in range(ndim)]
    kind = rng.choice(["c", "f", "transpose", "slice", "slice_transpose"])
    if ndim == 0:
        kind = "c"  # indexing a 0-d array gives a numpy scalar, not an array
    if kind in ("slice", "slice_transpose"):
        steps = [int(rng.integers(1, 4)) for _ in shape]
        starts = [int(rng.integers(0, 3)) for _ in shape]
        parent = [st + (d - 1) * sp + 1 + int(rng.integers(0, 2)) if d else st
                  for d, sp, st in zip(shape, steps, starts)]
        base = random_values(rng, dtype, int(np.prod(parent, dtype=np.int64)))
        arr = base.reshape(parent)
        if rng.random() < 0.5:
            arr = np.asfortranarray(arr)
        arr = arr[tuple(slice(st, st + (d - 1) * sp + 1 if d else st, sp)
                        for d, sp, st in zip(shape, steps, starts))]
        if kind == "slice_transpose" and ndim > 1:
            arr = arr.transpose(rng.permutation(ndim))
    else:
        arr = random_values(rng, dtype, int(np.prod(shape, dtype=np.int64))).reshape(shape)
        if kind == "f":
            arr = np.asfortranarray(arr)
        elif kind == "transpose" and ndim > 1:
            arr = arr.transpose(rng.permutation(ndim))
    names = None
    if ndim and rng.random() < 0.4:
        names = ["".join(rng.choice(NAME_CHARS, size=int(rng.integers(0, 5))))
                 for _ in range(ndim)]
    return dtype, str(kind), arr, names


def main():
    directory = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20261125
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    rng = np.random.default_rng(seed)
    cases = []
    stream = bytearray()
    for i in range(count):
        dtype, kind, arr, names = random_array(rng)
        root = arr
        while isinstance(root.base, np.ndarray):
            root = root.base
        assert root.flags.c_contiguous or root.flags.f_contiguous
        offset = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        tensor = pa.Tensor.from_numpy(arr, dim_names=names)
        sink = pa.BufferOutputStream()
        size = pa.ipc.write_tensor(tensor, sink)
        data = sink.getvalue().to_pybytes()
        assert size == len(data)
        back = pa.ipc.read_tensor(pa.BufferReader(data))
        name = f"rand_{i:03d}.arrow_tensor"
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
        cases.append({
            "file": name,
            "kind": kind,
            "stream_offset": len(stream),
            "dtype": dtype,
            "shape": list(arr.shape),
            "base_values": jsonable(root.ravel(order="K")),
            "offset": offset,
            "strides": list(tensor.strides),
            "dim_names": names,
            "is_contiguous": tensor.is_contiguous,
            "read_strides": list(back.strides),
            "read_dim_names": list(back.dim_names),
            "values": jsonable(np.ascontiguousarray(arr).reshape(-1)),
            "size": size,
        })
        stream += data
    with open(os.path.join(directory, "stream.arrow_tensor"), "wb") as f:
        f.write(stream)
    with open(os.path.join(directory, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    print(f"pyarrow {pa.__version__}, numpy {np.__version__}: wrote {len(cases)} tensors "
          f"(seed {seed}), stream of {len(stream)} bytes")


if __name__ == "__main__":
    main()
