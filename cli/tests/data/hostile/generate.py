#!/usr/bin/env python3
"""Generates the hostile-file corpus of the CLI (cli/tests/hostile.rs) and its expected.json.

Plain Python 3, no dependencies. Run from anywhere:

    python3 cli/tests/data/hostile/generate.py

It rewrites every `*.npy` and `*.arrow_tensor` file here and `expected.json`; the output is
deterministic, so a rerun must leave `git status` clean. Sparse messages are laid out by the
core corpus's builder (tests/data/hostile/generate.py, imported).

Each case is one `tensor-ipc convert IN OUT [ARGS]`: a .npy becomes a tensor message, a
message becomes a .npy. expected.json maps each file to:
  args         the extra arguments (`--to csr`, ...);
  expect       "ok" (exit 0, the output written) or "error" (exit 1, one error line);
  message      for an error, a part of that line;
  shape        for "ok", the shape of the tensor written (checked by reading it back);
  description  what the file is.
The replay runs each case under a 1 GiB address-space limit and a time bound.
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "data", "hostile"))
import generate as core  # noqa: E402  (the core corpus's FlatBuffer builder)

CASES = {}


def case(name, data, expect, description, args=(), message=None, shape=None):
    assert name not in CASES, name
    assert (expect == "error") == (message is not None), name
    entry = {"args": list(args), "expect": expect, "description": description}
    if message is not None:
        entry["message"] = message
    if shape is not None:
        entry["shape"] = list(shape)
    CASES[name] = (data, entry)


def npy(descr, shape, data=b"", fortran=False, version=1, descr_literal=None):
    """A .npy file with numpy's header layout; `descr_literal` replaces the quoted descr."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    d = descr_literal if descr_literal is not None else repr(descr)
    text = "{'descr': %s, 'fortran_order': %s, 'shape': (%s), }" % (
        d, "True" if fortran else "False", dims)
    prefix = 10 if version == 1 else 12
    text += " " * (64 - (prefix + len(text) + 1) % 64) + "\n"
    length = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text.encode() + data


HUGE = {"2_pow_62": 2**62, "2_pow_36": 2**36, "i64_max": 2**63 - 1, "2_pow_32": 2**32}
INDPTR_LIMIT = 64 << 30  # --max-output-bytes by default

# Zero axes beside huge ones, both orders, every output.
for label, n in HUGE.items():
    for shape in [(0, n), (n, 0)]:
        order = "0_by_" + label if shape[0] == 0 else label + "_by_0"
        for to in ["dense", "coo", "csr", "csc", "csf"]:
            name = f"zero_axis_{order}_to_{to}.npy"
            compressed = {"csr": shape[0], "csc": shape[1]}.get(to, 0)
            indptr_bytes = (compressed + 1) * 8
            desc = f"float64 {shape} (no element) converted --to {to}"
            if indptr_bytes > INDPTR_LIMIT:
                case(name, npy("<f8", shape), "error", desc + ": the indptr exceeds the bound",
                     ["--to", to], message="(--max-output-bytes)")
            elif compressed > 2**20:
                # Under the bound, beyond a 1 GiB address space: a refused allocation.
                case(name, npy("<f8", shape), "error", desc + ": its indptr cannot be had",
                     ["--to", to], message="cannot allocate")
            else:
                case(name, npy("<f8", shape), "ok", desc, ["--to", to], shape=shape)
for shape in [(0, 2**40, 3), (3, 0, 2**61), (2**62, 2**62, 0)]:
    for to in ["dense", "coo", "csf"]:
        label = "x".join(str(d) for d in shape)
        case(f"zero_axis_3d_{label}_to_{to}.npy", npy("<i4", shape), "ok",
             f"int32 {shape} (no element) --to {to}", ["--to", to], shape=shape)
case("rows_2_pow_20_by_0_to_csr.npy", npy("<f8", (2**20, 0)), "ok",
     "2^20 empty rows: an 8 MiB indptr, under every bound", ["--to", "csr"],
     shape=(2**20, 0))
case("rows_2_pow_20_by_0_to_csr_bounded.npy", npy("<f8", (2**20, 0)), "error",
     "the same under --max-output-bytes 1M", ["--to", "csr", "--max-output-bytes", "1M"],
     message="more than the limit of 1048576 bytes")
case("product_overflow.npy", npy("<f8", (2**32, 2**32)), "error",
     "a shape whose byte size overflows 64 bits", message="too large")
# Dimensions beyond 2^63 - 1 (numpy's intp, Arrow's int64), harmless beside a zero axis in
# bytes, refused by numpy and unwritable as Arrow (found by the npy fuzz target).
for label, shape in [("0_by_2_pow_63", (0, 2**63)), ("u64_max_by_0", (2**64 - 1, 0))]:
    case(f"dimension_beyond_i64_{label}.npy", npy("<f4", shape), "error",
         f"float32 {shape}: a dimension numpy and Arrow cannot hold", message="dimension too large")

# Truncated and padded files.
valid = npy("<f8", (2, 3), struct.pack("<6d", *range(6)))
case("valid_f8_2x3.npy", valid, "ok", "control: float64 (2, 3)", shape=(2, 3))
case("valid_f8_2x3_to_csr.npy", valid, "ok", "control: float64 (2, 3) --to csr",
     ["--to", "csr"], shape=(2, 3))
case("valid_f8_2x3_fortran.npy", npy("<f8", (2, 3), bytes(48), fortran=True), "ok",
     "control: Fortran order", ["--to", "csc"], shape=(2, 3))
for cut in [0, 5, 9, 40, 127, 128 + 47]:
    case(f"truncated_at_{cut}.npy", valid[:cut], "error",
         f"the valid file cut after {cut} bytes",
         message="truncated" if cut not in (0, 5) else "npy")
case("extra_bytes.npy", valid + b"\0", "error", "one byte after the data",
     message="unexpected bytes")
case("header_length_past_end_v2.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{", "error",
     "a version 2.0 header length of 4 GiB", message="truncated header")

# Structured dtypes.
for label, literal in [("one_field", "[('a', '<f8')]"),
                       ("two_fields", "[('x', '<i4'), ('y', '<f4')]"),
                       ("nested", "[('a', [('b', '|u1')])]"),
                       ("subarray", "[('a', '<f8', (2,))]")]:
    case(f"structured_{label}.npy", npy(None, (2,), bytes(64), descr_literal=literal),
         "error", f"a structured dtype {literal}",
         message="structured dtypes are not supported")

# Every spelling of supported dtypes: the canonical ones convert, the others are refused.
CANONICAL = {"<f8": 8, "=f8": 8, "|u1": 1, "<u1": 1, "|i1": 1, "|b1": 1, "<i2": 2, "<i4": 4,
             "=i8": 8, "<u2": 2, "<u4": 4, "<u8": 8, "<f2": 2, "<f4": 4}
OTHER = ["<d", "d", "=d", "float64", "float", "f8", "l", "<l", "int", "int64", "i", "b",
         "int8", "B", "?", "|?", "bool", "b1", "e", "f", "<f", "float32", "h", "H", "I", "L"]


def label_of(descr):
    return (descr.replace("<", "lt_").replace(">", "gt_").replace("|", "pipe_")
            .replace("=", "eq_").replace("?", "qmark"))


for descr, width in CANONICAL.items():
    case(f"dtype_{label_of(descr)}.npy", npy(descr, (3,), bytes(3 * width)), "ok",
         f"dtype {descr!r}", ["--to", "coo"], shape=(3,))
for descr in OTHER:
    case(f"dtype_alias_{label_of(descr)}.npy", npy(descr, (3,), bytes(24)), "error",
         f"dtype {descr!r}: numpy reads it, np.save never writes it",
         message="not in the form np.save writes")
for descr in [">f8", ">i4"]:
    case(f"dtype_{label_of(descr)}.npy", npy(descr, (3,), bytes(24)), "error",
         f"big-endian dtype {descr!r}", message="big-endian")
for descr in ["<c16", "O", "<U3", "<M8[s]"]:
    case(f"dtype_unsupported_{label_of(descr).replace('[', '_').replace(']', '')}.npy",
         npy(descr, (3,), bytes(48)), "error", f"unsupported dtype {descr!r}",
         message="unsupported dtype")

# Sparse messages converted to .npy: huge declared counts and shapes, huge dense forms.
coo, csr, csf = core.coo_message, core.csr_message, core.csf_message
OK = dict(coords=[(0, 1), (2, 3)], values=[1.5, -2.0])
IPTR, IDX = [[0, 1, 2]], [[0, 2], [1, 3]]
for label, data, message in [
    ("coo_0d_nnz_2_pow_40", coo(coords=[()], values=[2.5], shape=(), nnz=2**40),
     "does not hold"),
    ("coo_0d_nnz_i64_max", coo(coords=[()], values=[2.5], shape=(), nnz=2**63 - 1),
     "overflows"),
    ("coo_nnz_2_pow_40", coo(**OK, nnz=2**40), "does not hold"),
    ("coo_nnz_2_pow_62", coo(**OK, nnz=2**62), "overflows"),
    ("csr_nnz_2_pow_40", csr([0, 1, 1, 2], [1, 3], [1.5, -2.0], nnz=2**40), "inconsistent"),
    ("csc_nnz_2_pow_40", csr([0, 1, 1, 1, 2], [1, 2], [1.5, -2.0], axis=1, nnz=2**40),
     "inconsistent"),
    ("csr_rows_2_pow_40", csr([0, 1, 1, 2], [1, 3], [1.5, -2.0], shape=(2**40, 4)),
     "inconsistent"),
    ("csf_nnz_2_pow_40", csf(IPTR, IDX, [0, 1], [1.5, -2.0], (3, 4), nnz=2**40),
     "inconsistent"),
    ("coo_dense_2_pow_70_bytes", coo(**OK, shape=(2**35, 2**32)), "overflows"),
    ("coo_dense_128_gib", coo(**OK, shape=(2**17, 2**17)), "(--max-output-bytes)"),
    ("coo_dense_2_gib", coo(**OK, shape=(2**14, 2**14)), "cannot allocate"),
    ("coo_truncated", coo(**OK)[:-9], "truncated"),
]:
    case(f"sparse_{label}.arrow_tensor", data, "error", f"sparse message {label} to .npy",
         message=message)
case("sparse_coo_0d_valid.arrow_tensor", coo(coords=[()], values=[2.5], shape=()), "ok",
     "control: a 0-d COO to .npy", shape=())
case("sparse_csf_valid.arrow_tensor", csf(IPTR, IDX, [0, 1], [1.5, -2.0], (3, 4)), "ok",
     "control: a CSF to .npy", shape=(3, 4))


def main():
    for old in os.listdir(HERE):
        if old.endswith((".npy", ".arrow_tensor")):
            os.remove(os.path.join(HERE, old))
    expected = {}
    for name, (data, entry) in CASES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        expected[name] = entry
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(CASES)} files")


if __name__ == "__main__":
    main()
