#!/usr/bin/env python3
"""Generates the hostile-input corpus of tests/hostile.rs and its expected.json.

Plain Python 3, no dependencies: the FlatBuffers are laid out by hand (by the small builder
below), which is what lets a case put a vtable, an offset or a length exactly where it should
not be. Run from anywhere:

    python3 tests/data/hostile/generate.py

It rewrites every `*.bin` file here and `expected.json`; the output is deterministic (random
cases use fixed seeds), so a rerun must leave `git status` clean.

expected.json maps each file to:
  expect       outcome of reading messages in a loop with the default ReadOptions until the
               end of the stream or the first error (tensor messages are also validated as
               tensors): "ok" (at least one message, then a clean end), "eos" (no message at
               all), or the name of the tensor_ipc::Error variant of the first failure;
  strict       the same with the fuzz crate's strict options (alignment required, metadata
               limited to 4096 bytes), when it differs;
  read_tensor  outcome of one read_tensor call with the default options, when it differs
               from `expect` ("eos" becomes "EndOfStream");
  description  what the file is.
"""

import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# Union and enum codes of the Arrow format (Message.fbs, Schema.fbs).
HDR_NONE, HDR_SCHEMA, HDR_DICT, HDR_RECORDBATCH, HDR_TENSOR, HDR_SPARSE = range(6)
T_NONE, T_NULL, T_INT, T_FLOAT, T_BINARY, T_UTF8, T_BOOL, T_DECIMAL = range(8)
V1, V2, V3, V4, V5 = range(5)
HALF, SINGLE, DOUBLE = range(3)

SCALAR = {"u8": ("<B", 1), "bool": ("<B", 1), "i8": ("<b", 1), "i16": ("<h", 2),
          "i32": ("<i", 4), "u32": ("<I", 4), "i64": ("<q", 8)}


# ---------------------------------------------------------------------------------------------
# A forward FlatBuffer builder: objects are laid out parent first, children after, so every
# uoffset points forward as the format requires, and any field can be overridden.


class Table:
    """fields: {slot: (kind, value)}; kind is a SCALAR key, "struct" (value = (bytes, align))
    or "off" (value = a child object). Overrides: `soffset` (raw vtable soffset), `vtable`
    (raw vtable bytes replacing the computed one), `vt_slots` (vtable slot count)."""

    def __init__(self, fields, soffset=None, vtable=None, vt_slots=None, patch=None):
        self.fields = fields
        self.soffset = soffset
        self.vtable = vtable
        self.vt_slots = vt_slots
        self.patch = patch  # function(vtable_field_offsets dict) -> dict, to corrupt offsets


class Vector:
    """A vector of scalars (kind = a SCALAR key), of structs (kind = ("struct", size, align)),
    or of offsets (kind = "off"). `length` overrides the stored element count."""

    def __init__(self, kind, items, length=None):
        self.kind = kind
        self.items = items
        self.length = length


class String:
    def __init__(self, data, length=None):
        self.data = data if isinstance(data, bytes) else data.encode()
        self.length = length


class Builder:
    def __init__(self):
        self.buf = bytearray()
        self.placed = {}

    def align(self, n, extra=0):
        while (len(self.buf) + extra) % n:
            self.buf.append(0)

    def put(self, fmt, value):
        self.buf += struct.pack(fmt, value)

    def finish(self, root, root_offset=None):
        self.buf += b"\0\0\0\0"
        queue = [(0, root)]
        while queue:
            slot, obj = queue.pop(0)
            if id(obj) in self.placed:
                pos = self.placed[id(obj)]
            else:
                pos, children = self.place(obj)
                self.placed[id(obj)] = pos
                queue.extend(children)
            struct.pack_into("<I", self.buf, slot, pos - slot)
        if root_offset is not None:
            struct.pack_into("<I", self.buf, 0, root_offset)
        self.align(8)
        return bytes(self.buf)

    def place(self, obj):
        if isinstance(obj, String):
            self.align(4)
            pos = len(self.buf)
            self.put("<I", len(obj.data) if obj.length is None else obj.length)
            self.buf += obj.data + b"\0"
            return pos, []
        if isinstance(obj, Vector):
            return self.place_vector(obj)
        return self.place_table(obj)

    def place_vector(self, v):
        n = len(v.items) if v.length is None else v.length
        if v.kind == "off":
            self.align(4)
            pos = len(self.buf)
            self.put("<I", n)
            children = []
            for item in v.items:
                children.append((len(self.buf), item))
                self.put("<I", 0)
            return pos, children
        if isinstance(v.kind, tuple):
            _, size, align = v.kind
            self.align(max(align, 4), 4)
            pos = len(self.buf)
            self.put("<I", n)
            for item in v.items:
                assert len(item) == size
                self.buf += item
            return pos, []
        fmt, size = SCALAR[v.kind]
        self.align(max(size, 4), 4)
        pos = len(self.buf)
        self.put("<I", n)
        for item in v.items:
            self.put(fmt, item)
        return pos, []

    def place_table(self, t):
        def size_align(kind, value):
            if kind == "off":
                return 4, 4
            if kind == "struct":
                return len(value[0]), value[1]
            return SCALAR[kind][1], SCALAR[kind][1]

        order = sorted(t.fields.items(), key=lambda kv: -size_align(*kv[1])[1])
        wide = any(size_align(*v)[1] == 8 for _, v in order)
        # The table starts at 4 (mod 8) when it has 8-byte fields, at 0 (mod 4) otherwise, so
        # field offsets (relative to the start) are aligned for that base.
        base = 4 if wide else 0
        offsets, cur = {}, 4
        for slot, (kind, value) in order:
            size, align = size_align(kind, value)
            while (base + cur) % align:
                cur += 1
            offsets[slot] = cur
            cur += size
        table_size = cur
        nslots = t.vt_slots if t.vt_slots is not None else (max(t.fields) + 1 if t.fields else 0)
        vt_offsets = {s: offsets.get(s, 0) for s in range(nslots)}
        if t.patch:
            vt_offsets = t.patch(vt_offsets)
        vtable = t.vtable
        if vtable is None:
            vtable = struct.pack("<HH", 4 + 2 * nslots, table_size)
            vtable += b"".join(struct.pack("<H", vt_offsets[s]) for s in range(nslots))
        self.align(2)
        vt_pos = len(self.buf)
        self.buf += vtable
        self.align(8 if wide else 4, 4 if wide else 0)
        start = len(self.buf)
        self.put("<i", start - vt_pos if t.soffset is None else t.soffset)
        self.buf += bytes(table_size - 4)
        children = []
        for slot, (kind, value) in t.fields.items():
            at = start + offsets[slot]
            if kind == "off":
                children.append((at, value))
            elif kind == "struct":
                self.buf[at:at + len(value[0])] = value[0]
            else:
                struct.pack_into(SCALAR[kind][0], self.buf, at, value)
        return start, children


# ---------------------------------------------------------------------------------------------
# Arrow tables.

INT_BITS = {"int8": (8, True), "int16": (16, True), "int32": (32, True), "int64": (64, True),
            "uint8": (8, False), "uint16": (16, False), "uint32": (32, False),
            "uint64": (64, False)}
FLOAT_PREC = {"float16": HALF, "float32": SINGLE, "float64": DOUBLE}
WIDTH = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2, "int32": 4,
         "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8}


def int_type(bits, signed=True):
    return T_INT, Table({0: ("i32", bits), 1: ("bool", int(signed))})


def dtype_type(name):
    if name in INT_BITS:
        return int_type(*INT_BITS[name])
    return T_FLOAT, Table({0: ("i16", FLOAT_PREC[name])})


def buffer_struct(offset, length):
    return (struct.pack("<qq", offset, length), 8)


def tensor_table(dtype="int32", shape=(2, 3), strides=None, names=None, body_len=None,
                 type_pair=None, shape_vec=None, strides_vec=None, omit=(), **table_kw):
    type_type, type_table = type_pair if type_pair is not None else dtype_type(dtype)
    dims = []
    for i, size in enumerate(shape):
        fields = {0: ("i64", size)}
        if names is not None:
            fields[1] = ("off", String(names[i]))
        dims.append(Table(fields))
    fields = {
        0: ("u8", type_type),
        1: ("off", type_table),
        2: ("off", shape_vec if shape_vec is not None else Vector("off", dims)),
        4: ("struct", buffer_struct(0, body_len or 0)),
    }
    if strides_vec is not None:
        fields[3] = ("off", strides_vec)
    elif strides is not None:
        fields[3] = ("off", Vector("i64", list(strides)))
    for slot in omit:
        fields.pop(slot, None)
    return Table(fields, **table_kw)


def message_table(header_type, header, body_len, version=V5, extra=None, **table_kw):
    fields = {0: ("i16", version), 1: ("u8", header_type), 3: ("i64", body_len)}
    if header is not None:
        fields[2] = ("off", header)
    if version is None:
        del fields[0]
    fields.update(extra or {})
    return Table(fields, **table_kw)


def flatbuffer(root, **kw):
    return Builder().finish(root, **kw)


def frame(fb, body=b"", align=64, legacy=False, metadata_len=None):
    """Frames a flatbuffer as a message: prefix, flatbuffer, zero padding, body."""
    prefix = 4 if legacy else 8
    length = len(fb) + (-(prefix + len(fb)) % align)
    out = bytearray()
    if not legacy:
        out += b"\xff\xff\xff\xff"
    out += struct.pack("<i", length if metadata_len is None else metadata_len)
    out += fb + bytes(length - len(fb))
    return bytes(out) + body


def body_of(dtype, n):
    width = WIDTH[dtype]
    return bytes((i * 37 + 11) & 0xFF for i in range(n * width))


def tensor_message(dtype="int32", shape=(2, 3), strides=None, names=None, body=None,
                   body_len=None, version=V5, legacy=False, align=64, **tensor_kw):
    if body is None:
        n = 1
        for d in shape:
            n *= d
        body = body_of(dtype, n)
    blen = len(body) if body_len is None else body_len
    table = tensor_table(dtype, shape, strides, names, blen, **tensor_kw)
    fb = flatbuffer(message_table(HDR_TENSOR, table, blen, version))
    return frame(fb, body, align=align, legacy=legacy)


def raw_tensor_fb(header_type=HDR_TENSOR, header=None, body_len=24, version=V5, **kw):
    header = header if header is not None else tensor_table(body_len=body_len)
    return flatbuffer(message_table(header_type, header, body_len, version), **kw)


def record_batch_table(length=6):
    node = struct.pack("<qq", length, 0)
    buf = struct.pack("<qq", 0, 0) + struct.pack("<qq", 0, 24)
    return Table({
        0: ("i64", length),
        1: ("off", Vector(("struct", 16, 8), [node])),
        2: ("off", Vector(("struct", 16, 8), [buf[:16], buf[16:]])),
    })


def field_table(children=(), name="f"):
    fields = {0: ("off", String(name)), 1: ("bool", 1), 2: ("u8", T_INT),
              3: ("off", int_type(32)[1])}
    if children is not None:
        fields[5] = ("off", Vector("off", list(children)))
    return Table(fields)


def schema_message(fields):
    schema = Table({0: ("i16", 0), 1: ("off", Vector("off", fields))})
    return frame(flatbuffer(message_table(HDR_SCHEMA, schema, 0)))


# ---------------------------------------------------------------------------------------------
# The cases.

CASES = []


def case(name, data, expect, description, strict=None, read_tensor=None):
    CASES.append((name + ".bin", data, expect, description, strict, read_tensor))


EOS = b"\xff\xff\xff\xff\0\0\0\0"
I32_MAX = 2**31 - 1
I64_MAX = 2**63 - 1
VALID = tensor_message()

# Controls: built by the same builder, they must read.
case("valid_int32_2x3", VALID, "ok", "control: int32 2x3 row-major, built by this generator")
case("valid_float64_named_strided", tensor_message("float64", (3, 2), strides=(8, 24),
     names=["a", "b"]), "ok", "control: float64 3x2 column-major strides, named dims")
case("valid_then_eos_then_garbage", VALID + EOS + b"\x13\x37" * 20, "ok",
     "a valid tensor, the end-of-stream marker, then garbage that must never be read")

# Framing.
case("empty", b"", "eos", "no bytes at all")
case("one_byte", b"\xff", "Truncated", "1 byte")
case("two_bytes", b"\xff\xff", "Truncated", "2 bytes")
case("three_bytes", b"\xff\xff\xff", "Truncated", "3 bytes")
case("continuation_only", b"\xff\xff\xff\xff", "Truncated",
     "the continuation marker alone, no metadata length")
case("continuation_plus_3_bytes", b"\xff\xff\xff\xff\x10\x00\x00", "Truncated",
     "the continuation marker and 3 of the 4 length bytes")
case("eos_continuation_form", EOS, "eos", "the end-of-stream marker FFFFFFFF 00000000")
case("eos_legacy_form_then_garbage", b"\0\0\0\0" + b"\xde\xad\xbe\xef" * 4, "eos",
     "the legacy end-of-stream marker 00000000, then garbage")
case("invalid_continuation_fffffffe", b"\xfe\xff\xff\xff" + bytes(60), "InvalidContinuation",
     "prefix FEFFFFFF: negative, not the continuation marker")
case("invalid_continuation_i32_min", b"\0\0\0\x80" + bytes(60), "InvalidContinuation",
     "prefix 0x80000000 (i32::MIN)")
case("negative_metadata_length", b"\xff\xff\xff\xff" + struct.pack("<i", -64) + bytes(64),
     "NegativeMetadataLength", "continuation marker then metadata length -64")
case("negative_metadata_length_i32_min", b"\xff\xff\xff\xff" + struct.pack("<i", -2**31),
     "NegativeMetadataLength", "continuation marker then metadata length i32::MIN")
case("continuation_twice", b"\xff\xff\xff\xff" * 2 + bytes(56), "NegativeMetadataLength",
     "the continuation marker where the length should be (length -1)")
case("metadata_len_i32_max_nothing_after", b"\xff\xff\xff\xff" + struct.pack("<i", I32_MAX),
     "MetadataTooLarge", "metadata length 2^31-1 and no bytes after it")
case("metadata_len_i32_max_16_bytes", b"\xff\xff\xff\xff" + struct.pack("<i", I32_MAX) +
     bytes(8), "MetadataTooLarge", "metadata length 2^31-1 in a 16-byte input")
case("metadata_len_at_default_limit_truncated",
     b"\xff\xff\xff\xff" + struct.pack("<i", 16 << 20) + bytes(56), "Truncated",
     "metadata length exactly the 16 MiB default limit, 56 bytes present",
     strict="MetadataTooLarge")
case("metadata_len_over_default_limit",
     b"\xff\xff\xff\xff" + struct.pack("<i", (16 << 20) + 8) + bytes(56), "MetadataTooLarge",
     "metadata length 16 MiB + 8, over the default limit")
case("legacy_length_garbage", struct.pack("<i", 60) + bytes((i * 89 + 7) & 0xFF
     for i in range(60)), "InvalidFlatbuffer",
     "legacy framing: length 60 then 60 bytes of garbage")
case("legacy_length_huge", struct.pack("<i", I32_MAX - 7) + bytes(12), "MetadataTooLarge",
     "legacy framing with length 2^31-8")
case("legacy_length_truncated", struct.pack("<i", 200) + bytes(20), "Truncated",
     "legacy framing: length 200, 20 bytes present")
case("metadata_all_zeros", b"\xff\xff\xff\xff" + struct.pack("<i", 56) + bytes(56),
     "OldMetadataVersion", "56 zero bytes of metadata: root offset 0, a table whose vtable is "
     "itself with size 0, which FlatBuffers verifiers (C++ and Rust) accept as a Message with "
     "every field default, so version V1")
case("metadata_all_ff", b"\xff\xff\xff\xff" + struct.pack("<i", 56) + b"\xff" * 56,
     "InvalidFlatbuffer", "56 bytes of 0xFF as metadata")
# What random bytes fail on depends only on their first 8 bytes (the prefix).
RANDOM_EXPECT = {1: "InvalidContinuation", 2: "InvalidContinuation", 3: "MetadataTooLarge",
                 4: "InvalidContinuation", 5: "InvalidContinuation"}
for seed in range(1, 6):
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(64, 512)))
    case(f"random_seed{seed}", data, RANDOM_EXPECT[seed],
         f"{len(data)} random bytes (Python random seed {seed})")
for seed in range(6, 10):
    rng = random.Random(seed)
    n = rng.randrange(24, 256) // 8 * 8
    data = b"\xff\xff\xff\xff" + struct.pack("<i", n) + bytes(rng.randrange(256)
                                                             for _ in range(n + 64))
    case(f"random_metadata_seed{seed}", data, "InvalidFlatbuffer",
         f"a valid prefix announcing {n} bytes, then random bytes (seed {seed})")

# Truncation.
fb_valid = raw_tensor_fb()
case("truncated_in_metadata", VALID[:40], "Truncated",
     "a valid message cut inside its flatbuffer (the length announces more)")
half = fb_valid[:len(fb_valid) // 2 // 8 * 8]
case("flatbuffer_cut_short", b"\xff\xff\xff\xff" + struct.pack("<i", len(half)) + half +
     bytes(24), "InvalidFlatbuffer",
     "the first half of a valid flatbuffer, framed with exactly its length (offsets into the "
     "missing half point past the end), then a body")
case("flatbuffer_cut_short_zero_padded", frame(half, bytes(24)), "UnsupportedType",
     "the first half of a valid flatbuffer padded with zeros to 64: offsets into the missing "
     "half land on zeros, which read as tables with every field absent (Tensor.type NONE)")
case("body_shorter_than_announced", VALID[:-10], "Truncated",
     "a valid message whose body is 10 bytes shorter than bodyLength")
case("two_messages_second_garbage", VALID + b"\xff\xff\xff\xff" + struct.pack("<i", 32) +
     bytes((i * 13 + 5) & 0xFF for i in range(32)), "InvalidFlatbuffer",
     "a valid tensor, then a prefix announcing 32 bytes of garbage metadata",
     read_tensor="ok")
case("two_messages_second_truncated", VALID + VALID[:20], "Truncated",
     "a valid tensor, then the first 20 bytes of another", read_tensor="ok")

# FlatBuffer structure.
case("root_offset_out_of_range", frame(raw_tensor_fb(root_offset=0x7FFFFFF0), bytes(24)),
     "InvalidFlatbuffer", "root uoffset 0x7FFFFFF0, far outside the metadata")
case("root_offset_past_end", frame(raw_tensor_fb(root_offset=len(fb_valid) - 2), bytes(24)),
     "InvalidFlatbuffer", "root uoffset pointing 2 bytes before the end of the flatbuffer")
case("vtable_soffset_out_of_range",
     frame(flatbuffer(message_table(HDR_TENSOR, tensor_table(body_len=24), 24,
                                    soffset=-0x40000000)), bytes(24)),
     "InvalidFlatbuffer", "the Message table's vtable soffset points 1 GiB away")
case("vtable_soffset_into_itself",
     frame(flatbuffer(message_table(HDR_TENSOR, tensor_table(body_len=24), 24, soffset=0)),
           bytes(24)),
     "OldMetadataVersion", "the Message table's vtable soffset is 0: the vtable is the table "
     "itself, of size 0, so every field is absent (version V1)")
case("vtable_field_offset_out_of_range",
     frame(flatbuffer(message_table(HDR_TENSOR, tensor_table(body_len=24), 24,
                                    patch=lambda o: {**o, 3: 0xFFF0})), bytes(24)),
     "InvalidFlatbuffer", "the bodyLength field's vtable entry is 0xFFF0, past the table")
case("vtable_size_huge",
     frame(flatbuffer(tensor_table(body_len=24, vtable=struct.pack("<HH", 0xFFFE, 8))),
           bytes(24)),
     "InvalidFlatbuffer", "a Tensor as root (no Message) whose vtable claims 65534 bytes")
case("vtable_size_odd",
     frame(flatbuffer(message_table(HDR_TENSOR, tensor_table(body_len=24), 24,
                                    vtable=struct.pack("<HHHHH", 7, 24, 4, 6, 8))), bytes(24)),
     "InvalidFlatbuffer", "the Message vtable has an odd size (7)")
case("tensor_vtable_field_out_of_range",
     frame(raw_tensor_fb(header=tensor_table(body_len=24, patch=lambda o: {**o, 2: 0x7FF0})),
           bytes(24)),
     "InvalidFlatbuffer", "the Tensor's shape field vtable entry is 0x7FF0")
case("shape_vector_length_huge",
     tensor_message(shape_vec=Vector("off", [Table({0: ("i64", 2)})], length=0x7FFFFFFF)),
     "InvalidFlatbuffer", "the shape vector claims 2^31-1 TensorDims")
case("shape_vector_length_u32_max",
     tensor_message(shape_vec=Vector("off", [Table({0: ("i64", 2)})], length=0xFFFFFFFF)),
     "InvalidFlatbuffer", "the shape vector claims 2^32-1 TensorDims")
case("strides_vector_length_huge",
     tensor_message(strides_vec=Vector("i64", [12, 4], length=0x20000000)),
     "InvalidFlatbuffer", "the strides vector claims 2^29 longs (4 GiB)")
case("dim_name_length_huge",
     tensor_message(shape_vec=Vector("off", [Table({0: ("i64", 2), 1: ("off",
                    String("row", length=0x7FFFFFFF))}), Table({0: ("i64", 3)})])),
     "InvalidFlatbuffer", "a dimension name whose length is 2^31-1")
case("dim_name_invalid_utf8",
     tensor_message(shape_vec=Vector("off", [Table({0: ("i64", 2), 1: ("off",
                    String(b"\xff\xfe"))}), Table({0: ("i64", 3)})])),
     "InvalidFlatbuffer", "a dimension name that is not UTF-8")
case("shape_missing", tensor_message(omit=(2,)), "InvalidFlatbuffer",
     "Tensor without its required shape")
case("type_missing", tensor_message(omit=(0, 1)), "InvalidFlatbuffer",
     "Tensor without its required type")
case("data_missing", tensor_message(omit=(4,)), "InvalidFlatbuffer",
     "Tensor without its required data Buffer")
case("custom_metadata_length_huge",
     frame(flatbuffer(message_table(HDR_TENSOR, tensor_table(body_len=24), 24,
                                    extra={4: ("off", Vector("off", [], length=0x40000000))})),
           bytes(24)),
     "InvalidFlatbuffer", "custom_metadata claims 2^30 KeyValue entries")
nested = None
for depth in range(200):
    nested = field_table([nested] if nested is not None else None, name=f"n{depth}")
case("schema_fields_nested_200", schema_message([nested]), "InvalidFlatbuffer",
     "a Schema message whose Field children nest 200 deep (the verifier allows 128)",
     strict="MetadataTooLarge")
dag = field_table(None, name="leaf")
for depth in range(60):
    dag = field_table([dag, dag], name="d")
case("schema_fields_dag_2_pow_60", schema_message([dag]), "InvalidFlatbuffer",
     "a Schema whose Field children form a DAG: 60 levels of 2 references to the same child "
     "(2^60 table visits without the verifier's table limit)", strict="MetadataTooLarge")
case("tensor_as_root_without_message", frame(flatbuffer(tensor_table(body_len=24)), bytes(24)),
     "OldMetadataVersion", "a Tensor table as the root, not wrapped in a Message: read as a "
     "Message, its first field (type_type) is taken for the version")

# Shape and strides.
case("dim_size_negative", tensor_message(shape=(2, -3), body=bytes(24)), "NegativeDimension",
     "TensorDim.size -3")
case("dim_size_i64_min", tensor_message(shape=(-2**63,), body=bytes(8)), "NegativeDimension",
     "TensorDim.size i64::MIN")
case("dim_size_2_pow_62_int8", tensor_message("int8", shape=(2**62,), body=bytes(8)),
     "StridesOverrun", "int8 tensor of 2^62 elements over an 8-byte body")
case("dim_size_2_pow_62_int32", tensor_message("int32", shape=(2**62,), body=bytes(8)),
     "Overflow", "int32 tensor of 2^62 elements: the byte size overflows")
case("dim_size_i64_max_int8", tensor_message("int8", shape=(I64_MAX,), body=bytes(8)),
     "StridesOverrun", "int8 tensor of i64::MAX elements")
case("dim_sizes_product_overflow", tensor_message("int8", shape=(2**32, 2**32), body=bytes(8)),
     "Overflow", "shape 2^32 x 2^32, no strides: the row-major strides overflow")
case("dim_sizes_product_overflow_zero_strides",
     tensor_message("int8", shape=(2**32, 2**32), strides=(0, 0), body=bytes(8)), "Overflow",
     "shape 2^32 x 2^32 with zero strides: in bounds, but the element count overflows")
case("dim_sizes_product_overflow_with_zero_axis",
     tensor_message("int8", shape=(2**40, 0, 2**40), body=b""), "ok",
     "shape 2^40 x 0 x 2^40 over an empty body: an empty tensor (Arrow's rule: all strides "
     "= the element width)")
case("dim_sizes_huge_then_zero_axis",
     tensor_message("uint8", shape=(2**45, 2**45, 0), strides=(12, 6, 2), body=b""), "ok",
     "uint8 2^45 x 2^45 x 0 with strides, empty body: empty (found by the decode_message fuzzer, "
     "where a naive element count 2^45 * 2^45 * 0 overflowed before reaching the 0)")
case("zero_strides_broadcast_huge",
     tensor_message("float32", shape=(2**20, 2**20, 2**10), strides=(0, 0, 0), body=bytes(64)),
     "ok", "float32 2^20 x 2^20 x 2^10 with zero strides over 64 bytes: valid, 4 PiB logical "
           "(a reader must not materialise it)")
case("stride_huge", tensor_message(shape=(2, 3), strides=(2**62, 4)), "StridesOverrun",
     "stride 2^62 on a 2x3 int32 tensor")
case("stride_i64_max_overflow", tensor_message(shape=(3, 3), strides=(I64_MAX, 4),
     body=bytes(36)), "Overflow", "stride i64::MAX on an axis of 3: the offset overflows")
case("strides_sum_overflow", tensor_message("int8", shape=(2, 2), strides=(2**62, 2**62),
     body=bytes(4)), "Overflow", "strides 2^62, 2^62 on a 2x2 tensor: their sum overflows i64")
case("stride_negative", tensor_message(shape=(2, 3), strides=(-12, 4)), "NegativeStride",
     "stride -12")
case("stride_i64_min", tensor_message(shape=(2, 3), strides=(-2**63, 4)), "NegativeStride",
     "stride i64::MIN")
case("stride_negative_on_empty_axis",
     tensor_message(shape=(0, 3), strides=(-4, 4), body=b""), "ok",
     "negative stride on an axis of size 0, empty body: Arrow skips the check")
case("strides_length_mismatch", tensor_message(shape=(2, 3), strides=(12, 4, 4)),
     "StridesLengthMismatch", "3 strides for 2 dimensions")
case("strides_empty_vector", tensor_message(shape=(2, 3), strides=()), "ok",
     "an empty strides vector: row-major")
case("zero_d_empty_body", tensor_message("float64", shape=(), body=b""), "StridesOverrun",
     "0-d float64 tensor with an empty body (needs 8 bytes)")
case("zero_d_valid", tensor_message("float64", shape=()), "ok", "0-d float64 tensor, 8 bytes")
case("shape_200_dims_of_1", tensor_message("int8", shape=(1,) * 200), "ok",
     "200 dimensions of size 1", strict="MetadataTooLarge")
case("shape_200_dims_of_2", tensor_message("int8", shape=(2,) * 200, body=bytes(64)),
     "Overflow", "200 dimensions of size 2 (2^200 elements)", strict="MetadataTooLarge")

# Body length.
case("body_length_negative", tensor_message(body_len=-24, body=bytes(24)), "NegativeBodyLength",
     "bodyLength -24")
case("body_length_i64_min", tensor_message(body_len=-2**63, body=bytes(24)),
     "NegativeBodyLength", "bodyLength i64::MIN")
case("body_length_2_pow_62", tensor_message(body_len=2**62, body=bytes(24)), "Truncated",
     "bodyLength 2^62 with 24 bytes of body")
case("body_length_i64_max", tensor_message(body_len=I64_MAX, body=bytes(24)), "Truncated",
     "bodyLength i64::MAX with 24 bytes of body")

# Header types.
case("header_tensor_over_record_batch",
     frame(flatbuffer(message_table(HDR_TENSOR, record_batch_table(), 24)), bytes(24)),
     "InvalidFlatbuffer", "header_type Tensor, but the header table is a RecordBatch")
case("header_record_batch_over_tensor",
     frame(flatbuffer(message_table(HDR_RECORDBATCH, tensor_table(body_len=24), 24)),
           bytes(24)),
     "InvalidFlatbuffer", "header_type RecordBatch, but the header table is a Tensor")
case("record_batch_message",
     frame(flatbuffer(message_table(HDR_RECORDBATCH, record_batch_table(), 24)), bytes(24)),
     "ok", "a well-formed RecordBatch message (skipped by read_message)",
     read_tensor="UnexpectedHeader")
case("schema_message", schema_message([field_table(None)]), "ok",
     "a well-formed Schema message", read_tensor="UnexpectedHeader")
case("header_type_tensor_header_absent",
     frame(flatbuffer(message_table(HDR_TENSOR, None, 0))), "InvalidFlatbuffer",
     "header_type Tensor with no header table")
case("header_type_unknown_42",
     frame(flatbuffer(message_table(42, tensor_table(body_len=24), 24)), bytes(24)), "ok",
     "header_type 42 (no such header): skipped like any other kind",
     read_tensor="UnexpectedHeader")
case("record_batch_then_tensor",
     frame(flatbuffer(message_table(HDR_RECORDBATCH, record_batch_table(), 24)), bytes(24)) +
     VALID, "ok", "a RecordBatch message then a tensor", read_tensor="UnexpectedHeader")

# Element types.
for name, pair, expect in [
    ("type_bool", (T_BOOL, Table({})), "UnsupportedType"),
    ("type_decimal128", (T_DECIMAL, Table({0: ("i32", 10), 1: ("i32", 2), 2: ("i32", 128)})),
     "UnsupportedType"),
    ("type_utf8", (T_UTF8, Table({})), "UnsupportedType"),
    ("type_null", (T_NULL, Table({})), "UnsupportedType"),
    ("type_none_with_table", (T_NONE, Table({})), "UnsupportedType"),
    ("type_unknown_99", (99, Table({})), "UnsupportedType"),
    ("type_int128", int_type(128), "UnsupportedBitWidth"),
    ("type_int_bitwidth_7", int_type(7), "UnsupportedBitWidth"),
    ("type_int_bitwidth_0", int_type(0, False), "UnsupportedBitWidth"),
    ("type_int_bitwidth_negative", int_type(-32), "UnsupportedBitWidth"),
    ("type_float_precision_3", (T_FLOAT, Table({0: ("i16", 3)})), "StridesOverrun"),
    ("type_float_precision_negative", (T_FLOAT, Table({0: ("i16", -1)})), "StridesOverrun"),
]:
    case(name, tensor_message(type_pair=pair, body=bytes(24)), expect,
         f"Tensor.type: {name[5:]}" + (" (an unknown precision reads as double, as in Arrow "
                                       "C++, so the 24-byte body is too short for 2x3)"
                                       if "precision" in name else ""))
case("type_float_precision_7_double_body",
     tensor_message(type_pair=(T_FLOAT, Table({0: ("i16", 7)})), body=bytes(48)), "ok",
     "FloatingPoint precision 7 over a 48-byte body: read as 2x3 float64, as Arrow C++ does")

# Metadata versions.
for code, expect in [(0, "OldMetadataVersion"), (1, "OldMetadataVersion"),
                     (2, "OldMetadataVersion"), (-1, "OldMetadataVersion"),
                     (-32768, "OldMetadataVersion"), (5, "FutureMetadataVersion"),
                     (32767, "FutureMetadataVersion")]:
    label = f"minus{-code}" if code < 0 else str(code)
    case(f"version_{label}", tensor_message(version=code), expect,
         f"MetadataVersion code {code}")
case("version_absent", tensor_message(version=None), "OldMetadataVersion",
     "no version field: the default V1")
case("version_4_is_v5", tensor_message(version=V5), "ok", "MetadataVersion V5 (code 4)")

# Alignment.
fb_f64 = flatbuffer(message_table(HDR_TENSOR, tensor_table("float64", (3,), body_len=24), 24))
case("legacy_misaligned_float64_body",
     struct.pack("<i", len(fb_f64)) + fb_f64 + body_of("float64", 3), "ok",
     "legacy framing whose body starts at 4 (mod 8): a misaligned float64 body, copied by "
     "default, refused in strict mode", strict="Misaligned")


# Sparse tensors (SparseTensor.fbs). Bodies are laid out as Arrow C++ writes them: the index
# buffers, then the values, each at an 8-byte aligned offset.
SPARSE_COO, SPARSE_CSX, SPARSE_CSF = 1, 2, 3


def sparse_message(dtype, shape, nnz, index_type, index_table, body, data_buffer,
                   body_len=None, omit=()):
    type_type, type_table = dtype_type(dtype)
    fields = {
        0: ("u8", type_type),
        1: ("off", type_table),
        2: ("off", Vector("off", [Table({0: ("i64", d)}) for d in shape])),
        3: ("i64", nnz),
        4: ("u8", index_type),
        5: ("off", index_table),
        6: ("struct", buffer_struct(*data_buffer)),
    }
    for slot in omit:
        fields.pop(slot, None)
    blen = len(body) if body_len is None else body_len
    fb = flatbuffer(message_table(HDR_SPARSE, Table(fields), blen))
    return frame(fb, body, align=8)


def i64s(values):
    return b"".join(struct.pack("<q", v) for v in values)


def coo_message(coords, values, shape=(3, 4), nnz=None, indices_buffer=None, data_buffer=None,
                index_bits=64, strides=None, canonical=True, body=None):
    """float64 COO: `coords` is the nnz x ndim matrix, row-major, as int64."""
    indices = i64s([c for row in coords for c in row])
    data = b"".join(struct.pack("<d", v) for v in values)
    body = indices + data if body is None else body
    ndim = len(shape)
    index = Table({
        0: ("off", int_type(index_bits)[1]),
        # Arrow's strides of the nnz x ndim matrix; [8, 8] when it is empty (ndim 0).
        1: ("off", Vector("i64", list(strides) if strides is not None
                          else [8 * ndim, 8] if ndim else [8, 8])),
        2: ("struct", buffer_struct(*(indices_buffer or (0, len(indices))))),
        3: ("bool", int(canonical)),
    })
    return sparse_message("float64", shape, len(values) if nnz is None else nnz, SPARSE_COO,
                          index, body, data_buffer or (len(indices), len(data)))


def csr_message(indptr, indices, values, shape=(3, 4), axis=0, nnz=None):
    ip, ix = i64s(indptr), i64s(indices)
    data = b"".join(struct.pack("<d", v) for v in values)
    index = Table({
        0: ("i16", axis),
        1: ("off", int_type(64)[1]),
        2: ("struct", buffer_struct(0, len(ip))),
        3: ("off", int_type(64)[1]),
        4: ("struct", buffer_struct(len(ip), len(ix))),
    })
    return sparse_message("float64", shape, len(values) if nnz is None else nnz, SPARSE_CSX,
                          index, ip + ix + data, (len(ip) + len(ix), len(data)))


def csf_message(indptr, indices, axis_order, values, shape, nnz=None):
    """float64 CSF with int64 index vectors; `indptr` and `indices` are lists of lists. As Arrow
    C++ writes them, the index Buffers' lengths are element counts, not bytes."""
    body, ip_bufs, ix_bufs = b"", [], []
    for v in indptr:
        ip_bufs.append(struct.pack("<qq", len(body), len(v)))
        body += i64s(v)
    for v in indices:
        ix_bufs.append(struct.pack("<qq", len(body), len(v)))
        body += i64s(v)
    data = b"".join(struct.pack("<d", v) for v in values)
    data_buffer = (len(body), len(data))
    body += data
    index = Table({
        0: ("off", int_type(64)[1]),
        1: ("off", Vector(("struct", 16, 8), ip_bufs)),
        2: ("off", int_type(64)[1]),
        3: ("off", Vector(("struct", 16, 8), ix_bufs)),
        4: ("off", Vector("i32", list(axis_order))),
    })
    return sparse_message("float64", shape, len(values) if nnz is None else nnz, SPARSE_CSF,
                          index, body, data_buffer)


def sparse_case(name, data, expect, description, read_tensor="UnexpectedHeader", **kw):
    """A sparse case: read_tensor sees a sparse message and refuses it, unless the header
    itself fails to decode."""
    case(name, data, expect, description, read_tensor=read_tensor, **kw)


COO_OK = dict(coords=[(0, 1), (2, 3)], values=[1.5, -2.0])
sparse_case("sparse_coo_valid", coo_message(**COO_OK), "ok",
            "control: float64 3x4 COO with 2 values, int64 coordinates")
sparse_case("sparse_coo_nnz_huge", coo_message(**COO_OK, nnz=2**62), "Overflow",
            "COO non_zero_length 2^62: the coordinate matrix size overflows")
sparse_case("sparse_coo_nnz_negative", coo_message(**COO_OK, nnz=-1), "SparseIndexOutOfRange",
            "COO non_zero_length -1", read_tensor="SparseIndexOutOfRange")
sparse_case("sparse_coo_indices_buffer_past_body",
            coo_message(**COO_OK, indices_buffer=(2**62, 32)), "SparseBufferOutOfBounds",
            "COO indicesBuffer at offset 2^62 in a 48-byte body")
sparse_case("sparse_coo_indices_buffer_negative_offset",
            coo_message(**COO_OK, indices_buffer=(-8, 32)), "SparseBufferOutOfBounds",
            "COO indicesBuffer at offset -8")
sparse_case("sparse_coo_data_buffer_too_short",
            coo_message(**COO_OK, data_buffer=(32, 8)), "DataLength",
            "COO values buffer of 8 bytes for 2 float64 values")
sparse_case("sparse_coo_coord_out_of_shape",
            coo_message(coords=[(0, 1), (7, 3)], values=[1.0, 2.0]), "SparseIndexOutOfRange",
            "COO coordinate 7 on an axis of 3")
sparse_case("sparse_coo_coord_negative",
            coo_message(coords=[(0, -1), (2, 3)], values=[1.0, 2.0]), "SparseIndexOutOfRange",
            "COO coordinate -1")
sparse_case("sparse_coo_coord_i64_max",
            coo_message(coords=[(0, 1), (I64_MAX, I64_MAX)], values=[1.0, 2.0]),
            "SparseIndexOutOfRange", "COO coordinates i64::MAX")
sparse_case("sparse_coo_uint64_indices",
            sparse_message("float64", (3, 4), 2, SPARSE_COO, Table({
                0: ("off", int_type(64, False)[1]),
                1: ("off", Vector("i64", [16, 8])),
                2: ("struct", buffer_struct(0, 32)),
                3: ("bool", 1)}), i64s([0, 1, 2, 3]) + bytes(16), (32, 16)),
            "SparseIndexType", "COO with uint64 indices (Arrow refuses them)")
sparse_case("sparse_coo_strides_negative", coo_message(**COO_OK, strides=(-16, 8)),
            "NegativeStride", "COO indicesStrides -16, 8")
sparse_case("sparse_csr_valid", csr_message([0, 1, 1, 2], [1, 3], [1.5, -2.0]), "ok",
            "control: float64 3x4 CSR with 2 values")
sparse_case("sparse_csr_indptr_past_nnz", csr_message([0, 1, 1, 9], [1, 3], [1.5, -2.0]),
            "SparseLength", "CSR indptr ending at 9 with 2 values")
sparse_case("sparse_csr_indptr_decreasing", csr_message([0, 2, 1, 2], [1, 3], [1.5, -2.0]),
            "IndptrNotMonotone", "CSR indptr 0, 2, 1, 2 (decreasing)")
sparse_case("sparse_csr_indptr_negative", csr_message([0, -5, 1, 2], [1, 3], [1.5, -2.0]),
            "IndptrNotMonotone", "CSR indptr 0, -5, 1, 2")
sparse_case("sparse_csr_index_out_of_shape", csr_message([0, 1, 1, 2], [1, 99], [1.5, -2.0]),
            "SparseIndexOutOfRange", "CSR column index 99 in a matrix of 4 columns")
sparse_case("sparse_csr_three_dims",
            csr_message([0, 1, 1, 2], [1, 3], [1.5, -2.0], shape=(3, 4, 1)), "SparseShape",
            "a CSR index on a 3-d tensor")
sparse_case("sparse_csc_axis_7", csr_message([0, 1, 1, 2], [1, 3], [1.5, -2.0], axis=7),
            "UnsupportedSparseIndex", "SparseMatrixCompressedAxis 7 (neither Row nor Column)",
            read_tensor="UnsupportedSparseIndex")
CSF_IPTR, CSF_IDX = [[0, 1, 2]], [[0, 2], [1, 3]]
sparse_case("sparse_csf_valid", csf_message(CSF_IPTR, CSF_IDX, [0, 1], [1.5, -2.0], (3, 4)),
            "ok", "control: float64 3x4 CSF with 2 values")
sparse_case("sparse_csf_axis_order_out_of_range",
            csf_message(CSF_IPTR, CSF_IDX, [0, 5], [1.5, -2.0], (3, 4)), "InvalidAxisOrder",
            "CSF axisOrder 0, 5 on a 2-d tensor")
sparse_case("sparse_csf_axis_order_negative",
            csf_message(CSF_IPTR, CSF_IDX, [0, -1], [1.5, -2.0], (3, 4)), "InvalidAxisOrder",
            "CSF axisOrder 0, -1")
sparse_case("sparse_csf_axis_order_repeated",
            csf_message(CSF_IPTR, CSF_IDX, [1, 1], [1.5, -2.0], (3, 4)), "InvalidAxisOrder",
            "CSF axisOrder 1, 1 (not a permutation)")
sparse_case("sparse_csf_indptr_past_indices",
            csf_message([[0, 1, 40]], CSF_IDX, [0, 1], [1.5, -2.0], (3, 4)), "SparseLength",
            "CSF indptr of the last level ending at 40 with 2 values")
sparse_case("sparse_csf_index_out_of_shape",
            csf_message(CSF_IPTR, [[0, 9], [1, 3]], [0, 1], [1.5, -2.0], (3, 4)), "SparseIndexOutOfRange",
            "CSF first-level index 9 on an axis of 3")
sparse_case("sparse_csf_levels_mismatch",
            csf_message(CSF_IPTR, CSF_IDX + [[0, 0]], [0, 1], [1.5, -2.0], (3, 4)), "SparseLength",
            "CSF with 3 indices buffers on a 2-d tensor")
# Declared sizes larger than the bytes present (issue 10): each must be refused before any loop
# runs over it, in time bounded by the message's bytes. A 0-d COO has no coordinate bytes, so
# only its values bound its non_zero_length.
sparse_case("sparse_coo_0d_valid", coo_message(coords=[()], values=[2.5], shape=()), "ok",
            "control: a 0-d float64 COO with its one value (no coordinate bytes)")
sparse_case("sparse_coo_0d_nnz_2_pow_40", coo_message(coords=[()], values=[2.5], shape=(),
                                                      nnz=2**40), "DataLength",
            "0-d COO declaring 2^40 values over 8 bytes of values (once a 2^40-step loop)")
sparse_case("sparse_coo_0d_nnz_i64_max", coo_message(coords=[()], values=[2.5], shape=(),
                                                     nnz=I64_MAX), "Overflow",
            "0-d COO declaring i64::MAX values: their byte size overflows")
sparse_case("sparse_coo_zero_axis_nnz_2_pow_40",
            coo_message(coords=[], values=[], shape=(0, 3), nnz=2**40), "DataLength",
            "COO of shape (0, 3) declaring 2^40 values over an empty body")
sparse_case("sparse_csr_nnz_2_pow_40",
            csr_message([0, 1, 1, 2], [1, 3], [1.5, -2.0], nnz=2**40), "SparseLength",
            "CSR declaring 2^40 values over 16 bytes of indices")
sparse_case("sparse_csc_nnz_2_pow_40",
            csr_message([0, 1, 1, 1, 2], [1, 2], [1.5, -2.0], axis=1, nnz=2**40),
            "SparseLength", "CSC declaring 2^40 values over 16 bytes of indices")
sparse_case("sparse_csr_rows_2_pow_40",
            csr_message([0, 1, 1, 2], [1, 3], [1.5, -2.0], shape=(2**40, 4)), "SparseLength",
            "CSR of 2^40 rows over an indptr of 4 values")
sparse_case("sparse_csc_columns_2_pow_40",
            csr_message([0, 1, 1, 2], [1, 3], [1.5, -2.0], shape=(4, 2**40), axis=1),
            "SparseLength", "CSC of 2^40 columns over an indptr of 4 values")
sparse_case("sparse_csf_nnz_2_pow_40",
            csf_message(CSF_IPTR, CSF_IDX, [0, 1], [1.5, -2.0], (3, 4), nnz=2**40),
            "SparseLength", "CSF declaring 2^40 values, its last level holding 2")
sparse_case("sparse_csf_one_dimension",
            csf_message([], [[0, 2]], [0], [1.5, -2.0], (3,)), "SparseShape",
            "a CSF index on a 1-d tensor")
sparse_case("sparse_coo_0d_csr_index",
            csr_message([0, 1], [0], [1.5], shape=()), "SparseShape",
            "a CSR index on a 0-d tensor")
sparse_case("sparse_index_type_none",
            sparse_message("float64", (3, 4), 2, 0, Table({}), bytes(48), (32, 16)),
            "UnsupportedSparseIndex", "sparseIndex_type NONE",
            read_tensor="UnsupportedSparseIndex")
sparse_case("sparse_index_coo_over_csf_table",
            sparse_message("float64", (3, 4), 2, SPARSE_COO, Table({
                0: ("off", int_type(64)[1]), 1: ("off", Vector(("struct", 16, 8), [])),
                2: ("off", int_type(64)[1]), 3: ("off", Vector(("struct", 16, 8), [])),
                4: ("off", Vector("i32", [0, 1]))}), bytes(48), (32, 16)),
            "SparseBufferOutOfBounds", "sparseIndex_type COO over a CSF table: it verifies (the "
            "fields overlap), and the Int table's offset read as a Buffer points out of the body")

def main():
    for old in os.listdir(HERE):
        if old.endswith(".bin"):
            os.remove(os.path.join(HERE, old))
    expected = {}
    names = set()
    for name, data, expect, description, strict, read_tensor in CASES:
        assert name not in names, name
        names.add(name)
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        entry = {"expect": expect, "description": description}
        if strict is not None:
            entry["strict"] = strict
        if read_tensor is not None:
            entry["read_tensor"] = read_tensor
        expected[name] = entry
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(CASES)} files")


if __name__ == "__main__":
    main()
