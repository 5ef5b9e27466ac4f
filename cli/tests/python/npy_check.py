#!/usr/bin/env python3
"""Cross-checks `tensor-ipc convert` against NumPy and pyarrow (pyarrow>=26, numpy>=2).

Driven by `tests/cli.rs` (`npy_conversions_match_pyarrow`):

    npy_check.py gen DIR    writes DIR/<case>.npy for every case, the bytes pyarrow writes for
                            it, DIR/<case>.expected.arrow_tensor =
                            pa.ipc.write_tensor(pa.Tensor.from_numpy(np.load(<case>.npy))),
                            and DIR/cases.txt (one case name per line).
    npy_check.py check DIR  after the Rust test has converted <case>.npy to
                            <case>.rust.arrow_tensor and that back to <case>.back.npy: checks
                            that np.load(<case>.back.npy) equals np.load(<case>.npy) in dtype
                            (bool becomes uint8, as pyarrow maps it), shape, values (bit for bit)
                            and memory order, that its bytes are what np.save writes for the same
                            array, and that pyarrow reads <case>.rust.arrow_tensor to the same
                            array.

Exits non-zero with one message per failed case.
"""

import io
import os
import sys

import numpy as np
import pyarrow as pa

DTYPES = [
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bool",
]


def values(dtype, shape):
    """Deterministic values exercising signs, NaN, infinities and -0.0."""
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "bool":
        return (np.arange(n) % 3 == 0).reshape(shape)
    if dtype.startswith("float"):
        v = (np.arange(n, dtype=np.float64) * 0.75 - n / 3).astype(dtype)
        special = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype)
        v[: min(n, 4)] = special[: min(n, 4)]
        return v.reshape(shape)
    info = np.iinfo(dtype)
    v = np.arange(n, dtype=np.int64) * 37 - n
    v = np.where(v < info.min, info.min, v)
    v = np.where(v > info.max, info.max, v).astype(dtype)
    if n >= 2:
        v[0], v[-1] = info.min, info.max
    return v.reshape(shape)


def write_raw(path, dtype, shape, fortran, data, version=(1, 0)):
    """A .npy file written header-first, for headers np.save would not produce."""
    with open(path, "wb") as f:
        header = {"descr": np.dtype(dtype).str, "fortran_order": fortran, "shape": shape}
        if version == (1, 0):
            np.lib.format.write_array_header_1_0(f, header)
        else:
            np.lib.format.write_array_header_2_0(f, header)
        f.write(data.tobytes(order="F" if fortran else "C"))


def write_versioned(path, array, version):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version)


def cases():
    """(name, writer) pairs; each writer saves the case to a path."""
    out = []
    for dt in DTYPES:
        out.append((f"{dt}_2x3_c", lambda p, dt=dt: np.save(p, values(dt, (2, 3)))))
        out.append((f"{dt}_3x4_f", lambda p, dt=dt: np.save(p, np.asfortranarray(values(dt, (3, 4))))))
        out.append((f"{dt}_0d", lambda p, dt=dt: np.save(p, values(dt, ()))))
        out.append((f"{dt}_empty_0x3", lambda p, dt=dt: np.save(p, values(dt, (0, 3)))))
    more = {
        "float64_2x3x4_f": lambda p: np.save(p, np.asfortranarray(values("float64", (2, 3, 4)))),
        "int16_4x5x6_transposed": lambda p: np.save(p, values("int16", (4, 5, 6)).transpose(2, 0, 1)),
        "int32_4x6_slice": lambda p: np.save(p, values("int32", (4, 6))[:, ::2]),
        "int64_6x4_transpose": lambda p: np.save(p, values("int64", (4, 6)).T),
        "uint8_1d_13": lambda p: np.save(p, values("uint8", (13,))),
        "float32_1d_0": lambda p: np.save(p, values("float32", (0,))),
        "float32_2x0x3_f": lambda p: np.save(p, np.asfortranarray(values("float32", (2, 0, 3)))),
        "float32_3x0_f": lambda p: np.save(p, np.asfortranarray(values("float32", (3, 0)))),
        "uint16_1x5": lambda p: np.save(p, values("uint16", (1, 5))),
        "uint16_5x1_f": lambda p: np.save(p, np.asfortranarray(values("uint16", (5, 1)))),
        "float16_7x9x2_f": lambda p: np.save(p, np.asfortranarray(values("float16", (7, 9, 2)))),
        "int8_big_c": lambda p: np.save(p, values("int8", (3, 70001))),
        # Headers np.save does not write: Fortran order flagged for a shape that is also
        # C-contiguous, and format versions 2.0 and 3.0.
        "float64_3x1_f_flagged": lambda p: write_raw(
            p, "float64", (3, 1), True, values("float64", (3, 1))),
        "int32_1d_5_f_flagged": lambda p: write_raw(p, "int32", (5,), True, values("int32", (5,))),
        "uint32_2x3_v2": lambda p: write_raw(
            p, "uint32", (2, 3), False, values("uint32", (2, 3)), version=(2, 0)),
        "int64_3x2_f_v3": lambda p: write_versioned(
            p, np.asfortranarray(values("int64", (3, 2))), (3, 0)),
    }
    out.extend(more.items())
    return out


def arrow_bytes(array):
    sink = pa.BufferOutputStream()
    pa.ipc.write_tensor(pa.Tensor.from_numpy(array), sink)
    return sink.getvalue().to_pybytes()


def gen(directory):
    names = []
    for name, writer in cases():
        path = os.path.join(directory, name + ".npy")
        writer(path)
        with open(os.path.join(directory, name + ".expected.arrow_tensor"), "wb") as f:
            f.write(arrow_bytes(np.load(path)))
        names.append(name)
    with open(os.path.join(directory, "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


def header_of(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        return np.lib.format.read_array_header_2_0(f)


def check_case(directory, name):
    base = os.path.join(directory, name)
    original = np.load(base + ".npy")
    back = np.load(base + ".back.npy")
    want = original.view(np.uint8) if original.dtype == np.bool_ else original
    problems = []
    if back.dtype != want.dtype:
        problems.append(f"dtype {back.dtype} != {want.dtype}")
    if back.shape != want.shape:
        problems.append(f"shape {back.shape} != {want.shape}")
    elif np.ascontiguousarray(back).tobytes() != np.ascontiguousarray(want).tobytes():
        problems.append("values differ")
    # Order: np.save decides it from the loaded array's flags, and so must the CLI.
    expect_fortran = want.flags.f_contiguous and not want.flags.c_contiguous
    _, back_fortran, _ = header_of(base + ".back.npy")
    if back_fortran != expect_fortran:
        problems.append(f"fortran_order {back_fortran}, expected {expect_fortran}")
    saved = io.BytesIO()
    np.save(saved, want)
    with open(base + ".back.npy", "rb") as f:
        if f.read() != saved.getvalue():
            problems.append("bytes differ from np.save of the same array")
    with pa.memory_map(base + ".rust.arrow_tensor") as source:
        read = pa.ipc.read_tensor(source).to_numpy()
        if read.dtype != want.dtype or read.shape != want.shape or (
            np.ascontiguousarray(read).tobytes() != np.ascontiguousarray(want).tobytes()
        ):
            problems.append("pyarrow reads the Rust tensor file as a different array")
    return [f"{name}: {p}" for p in problems]


def check(directory):
    with open(os.path.join(directory, "cases.txt")) as f:
        names = [line.strip() for line in f if line.strip()]
    problems = []
    for name in names:
        problems.extend(check_case(directory, name))
    for p in problems:
        print(p, file=sys.stderr)
    print(f"checked {len(names)} cases, {len(problems)} problems")
    return 1 if problems else 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("gen", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "gen":
        gen(argv[2])
        return 0
    return check(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
