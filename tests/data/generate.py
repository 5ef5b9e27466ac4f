#!/usr/bin/env python3
"""Rebuilds the golden vectors in tests/data and writes tests/data/manifest.json.

Needs a Python with pyarrow>=26 and numpy>=2 (nothing else: the hand-built reader cases are
encoded by the small FlatBuffers builder below, a port of the reference Python builder that
reproduces Arrow C++'s bytes).

    python tests/data/generate.py            # rewrite dense/, reader_cases/ and manifest.json
    python tests/data/generate.py --check    # regenerate into a temp dir, compare with the
                                             # committed files byte for byte (exit 1 on diff)
    python tests/data/generate.py --out DIR  # write into DIR instead

What is rebuilt and how:

* dense/*.arrow_tensor: `pa.ipc.write_tensor(pa.Tensor.from_numpy(arr, dim_names=...))` for the
  numpy arrays listed in DENSE (the builds recorded in tests/data/manifest.json).
* reader_cases/*.arrow_tensor: the int32 2x3 tensor (values 0..5) re-encoded with one field,
  the framing or the body changed. The encoder follows Arrow C++'s builder order, so with no
  change it reproduces pyarrow's bytes (checked against every dense case on each run).
* reader_cases/csf_lengths_in_bytes.arrow_sparse_tensor: byte surgery on
  sparse/csf_f64_2x3x4x5_idx_i64_named (CSF index Buffer.length x 8).
* sparse/*.arrow_sparse_tensor: written by Arrow C++ WriteSparseTensor, which pyarrow does not
  expose; they cannot be rebuilt from Python, so only their sha256 is verified (SPARSE_SHA256).

Every reader case is then read with pa.ipc.read_tensor and the outcome is recorded in the
manifest.
"""

import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np
import pyarrow as pa

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------
# Dense cases


def values(dtype, n, rule):
    """The value rules of the reference vectors (tests/data/README.md)."""
    a = np.arange(n)
    if rule == "arange":
        return a.astype(dtype)
    if rule == "arange_minus_half_n":
        return (a - n // 2).astype(dtype)
    if rule == "arange_times_0.5_minus_1":
        return (a * 0.5 - 1.0).astype(dtype)
    raise ValueError(rule)


def family_rule(dtype):
    if dtype.startswith("float"):
        return "arange_times_0.5_minus_1"
    if dtype.startswith("int"):
        return "arange_minus_half_n"
    return "arange"


FAMILY = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float16", "float32", "float64"]

# (file stem, dtype, build, dim names given)
DENSE = [(f"{d}_2x3_c", d, (lambda d=d: values(d, 6, family_rule(d)).reshape(2, 3)), None)
         for d in FAMILY]
DENSE += [
    ("int32_2x3_c_named", "int32",
     lambda: values("int32", 6, "arange").reshape(2, 3), ["row", "col"]),
    ("int64_0d", "int64", lambda: np.array(42, np.int64), None),
    ("float64_0d", "float64", lambda: np.array(-1.5, np.float64), None),
    ("int16_1d_5", "int16", lambda: values("int16", 5, "arange"), None),
    ("uint8_1d_13", "uint8", lambda: values("uint8", 13, "arange"), None),
    ("int8_1d_1", "int8", lambda: values("int8", 1, "arange"), None),
    ("float64_2x3x4_c_named", "float64",
     lambda: values("float64", 24, "arange_times_0.5_minus_1").reshape(2, 3, 4), ["x", "y", "z"]),
    ("int32_0x3_c", "int32", lambda: np.zeros((0, 3), np.int32), None),
    ("int32_3x0_c", "int32", lambda: np.zeros((3, 0), np.int32), None),
    ("float32_2x0x3_c", "float32", lambda: np.zeros((2, 0, 3), np.float32), None),
    ("int64_1d_0", "int64", lambda: np.zeros((0,), np.int64), None),
    ("int32_3x4_f", "int32",
     lambda: np.asfortranarray(values("int32", 12, "arange").reshape(3, 4)), None),
    ("float64_2x3x4_f_named", "float64",
     lambda: np.asfortranarray(values("float64", 24, "arange_times_0.5_minus_1").reshape(2, 3, 4)),
     ["a", "b", "c"]),
    ("int64_4x6_slice_cols_step2", "int64",
     lambda: values("int64", 24, "arange").reshape(4, 6)[:, ::2], None),
    ("int64_4x6_slice_rows_step2", "int64",
     lambda: values("int64", 24, "arange").reshape(4, 6)[::2, :], None),
    ("int64_4x6_transpose", "int64", lambda: values("int64", 24, "arange").reshape(4, 6).T, None),
    ("int16_2x3x4_transpose_102", "int16",
     lambda: values("int16", 24, "arange").reshape(2, 3, 4).transpose(1, 0, 2), ["p", "q", "r"]),
    ("int64_4x6_slice_col_1to2", "int64",
     lambda: values("int64", 24, "arange").reshape(4, 6)[:, 1:2], None),
    ("int32_4x6_slice_inner", "int32",
     lambda: values("int32", 24, "arange").reshape(4, 6)[1:3, 2:5], None),
    ("uint64_named_unicode", "uint64",
     lambda: values("uint64", 4, "arange").reshape(2, 2), ["h\u00f6he", ""]),
]


def jsonable(arr):
    """Values as JSON numbers (float16 widened exactly to float)."""
    if arr.dtype.kind == "f":
        return [float(x) for x in arr]
    return [int(x) for x in arr]


def write_tensor_bytes(tensor):
    sink = pa.BufferOutputStream()
    n = pa.ipc.write_tensor(tensor, sink)
    data = sink.getvalue().to_pybytes()
    assert n == len(data), (n, len(data))
    return data


def dense_case(stem, dtype, build, names):
    arr = build()
    assert arr.dtype == np.dtype(dtype), (stem, arr.dtype)
    # The array whose memory the view covers, and where the view starts in it.
    root = arr
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert root.flags.c_contiguous or root.flags.f_contiguous, stem
    offset = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    base_values = root.ravel(order="K")  # memory order of a contiguous array
    tensor = pa.Tensor.from_numpy(arr, dim_names=names)
    data = write_tensor_bytes(tensor)
    assert pa.ipc.get_tensor_size(tensor) == len(data)
    back = pa.ipc.read_tensor(pa.BufferReader(data))
    logical = np.ascontiguousarray(arr).ravel()
    assert np.array_equal(back.to_numpy().ravel(), logical)
    meta_len = 8 + struct.unpack_from("<i", data, 4)[0]
    entry = {
        "file": f"dense/{stem}.arrow_tensor",
        "dtype": dtype,
        "shape": list(arr.shape),
        "strides": list(tensor.strides),
        "offset": offset,
        "base_values": jsonable(base_values),
        "dim_names": names,
        "is_contiguous": tensor.is_contiguous,
        "written_strides": list(back.strides),
        "written_dim_names": list(back.dim_names),
        "total_size": len(data),
        "metadata_size": meta_len,
        "body_size": len(data) - meta_len,
        "values": jsonable(logical),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return entry, data


# ---------------------------------------------------------------------------------------------
# A minimal FlatBuffers builder (a port of the Python `flatbuffers` Builder, with Arrow C++'s
# vtable deduplication, which compares whole vtables including the object size, and C++'s
# handling of empty vectors, which are not pre-aligned to their element size).


class Builder:
    def __init__(self, size=1 << 16):
        self.buf = bytearray(size)
        self.head = size
        self.minalign = 1
        self.vtable = None
        self.object_end = 0
        self.vtables = {}

    def offset(self):
        return len(self.buf) - self.head

    def pad(self, n):
        self.head -= n
        self.buf[self.head:self.head + n] = bytes(n)

    def prep(self, size, additional):
        self.minalign = max(self.minalign, size)
        self.pad((-(len(self.buf) - self.head + additional)) & (size - 1))

    def place(self, fmt, x):
        self.head -= struct.calcsize(fmt)
        struct.pack_into("<" + fmt, self.buf, self.head, x)

    def prepend(self, fmt, x):
        self.prep(struct.calcsize(fmt), 0)
        self.place(fmt, x)

    def prepend_uoffset(self, off):
        self.prep(4, 0)
        self.place("I", self.offset() - off + 4)

    def start_object(self, n):
        self.vtable = [0] * n
        self.object_end = self.offset()

    def slot(self, i):
        self.vtable[i] = self.offset()

    def add_scalar(self, i, fmt, x, default):
        if x != default:
            self.prepend(fmt, x)
            self.slot(i)

    def add_offset(self, i, off):
        if off:
            self.prepend_uoffset(off)
            self.slot(i)

    def add_buffer_struct(self, i, offset, length):
        """struct Buffer { offset: long; length: long; }, inline."""
        self.prep(8, 16)
        self.place("q", length)
        self.place("q", offset)
        self.slot(i)

    def end_object(self):
        self.prepend("i", 0)
        obj = self.offset()
        fields = [obj - e if e else 0 for e in self.vtable]
        while fields and fields[-1] == 0:
            fields.pop()
        key = (tuple(fields), obj - self.object_end)
        existing = self.vtables.get(key)
        if existing is None:
            for f in reversed(fields):
                self.prepend("H", f)
            self.prepend("H", obj - self.object_end)
            self.prepend("H", (len(fields) + 2) * 2)
            struct.pack_into("<i", self.buf, len(self.buf) - obj, self.offset() - obj)
            self.vtables[key] = self.offset()
        else:
            self.head = len(self.buf) - obj
            struct.pack_into("<i", self.buf, self.head, existing - obj)
        self.vtable = None
        return obj

    def create_string(self, s):
        b = s.encode("utf-8")
        self.prep(4, len(b) + 1)
        self.place("B", 0)
        self.head -= len(b)
        self.buf[self.head:self.head + len(b)] = b
        self.place("I", len(b))
        return self.offset()

    def create_vector(self, fmt, items):
        n = struct.calcsize(fmt)
        self.prep(4, n * len(items))
        if items:  # C++ FlatBuffers >= 23 does not pre-align an empty vector
            self.prep(n, n * len(items))
        for x in reversed(items):
            self.place(fmt, x)
        self.place("I", len(items))
        return self.offset()

    def create_offset_vector(self, offsets):
        self.prep(4, 4 * len(offsets))
        for o in reversed(offsets):
            self.prepend_uoffset(o)
        self.place("I", len(offsets))
        return self.offset()

    def finish(self, root):
        self.prep(self.minalign, 4)
        self.prepend_uoffset(root)
        return bytes(self.buf[self.head:])


TYPE_INT, TYPE_FLOAT, TYPE_BOOL, TYPE_DECIMAL = 2, 3, 6, 7
HEADER_TENSOR = 4
V3, V4, V5 = 2, 3, 4


def encode_tensor_message(value_type, dims, strides, body_length, data=None, version=V5,
                          custom_metadata=None, header_type=HEADER_TENSOR):
    """A flatbuffer Message{Tensor} built in Arrow C++'s order (WriteTensorMessage).

    value_type: ("int", bits, signed) | ("float", precision) | ("bool",) |
                ("decimal", precision, scale, bits); dims: [(size, name or None)];
    strides: list or None (field absent); data: (offset, length), default (0, body_length).
    """
    b = Builder()
    kind = value_type[0]
    if kind == "int":
        b.start_object(2)
        b.add_scalar(0, "i", value_type[1], 0)
        b.add_scalar(1, "?", value_type[2], False)
        type_type = TYPE_INT
    elif kind == "float":
        b.start_object(1)
        b.add_scalar(0, "h", value_type[1], 0)
        type_type = TYPE_FLOAT
    elif kind == "bool":
        b.start_object(0)
        type_type = TYPE_BOOL
    elif kind == "decimal":
        b.start_object(3)
        b.add_scalar(2, "i", value_type[3], 128)
        b.add_scalar(1, "i", value_type[2], 0)
        b.add_scalar(0, "i", value_type[1], 0)
        type_type = TYPE_DECIMAL
    else:
        raise ValueError(kind)
    type_table = b.end_object()
    dim_tables = []
    for size, name in dims:
        name_off = b.create_string(name) if name is not None else 0
        b.start_object(2)
        b.add_scalar(0, "q", size, 0)
        b.add_offset(1, name_off)
        dim_tables.append(b.end_object())
    shape = b.create_offset_vector(dim_tables)
    strides_off = b.create_vector("q", strides) if strides is not None else 0
    custom = 0
    if custom_metadata is not None:
        pairs = []
        for k, v in custom_metadata:
            k_off = b.create_string(k)
            v_off = b.create_string(v)
            b.start_object(2)
            b.add_offset(0, k_off)
            b.add_offset(1, v_off)
            pairs.append(b.end_object())
        custom = b.create_offset_vector(pairs)
    data_offset, data_length = data if data is not None else (0, body_length)
    b.start_object(5)
    b.add_buffer_struct(4, data_offset, data_length)
    b.add_offset(3, strides_off)
    b.add_offset(2, shape)
    b.add_offset(1, type_table)
    b.add_scalar(0, "B", type_type, 0)
    tensor = b.end_object()
    b.start_object(5)
    b.add_scalar(3, "q", body_length, 0)
    b.add_offset(4, custom)
    b.add_offset(2, tensor)
    b.add_scalar(0, "h", version, 0)
    b.add_scalar(1, "B", header_type, 0)
    message = b.end_object()
    return b.finish(message)


def frame(flatbuffer, body, align=64, legacy=False):
    """Current framing (FF FF FF FF, L) or legacy pre-0.15 framing (L only), padded so that
    prefix + L is a multiple of `align`."""
    prefix = 4 if legacy else 8
    length = -(-(len(flatbuffer) + prefix) // align) * align - prefix
    head = b"" if legacy else b"\xff\xff\xff\xff"
    head += struct.pack("<i", length)
    return head + flatbuffer + bytes(length - len(flatbuffer)) + body


def encoder_matches_pyarrow(entry, data):
    """Self-test: the encoder reproduces a pyarrow-written dense message."""
    back = pa.ipc.read_tensor(pa.BufferReader(data))
    dtype = entry["dtype"]
    if dtype.startswith("float"):
        value_type = ("float", {"float16": 0, "float32": 1, "float64": 2}[dtype])
    else:
        value_type = ("int", np.dtype(dtype).itemsize * 8, not dtype.startswith("u"))
    dims = list(zip(back.shape, back.dim_names))
    body = data[entry["metadata_size"]:]
    fb = encode_tensor_message(value_type, dims, list(back.strides), len(body))
    return frame(fb, body) == data


# ---------------------------------------------------------------------------------------------
# Reader cases


I32 = ("int", 32, True)
BODY = struct.pack("<6i", *range(6))
UNNAMED = [(2, ""), (3, "")]
NAMED = [(2, "row"), (3, "col")]


def msg(dims=UNNAMED, strides=(12, 4), body=BODY, body_length=None, value_type=I32, **kw):
    body_length = len(body) if body_length is None else body_length
    strides = list(strides) if strides is not None else None
    if body_length < 0 and "data" not in kw:
        kw["data"] = (0, len(body))
    return encode_tensor_message(value_type, dims, strides, body_length, **kw), body


def framed(parts, **kw):
    return frame(parts[0], parts[1], **kw)


READER_CASES = [
    ("legacy_pre015_align64",
     "pre-0.15 framing: <int32 len><fb><pad> with (4+len)%64==0; no 0xFFFFFFFF",
     lambda: framed(msg(NAMED), legacy=True)),
    ("legacy_pre015_align8", "pre-0.15 framing padded only to 8",
     lambda: framed(msg(NAMED), legacy=True, align=8)),
    ("version_V4", "MetadataVersion V4 (=3)", lambda: framed(msg(NAMED, version=V4))),
    ("version_V3_rejected", "MetadataVersion V3 (=2)", lambda: framed(msg(NAMED, version=V3))),
    ("strides_omitted", "Tensor.strides field absent", lambda: framed(msg(strides=None))),
    ("strides_empty", "Tensor.strides = [] for a 2-d tensor", lambda: framed(msg(strides=[]))),
    ("strides_len_mismatch", "strides has 1 entry for 2-d shape",
     lambda: framed(msg(strides=[4]))),
    ("strides_negative", "negative stride", lambda: framed(msg(strides=[12, -4]))),
    ("strides_overrun", "strides address beyond body", lambda: framed(msg(strides=[24, 4]))),
    ("names_absent",
     "TensorDim.name field absent (C++ writer always writes a string, possibly empty)",
     lambda: framed(msg([(2, None), (3, None)]))),
    ("body_padded_to_64", "bodyLength=64 > 24 needed, zero padded",
     lambda: framed(msg(body=BODY + bytes(40)))),
    ("body_truncated", "bodyLength=64 but only 24 bytes follow",
     lambda: framed(msg(body_length=64))),
    ("data_offset_8", "Tensor.data.offset=8: C++ IGNORES it and reads from body start",
     lambda: framed(msg(body=b"\x07" * 8 + BODY, data=(8, 24)))),
    ("data_length_bogus", "Tensor.data.length=999: ignored by C++",
     lambda: framed(msg(data=(0, 999)))),
    ("custom_metadata", "Message.custom_metadata=[{k:v}]",
     lambda: framed(msg(custom_metadata=[("k", "v")]))),
    ("type_bool", "Type=Bool",
     lambda: framed(msg(value_type=("bool",), strides=(3, 1), body=b"\x01" * 6))),
    ("type_decimal128", "Type=Decimal(10,2,128)",
     lambda: framed(msg(value_type=("decimal", 10, 2, 128), strides=(48, 16), body=bytes(96)))),
    ("eos_only", "end-of-stream marker", lambda: b"\xff\xff\xff\xff\x00\x00\x00\x00"),
]


ARROW_TO_NUMPY = {"int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
                  "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
                  "halffloat": "float16", "float": "float32", "double": "float64"}


BIG = 1 << 62
HEADER_RECORD_BATCH = 3

# Edge cases of the reader's validation, beyond the shared reader cases: crafted messages that
# pyarrow's writer never produces, each read with pyarrow to record what Arrow C++ does.
READER_EDGE_CASES = [
    ("zero_stride", "strides [0, 4]: rows alias (broadcast), accepted",
     lambda: framed(msg(strides=[0, 4], body=BODY[:12]))),
    ("all_zero_strides", "strides [0, 0]: every element is the first one",
     lambda: framed(msg(strides=[0, 0], body=BODY[:4]))),
    ("overlapping_strides", "strides [4, 4]: overlapping rows",
     lambda: framed(msg(strides=[4, 4], body=BODY[:16]))),
    ("size1_axis_huge_stride", "a size-1 axis with stride 2**62 addresses nothing",
     lambda: framed(msg([(1, ""), (3, "")], strides=[BIG, 4], body=BODY[:12]))),
    ("names_partial", "first TensorDim named, second with no name field",
     lambda: framed(msg([(2, "a"), (3, None)]))),
    ("zero_d_no_strides", "0-d tensor, strides absent, 4-byte body",
     lambda: framed(msg([], strides=None, body=struct.pack("<i", 7)))),
    ("zero_d_empty_body", "0-d tensor with an empty body",
     lambda: framed(msg([], strides=[], body=b""))),
    ("body_short_for_shape", "strides absent, 20-byte body for 2x3 int32",
     lambda: framed(msg(strides=None, body=BODY[:20]))),
    ("empty_axis_negative_stride_empty_body",
     "shape [0, 3], strides [-4, 4], empty body: no checks for an empty tensor without data",
     lambda: framed(msg([(0, ""), (3, "")], strides=[-4, 4], body=b""))),
    ("empty_axis_negative_stride_with_body", "shape [3, 0], strides [-4, 4], 24-byte body",
     lambda: framed(msg([(3, ""), (0, "")], strides=[-4, 4]))),
    ("empty_axis_huge_stride_with_body", "shape [3, 0], strides [2**62, 4], 24-byte body",
     lambda: framed(msg([(3, ""), (0, "")], strides=[BIG, 4]))),
    ("stride_offset_overflow", "shape [3], stride 2**62: the last offset overflows",
     lambda: framed(msg([(3, "")], strides=[BIG]))),
    ("row_major_strides_overflow", "shape [2**32, 2**32], strides absent",
     lambda: framed(msg([(1 << 32, ""), (1 << 32, "")], strides=None, body=BODY[:8]))),
    ("negative_dim", "shape [-1, 3]", lambda: framed(msg([(-1, ""), (3, "")], strides=None))),
    ("int128", "Int bitWidth 128",
     lambda: framed(msg([(2, "")], strides=None, value_type=("int", 128, True),
                        body=bytes(32)))),
    ("int7", "Int bitWidth 7",
     lambda: framed(msg([(2, "")], strides=None, value_type=("int", 7, True)))),
    ("future_version", "MetadataVersion 5 (after V5)",
     lambda: framed(msg(version=V5 + 1))),
    ("negative_body_length", "Message.bodyLength = -1",
     lambda: framed(msg(body_length=-1))),
    ("header_type_record_batch", "header_type RecordBatch over a Tensor table",
     lambda: framed(msg(header_type=HEADER_RECORD_BATCH))),
    ("float_unknown_precision", "FloatingPoint precision 7: Arrow C++ reads it as double",
     lambda: framed(msg([(2, "")], strides=None, value_type=("float", 7), body=bytes(16)))),
    ("empty_tensor_huge_dims", "shape [2**40, 2**40, 0], strides absent, empty body",
     lambda: framed(msg([(1 << 40, ""), (1 << 40, ""), (0, "")], strides=None, body=b""))),
    ("empty_tensor_huge_dims_strides", "shape [2**40, 2**40, 0], strides [4, 4, 4], empty body",
     lambda: framed(msg([(1 << 40, ""), (1 << 40, ""), (0, "")], strides=[4, 4, 4],
                        body=b""))),
    ("empty_tensor_dims_product_overflows", "shape [2**62, 4, 0], strides absent, empty body",
     lambda: framed(msg([(BIG, ""), (4, ""), (0, "")], strides=None, body=b""))),
]


def read_outcome(data):
    """What pyarrow's read_tensor makes of a message."""
    try:
        t = pa.ipc.read_tensor(pa.BufferReader(data))
    except Exception as e:  # noqa: BLE001 - the exception is the outcome being recorded
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    if t.size == 0:
        # numpy may refuse the shape of an empty tensor (e.g. 2**40 x 2**40 x 0).
        values = []
    else:
        values = jsonable(np.ascontiguousarray(t.to_numpy()).ravel())
    return {
        "ok": True,
        "dtype": ARROW_TO_NUMPY[str(t.type)],
        "shape": list(t.shape),
        "strides": list(t.strides),
        "dim_names": list(t.dim_names),
        "values": values,
    }


# ---------------------------------------------------------------------------------------------
# Sparse: not reproducible from Python; verified by hash.

SPARSE_SHA256 = {
    "coo_f32_3x4_allzero_idx_i64":
        "3be0620d4740b8f3f911c1af02c527acf7e23feafcca8ba7cb013b6396e2f784",
    "coo_f64_2x3x4x5_idx_i64_named":
        "f6766a6315f7ab5d78de236937413272cbb84b090c52f464d1fbfff588319145",
    "coo_i32_2x3x4x5_idx_i32":
        "f7de7a94c163a78b13a1d837d09d9e269e41b85ed3057b486f09897dfe696d64",
    "coo_i64_3x4_colmajor_coords_noncanonical":
        "a50289570db4f91e5213d895fabdc1a9e87f03deea79a7412bb3d7455aa89a4a",
    "coo_u8_6x4_idx_i8":
        "99e72f693ba36aec9b9dfc30095d6326edca97747583b3b84e78aeb81cf71026",
    "csc_f64_6x4_idx_i64_named":
        "5bd80844cb710de4f708d82a335d3c448694b34a874e24e45b07af4141ef87b9",
    "csc_u8_6x4_idx_i16":
        "bca4868931ab274cd839ff3dee18313746afa661508d2c8eff15419bd8ef8e54",
    "csf_f64_2x3x4x5_idx_i64_named":
        "075ff6b3f88b496c2a1ea48216f8a2143fee9a10b95b15808e1412634081d472",
    "csf_f64_6x4_idx_i64":
        "906f4d190c3a37e5d633018b4ff4db4dd3bde5553e9deda7ad45a3ae5fa71496",
    "csf_i16_2x3x4x5_idx_i32":
        "87ad9d7d45281f2623ca939a10c2b8cd6878c0c8e52813fb17aaf9aec85a99d6",
    "csr_f32_3x4_allzero_idx_i64":
        "b50364bd0a6032b06c304b59f1ec7129ca8433b64fc7b150d64479be8dcab93c",
    "csr_f64_6x4_idx_i64_named":
        "afa1d1d33ef03b06081ebac0d5d56e946d054bd532b4f9290958ad9f873091bd",
    "csr_i32_6x4_idx_i32":
        "b21d09d67d5c44ae16dd0f0e7a256946d3ad2e676155e749dae04a9d612d90bc",
}


def csf_lengths_in_bytes(sparse_csf):
    """CSF indptr/indices Buffer.length multiplied by 8 (element counts -> bytes)."""
    data = bytearray(sparse_csf)
    meta_end = 8 + struct.unpack_from("<i", data, 4)[0]
    # (offset, length) pairs of the index buffers in csf_f64_2x3x4x5_idx_i64_named.
    buffers = [(0, 3), (24, 4), (56, 5), (96, 2), (112, 3), (136, 4), (168, 8)]
    for off, length in buffers:
        needle = struct.pack("<qq", off, length)
        pos = data.find(needle, 8, meta_end)
        assert pos >= 0 and data.find(needle, pos + 1, meta_end) < 0, (off, length)
        struct.pack_into("<qq", data, pos, off, length * 8)
    return bytes(data)


# ---------------------------------------------------------------------------------------------


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def generate(out, sparse_dir):
    """Writes dense/, reader_cases/ and manifest.json under `out`; returns the file list."""
    os.makedirs(os.path.join(out, "dense"), exist_ok=True)
    os.makedirs(os.path.join(out, "reader_cases"), exist_ok=True)
    written = []
    dense = []
    for stem, dtype, build, names in DENSE:
        entry, data = dense_case(stem, dtype, build, names)
        if not encoder_matches_pyarrow(entry, data):
            sys.exit(f"the FlatBuffers encoder does not reproduce pyarrow's {stem}")
        with open(os.path.join(out, entry["file"]), "wb") as f:
            f.write(data)
        written.append(entry["file"])
        dense.append(entry)
    reader = []
    for stem, description, build in READER_CASES:
        data = build()
        rel = f"reader_cases/{stem}.arrow_tensor"
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)
        written.append(rel)
        entry = {"file": rel, "description": description}
        entry.update(read_outcome(data))
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        reader.append(entry)
    os.makedirs(os.path.join(out, "reader_edge"), exist_ok=True)
    edge = []
    for stem, description, build in READER_EDGE_CASES:
        data = build()
        rel = f"reader_edge/{stem}.arrow_tensor"
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)
        written.append(rel)
        entry = {"file": rel, "description": description}
        entry.update(read_outcome(data))
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        edge.append(entry)
    csf_src = os.path.join(sparse_dir, "csf_f64_2x3x4x5_idx_i64_named.arrow_sparse_tensor")
    with open(csf_src, "rb") as f:
        csf = csf_lengths_in_bytes(f.read())
    rel = "reader_cases/csf_lengths_in_bytes.arrow_sparse_tensor"
    with open(os.path.join(out, rel), "wb") as f:
        f.write(csf)
    written.append(rel)
    sparse = [{"file": f"sparse/{name}", "sha256": sha256_file(os.path.join(sparse_dir, name))}
              for name in sorted(os.listdir(sparse_dir)) if name.endswith(".arrow_sparse_tensor")]
    manifest = {
        "about": "Golden vectors for tensor-ipc; see README.md. Regenerate with generate.py.",
        "dense": dense,
        "reader_cases": reader,
        "reader_edge_cases": edge,
        "sparse_reader_cases": [{
            "file": rel,
            "description": "copy of sparse/csf_f64_2x3x4x5_idx_i64_named with CSF "
                           "indptr/indices Buffer.length given in BYTES (x8) instead of "
                           "element counts",
            "cpp_26_ReadSparseTensor": "succeeds silently but decodes garbage: nnz=64, extra "
                                       "bogus non-zeros (C++ treats these lengths as element "
                                       "counts)",
            "sha256": hashlib.sha256(csf).hexdigest(),
        }],
        "sparse": sparse,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    written.append("manifest.json")
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temp dir and compare with the committed files")
    parser.add_argument("--out", default=HERE, help="output directory (default: tests/data)")
    args = parser.parse_args()
    if int(pa.__version__.split(".")[0]) < 26 or int(np.__version__.split(".")[0]) < 2:
        sys.exit(f"need pyarrow>=26 and numpy>=2, have {pa.__version__} / {np.__version__}")
    sparse_dir = os.path.join(HERE, "sparse")
    bad = [f"sparse/{n}" for n, h in SPARSE_SHA256.items()
           if sha256_file(os.path.join(sparse_dir, n + ".arrow_sparse_tensor")) != h]
    if not args.check:
        generate(args.out, sparse_dir)
        print(f"wrote {args.out}")
        if bad:
            sys.exit(f"sparse vectors differ from their recorded sha256: {bad}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(tmp, sparse_dir)
        for rel in files:
            with open(os.path.join(tmp, rel), "rb") as f:
                new = f.read()
            path = os.path.join(HERE, rel)
            old = open(path, "rb").read() if os.path.exists(path) else None
            if new != old:
                bad.append(rel)
            print(f"{'ok  ' if new == old else 'DIFF'} {rel}")
    print(f"sparse: {len(SPARSE_SHA256) - sum(b.startswith('sparse/') for b in bad)}/"
          f"{len(SPARSE_SHA256)} match their recorded sha256")
    if bad:
        sys.exit(f"{len(bad)} file(s) differ: {', '.join(bad)}")
    print(f"all {len(files)} regenerated files are identical to the committed ones")


if __name__ == "__main__":
    main()
