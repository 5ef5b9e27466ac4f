#!/usr/bin/env python3
"""The pyarrow side of the codec benchmarks (issue 2), row for row with benches/codec.rs.

Rows (same sizes, shapes and dtypes as the criterion bench):

* write_contiguous/{pyarrow,numpy_copyto}/{1MiB,64MiB,256MiB}: a 1-d float32 tensor written
  with ``pa.ipc.write_tensor`` into a ``pa.FixedSizeBufferWriter`` over a buffer allocated (and
  touched) once; the writer object is created per call (it cannot seek back), which costs well
  under a microsecond. Beside it ``np.copyto`` of the same bytes into a preallocated array.
* write_transposed/{pyarrow,numpy_copyto}/256MiB: ``arange(64*N*16).reshape(64, N, 16)
  .transpose(1, 0, 2)`` (byte strides ``[64, N*64, 4]``) through ``pa.Tensor.from_numpy`` and
  ``write_tensor`` into a preallocated buffer, beside a 256 MiB ``np.copyto``.
* read_memory/pyarrow/{1KiB,1MiB,64MiB,1GiB}: ``pa.ipc.read_tensor(pa.BufferReader(buf))``.
* read_mmap/pyarrow/...: ``read_tensor`` from an already opened ``pa.memory_map`` (seek(0)
  first); open_read_mmap/pyarrow/...: ``pa.memory_map(path)`` plus ``read_tensor``.

Each row is timed with ``timeit``: ``--repeats`` (default 7) repeats of a loop sized to take
about ``--target-seconds`` (default 0.2 s), the median per-call time reported. The read rows
(microseconds per call) use at least 51 repeats of ~2 ms loops instead, so that the median
is not inflated by scheduler preemption on a shared machine (as benches/codec.rs does). Prints a table,
and writes JSON (``--json PATH``): ``{"meta": {...}, "rows": {id: median_ns}, "bytes": {id: n}}``.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import timeit

import numpy as np
import pyarrow as pa

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


def label(n):
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{name}"
    return f"{n}B"


def median_ns(fn, repeats, target_seconds):
    """Median per-call time in ns over `repeats` loops of an auto-sized number of calls."""
    fn()  # warm up (page faults, lazy imports)
    timer = timeit.Timer(fn)
    number, t = 1, timer.timeit(1)
    while t < 0.01:
        number *= 10
        t = timer.timeit(number)
    number = max(1, round(number * target_seconds / t))
    times = timer.repeat(repeat=repeats, number=number)
    return statistics.median(times) / number * 1e9, number


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--target-seconds", type=float, default=0.2)
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--tmpdir", default=None, help="directory for the mmap'd files")
    args = ap.parse_args()

    rows, sizes, loops = {}, {}, {}

    def bench(row_id, nbytes, fn, short=False):
        if short:  # microsecond rows: many ~2 ms chunks, median (robust to preemption)
            ns, number = median_ns(fn, max(args.repeats, 51), 0.002)
        else:
            ns, number = median_ns(fn, args.repeats, args.target_seconds)
        rows[row_id], sizes[row_id], loops[row_id] = ns, nbytes, number
        gbs = f"{nbytes / ns:8.2f} GB/s" if nbytes else ""
        print(f"{row_id:42s} {ns / 1e3:12.3f} us {gbs}", flush=True)

    # (a) contiguous writes vs np.copyto
    for nbytes in (MIB, 64 * MIB, 256 * MIB):
        arr = np.arange(nbytes // 4, dtype=np.float32)
        tensor = pa.Tensor.from_numpy(arr)
        out = pa.allocate_buffer(pa.ipc.get_tensor_size(tensor))
        np.frombuffer(out, dtype=np.uint8)[:] = 1  # touch every page
        bench(f"write_contiguous/pyarrow/{label(nbytes)}", nbytes,
              lambda: pa.ipc.write_tensor(tensor, pa.FixedSizeBufferWriter(out)))
        dst = np.ones_like(arr)
        bench(f"write_contiguous/numpy_copyto/{label(nbytes)}", nbytes,
              lambda: np.copyto(dst, arr))
        del arr, tensor, out, dst

    # (b) the transposed view
    nbytes = 256 * MIB
    n = nbytes // 4 // (64 * 16)
    base = np.arange(nbytes // 4, dtype=np.float32)
    view = base.reshape(64, n, 16).transpose(1, 0, 2)
    tensor = pa.Tensor.from_numpy(view)
    assert tensor.shape == (n, 64, 16) and tensor.strides == (64, n * 64, 4), tensor.strides
    assert not tensor.is_contiguous
    out = pa.allocate_buffer(pa.ipc.get_tensor_size(tensor))
    np.frombuffer(out, dtype=np.uint8)[:] = 1
    bench(f"write_transposed/pyarrow/{label(nbytes)}", nbytes,
          lambda: pa.ipc.write_tensor(tensor, pa.FixedSizeBufferWriter(out)))
    dst = np.ones_like(base)
    bench(f"write_transposed/numpy_copyto/{label(nbytes)}", nbytes, lambda: np.copyto(dst, base))
    del base, view, tensor, out, dst

    # (c) reads: memory, then mmap'd files
    tmp = tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="pyarrow-bench-")
    paths = []
    for nbytes in (KIB, MIB, 64 * MIB, GIB):
        zeros = np.zeros(nbytes // 4, dtype=np.float32)  # calloc: untouched pages
        tensor = pa.Tensor.from_numpy(zeros)
        buf = pa.allocate_buffer(pa.ipc.get_tensor_size(tensor))
        pa.ipc.write_tensor(tensor, pa.FixedSizeBufferWriter(buf))
        back = pa.ipc.read_tensor(pa.BufferReader(buf))
        assert back.shape == (nbytes // 4,)
        bench(f"read_memory/pyarrow/{label(nbytes)}", 0,
              lambda: pa.ipc.read_tensor(pa.BufferReader(buf)), short=True)
        path = os.path.join(tmp.name, f"f32-{label(nbytes)}.arrow")
        with open(path, "wb") as f:
            f.write(memoryview(buf))
        paths.append((nbytes, path))
        del zeros, tensor, buf, back
    for nbytes, path in paths:
        mm = pa.memory_map(path)

        def read_open():
            mm.seek(0)
            return pa.ipc.read_tensor(mm)

        bench(f"read_mmap/pyarrow/{label(nbytes)}", 0, read_open, short=True)
        mm.close()
    for nbytes, path in paths:
        bench(f"open_read_mmap/pyarrow/{label(nbytes)}", 0,
              lambda: pa.ipc.read_tensor(pa.memory_map(path)), short=True)
    tmp.cleanup()

    meta = {
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "repeats": args.repeats,
        "loops": loops,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "bytes": sizes}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
