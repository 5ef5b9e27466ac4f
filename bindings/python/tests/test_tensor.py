"""tensor_ipc's tensors and files: byte identity with pyarrow (and the golden
vectors pyarrow wrote), zero-copy reads from files, bytes and store buffers,
DLPack, sparse tensors, and files exchanged with pyarrow and the Rust CLI."""

import gc
import io
import json
import mmap
import os
import subprocess

import numpy as np
import pytest

import tensor_ipc as ti
from conftest import ROOT, has_pyarrow

needs_pyarrow = pytest.mark.needs_pyarrow

DATA = os.path.join(ROOT, "tests", "data")
with open(os.path.join(DATA, "manifest.json")) as f:
    MANIFEST = json.load(f)

TENSOR_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64"]


def layouts(dtype):
    """Arrays of every layout: C, F, transposed, sliced, strided, broadcast, 0-d, empty."""
    a = (np.arange(2 * 3 * 4 * 5) % 120).astype(dtype).reshape(2, 3, 4, 5)
    return {
        "c": a, "f": np.asfortranarray(a), "transpose": a.transpose(2, 0, 3, 1),
        "T": a.T, "slice": a[:, 1:, ::2], "step": a[::2, :, :, ::3], "column": a[..., 1],
        "broadcast": np.broadcast_to(a[0, 0, 0, 0], (3, 4)), "newaxis": a[:, None, 0],
        "scalar": a[1, 2, 3, 4], "empty": a[:, :0], "1d": a.ravel(),
    }


def pyarrow_message(array, dim_names=None):
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    pa.ipc.write_tensor(pa.Tensor.from_numpy(array, dim_names=dim_names), sink)
    return sink.getvalue().to_pybytes()


def data_address(array):
    return array.__array_interface__["data"][0]


def encode(array, **kw):
    out = bytearray(ti.tensor_size(array, **kw))
    assert ti.write_tensor(array, out, **kw) == len(out)
    return bytes(out)


# --------------------------------------------------------------------------------------
# Byte identity


@needs_pyarrow
@pytest.mark.parametrize("dtype", TENSOR_DTYPES)
def test_byte_identical_with_pyarrow_for_every_layout(dtype):
    for name, view in layouts(dtype).items():
        view = np.asarray(view)
        assert encode(view) == pyarrow_message(view), name
        names = ["d%d" % i for i in range(view.ndim)]
        assert encode(view, dim_names=names) == pyarrow_message(view, names), name


@needs_pyarrow
def test_byte_identical_with_pyarrow_for_random_views():
    rng = np.random.default_rng(7)
    for _ in range(300):
        ndim = rng.integers(1, 5)
        shape = tuple(rng.integers(1, 6, ndim))
        base = rng.standard_normal(shape).astype(rng.choice(TENSOR_DTYPES))
        view = base
        if rng.random() < 0.5:
            view = view.transpose(rng.permutation(ndim))
        index = tuple(slice(rng.integers(0, 2), None, rng.integers(1, 3)) for _ in range(ndim))
        view = view[index]
        assert encode(view) == pyarrow_message(view), (view.shape, view.strides)


def rebuild(case):
    """The strided view pyarrow wrote a golden file from, over the same memory layout."""
    dtype = np.dtype(case["dtype"])
    base = np.array(case["base_values"], dtype=dtype)
    return np.ndarray(tuple(case["shape"]), dtype=dtype, buffer=base,
                      offset=case["offset"], strides=tuple(case["strides"]))


@pytest.mark.parametrize("case", MANIFEST["dense"], ids=lambda c: c["file"])
def test_golden_vectors(case):
    with open(os.path.join(DATA, case["file"]), "rb") as f:
        golden = f.read()
    view = rebuild(case)
    assert encode(view, dim_names=case["dim_names"]) == golden
    t = ti.read_tensor(os.path.join(DATA, case["file"]))
    assert t.dtype == np.dtype(case["dtype"]) and list(t.shape) == case["shape"]
    assert list(t.strides) == case["written_strides"]
    expected = np.array(case["values"], dtype=case["dtype"]).reshape(case["shape"])
    assert np.array_equal(np.asarray(t), expected)


@pytest.mark.parametrize(
    "case", MANIFEST["reader_cases"] + MANIFEST["reader_edge_cases"], ids=lambda c: c["file"])
def test_reader_accepts_and_refuses_as_pyarrow(case):
    path = os.path.join(DATA, case["file"])
    if not case["ok"]:
        with pytest.raises(ti.TensorIpcError):
            ti.read_tensor(path)
        return
    t = ti.read_tensor(path)
    assert t.dtype == np.dtype(case["dtype"]) and list(t.shape) == case["shape"]
    try:
        expected = np.array(case["values"], dtype=case["dtype"]).reshape(case["shape"])
    except ValueError:
        # An empty tensor whose other dimensions numpy cannot index: valid for Arrow,
        # a clean error for numpy.
        with pytest.raises(ValueError):
            np.asarray(t)
        return
    assert np.array_equal(np.asarray(t), expected)


def test_hostile_inputs_are_errors():
    hostile = os.path.join(DATA, "hostile")
    for name in sorted(os.listdir(hostile)):
        with open(os.path.join(hostile, name), "rb") as f:
            data = f.read()
        try:
            for t in ti.read_tensors(data):
                # (No reduction: zero strides can make a few bytes petabytes long.)
                np.asarray(t) if isinstance(t, ti.Tensor) else t.data
        except ValueError as e:  # TensorIpcError, or numpy refusing a shape it cannot index
            assert str(e), name


# --------------------------------------------------------------------------------------
# Destinations and sources


def test_write_destinations(tmp_path):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    expected = encode(a)
    t = a.T[::2]
    expected_strided = encode(t)
    # A path.
    assert ti.write_tensor(a, tmp_path / "a") == len(expected)
    assert (tmp_path / "a").read_bytes() == expected
    assert ti.write_tensor(a, str(tmp_path / "b")) == len(expected)
    # File objects, contiguous and not.
    for array, message in [(a, expected), (np.asfortranarray(a), encode(np.asfortranarray(a))),
                           (t, expected_strided)]:
        bio = io.BytesIO()
        bio.write(b"xx")
        assert ti.write_tensor(array, bio) == len(message)
        assert bio.getvalue() == b"xx" + message
    with open(tmp_path / "c", "wb") as f:
        ti.write_tensor(a, f)
        ti.write_tensor(t, f)
    assert (tmp_path / "c").read_bytes() == expected + expected_strided
    # Writable buffers.
    for buf in [bytearray(len(expected) + 10), np.zeros(len(expected), np.uint8)]:
        assert ti.write_tensor(a, buf) == len(expected)
        assert bytes(memoryview(buf)[:len(expected)]) == expected
    m = mmap.mmap(-1, len(expected))
    ti.write_tensor(a, memoryview(m))
    assert m[:] == expected
    with pytest.raises(ti.TensorIpcError, match="smaller than the message"):
        ti.write_tensor(a, bytearray(10))
    with pytest.raises(TypeError, match="read-only"):
        ti.write_tensor(a, bytes(len(expected)))
    with pytest.raises(TypeError, match="not a tensor type"):
        ti.write_tensor(np.array([True]), bytearray(1000))
    with pytest.raises(OSError) as e:
        ti.write_tensor(a, tmp_path / "no" / "such" / "dir")
    assert "dir" in str(e.value.filename)


@needs_pyarrow
def test_pyarrow_streams_as_destinations():
    import pyarrow as pa

    a = np.arange(10, dtype=np.int32)
    sink = pa.BufferOutputStream()
    ti.write_tensor(a, sink)
    assert sink.getvalue().to_pybytes() == pyarrow_message(a)
    buf = pa.allocate_buffer(ti.tensor_size(a))
    ti.write_tensor(a, buf)
    assert buf.to_pybytes() == pyarrow_message(a)


def test_read_sources_are_zero_copy(tmp_path):
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    message = encode(a)
    path = tmp_path / "t.tensor"
    path.write_bytes(message)
    t = ti.read_tensor(path)
    arr = np.asarray(t)
    address = data_address(arr)
    with open("/proc/self/maps") as f:
        lines = [l for l in f if str(path) in l]
    assert any(int(l.split("-")[0], 16) <= address < int(l.split()[0].split("-")[1], 16)
               for l in lines), "the array is the file mapping"
    sources = [message, bytearray(message), memoryview(message),
               np.frombuffer(message, np.uint8)]
    if has_pyarrow():
        import pyarrow as pa
        sources.append(pa.py_buffer(message))
    for src in sources:
        arr = np.asarray(ti.read_tensor(src))
        start = data_address(np.frombuffer(src, np.uint8))
        assert start <= data_address(arr) < start + len(message), type(src)
        assert np.array_equal(arr, a) and not arr.flags.writeable


def test_tensor_outlives_its_source():
    src = bytearray(encode(np.arange(100, dtype=np.int64)))
    t = ti.read_tensor(src)
    arr = t.to_numpy()
    del src, t
    gc.collect()
    assert arr.sum() == 4950


def test_read_tensors_of_a_stream(tmp_path):
    arrays = [np.arange(6, dtype=np.int8).reshape(2, 3), np.ones((4, 4)), np.float16(1.5)]
    stream = io.BytesIO()
    for x in arrays:
        ti.write_tensor(x, stream)
    with open(os.path.join(DATA, "sparse", "csr_f64_6x4_idx_i64_named.arrow_sparse_tensor"),
              "rb") as f:
        stream.write(f.read())
    (tmp_path / "s").write_bytes(stream.getvalue())
    for src in [tmp_path / "s", stream.getvalue()]:
        items = list(ti.read_tensors(src))
        assert len(items) == 4
        for x, t in zip(arrays, items):
            assert isinstance(t, ti.Tensor) and np.array_equal(np.asarray(t), x)
        assert isinstance(items[3], ti.SparseTensor) and items[3].format == "csr"
    assert list(ti.read_tensors(b"")) == []


def test_tensor_attributes_and_conversions():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = ti.read_tensor(encode(a, dim_names=["x", "y", "z"]))
    assert (t.dtype, t.shape, t.strides) == (np.dtype("float32"), (2, 3, 4), (48, 16, 4))
    assert t.dim_names == ["x", "y", "z"]
    assert (t.ndim, t.size, t.nbytes) == (3, 24, 96)
    assert t.is_row_major and t.is_contiguous and not t.is_column_major
    assert "float32" in repr(t) and "dim_names" in repr(t)
    view = np.asarray(t)
    assert not view.flags.writeable and view.base is t
    copy = np.array(t)
    assert copy.flags.writeable and np.array_equal(copy, a)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        with pytest.raises(ValueError):
            np.asarray(t, dtype=np.float64, copy=False)
        assert np.asarray(t, copy=True).flags.writeable
    f = ti.read_tensor(encode(np.asfortranarray(a)))
    assert f.is_column_major and np.asarray(f).flags.f_contiguous


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        ti.read_tensor(tmp_path / "missing")
    assert str(tmp_path / "missing") == e.value.filename
    with pytest.raises(ti.TensorIpcError, match="truncated"):
        ti.read_tensor(encode(np.arange(10))[:-8])
    with pytest.raises(ti.TensorIpcError, match="end of stream"):
        ti.read_tensor(b"")
    with pytest.raises(ValueError):
        ti.read_tensor(b"\x00" * 7 + b"\x01")
    sparse = os.path.join(DATA, "sparse", "coo_u8_6x4_idx_i8.arrow_sparse_tensor")
    with pytest.raises(ti.TensorIpcError, match="read_sparse_tensor"):
        ti.read_tensor(sparse)
    with pytest.raises(ti.TensorIpcError, match="read_tensor"):
        ti.read_sparse_tensor(encode(np.arange(3)))


# --------------------------------------------------------------------------------------
# DLPack


NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.1.0"


@pytest.mark.skipif(not NUMPY_2, reason="numpy < 2.1 speaks only unversioned DLPack")
def test_dlpack_with_numpy_from_dlpack():
    a = np.arange(24, dtype=np.int16).reshape(4, 6)
    for view in [a, a.T, a[::2, 1:]]:
        t = ti.read_tensor(encode(view))
        arr = np.from_dlpack(t)
        assert data_address(arr) == data_address(np.asarray(t)), "zero-copy"
        assert not arr.flags.writeable, "the read-only flag is set"
        assert np.array_equal(arr, view)
        copied = np.from_dlpack(t, copy=True)
        assert copied.flags.writeable and np.array_equal(copied, view)
        assert data_address(copied) != data_address(arr)
    assert t.__dlpack_device__() == (1, 0)


def test_dlpack_capsules():
    t = ti.read_tensor(encode(np.arange(6, dtype=np.float64)))
    capsule = t.__dlpack__(max_version=(1, 0))
    assert "dltensor_versioned" in repr(capsule)
    del capsule  # never consumed: the destructor frees it
    with pytest.raises(BufferError, match="read-only"):
        t.__dlpack__()
    assert "dltensor" in repr(t.__dlpack__(copy=True))
    with pytest.raises(BufferError, match="CPU"):
        t.__dlpack__(max_version=(1, 0), dl_device=(2, 0))
    if not NUMPY_2:
        with pytest.raises(BufferError):
            np.from_dlpack(t)


def test_dlpack_with_torch_and_jax_when_installed():
    t = ti.read_tensor(encode(np.arange(6, dtype=np.float32)))
    tried = 0
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tried += 1
        assert torch.from_dlpack(t).sum().item() == 15.0
    try:
        import jax.dlpack
    except ImportError:
        jax = None
    if jax is not None:
        tried += 1
        assert float(jax.dlpack.from_dlpack(t).sum()) == 15.0
    if not tried:
        pytest.skip("neither torch nor jax is installed (optional)")


# --------------------------------------------------------------------------------------
# Sparse tensors


SPARSE = sorted(n for n in os.listdir(os.path.join(DATA, "sparse"))
                if n.endswith(".arrow_sparse_tensor"))


def rust_cli(rust_bin, *args):
    return subprocess.run([os.path.join(rust_bin, "tensor-ipc")] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", SPARSE)
def test_sparse_golden_vectors(name, rust_bin, tmp_path):
    path = os.path.join(DATA, "sparse", name)
    s = ti.read_sparse_tensor(path)
    fmt, dtype, shape = name.split("_")[:3]
    assert s.format == fmt
    assert s.dtype == np.dtype({"f32": "float32", "f64": "float64", "i32": "int32",
                                "i16": "int16", "i64": "int64", "u8": "uint8"}[dtype])
    assert s.shape == tuple(int(x) for x in shape.split("x"))
    dense = s.to_numpy()
    assert dense.flags.writeable and dense.shape == s.shape
    assert s.non_zero_length == len(s.data)
    assert not s.data.flags.writeable
    # The Rust CLI densifies the same file to the same array.
    out = tmp_path / "dense.npy"
    done = rust_cli(rust_bin, "convert", path, out)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(out), dense)
    # The index arrays describe the values.
    if fmt == "coo":
        coords = s.coords
        assert coords.shape == (s.non_zero_length, s.ndim)
        assert np.array_equal(dense[tuple(coords.T)], s.data)
    elif fmt in ("csr", "csc"):
        matrix = dense if fmt == "csr" else dense.T
        for row in range(matrix.shape[0]):
            lo, hi = s.indptr[row], s.indptr[row + 1]
            assert np.array_equal(matrix[row, s.indices[lo:hi]], s.data[lo:hi])
    else:
        assert len(s.indices) == s.ndim and len(s.indptr) == s.ndim - 1
        assert sorted(s.axis_order) == list(range(s.ndim))


@needs_pyarrow
def test_sparse_index_arrays_equal_pyarrows():
    import pyarrow as pa

    s = ti.read_sparse_tensor(os.path.join(DATA, "sparse", "csr_i32_6x4_idx_i32.arrow_sparse_tensor"))
    ref = pa.SparseCSRMatrix.from_dense_numpy(s.to_numpy())
    data, indptr, indices = ref.to_numpy()
    assert np.array_equal(s.data, data.ravel())
    assert np.array_equal(s.indptr, indptr.ravel()) and np.array_equal(s.indices, indices.ravel())
    s = ti.read_sparse_tensor(os.path.join(DATA, "sparse", "coo_i32_2x3x4x5_idx_i32.arrow_sparse_tensor"))
    data, coords = pa.SparseCOOTensor.from_dense_numpy(s.to_numpy()).to_numpy()
    assert np.array_equal(s.coords, coords) and np.array_equal(s.data, data.ravel())


def test_sparse_to_scipy():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    for name in ["coo_u8_6x4_idx_i8", "csr_f64_6x4_idx_i64_named", "csc_u8_6x4_idx_i16"]:
        s = ti.read_sparse_tensor(os.path.join(DATA, "sparse", name + ".arrow_sparse_tensor"))
        m = s.to_scipy()
        assert scipy_sparse.issparse(m) and m.format == name[:3]
        assert np.array_equal(m.toarray(), s.to_numpy())
    s = ti.read_sparse_tensor(os.path.join(DATA, "sparse", "csf_f64_6x4_idx_i64.arrow_sparse_tensor"))
    with pytest.raises(TypeError, match="CSF"):
        s.to_scipy()
    with pytest.raises(TypeError, match="coords"):
        s.coords


# --------------------------------------------------------------------------------------
# Files exchanged with pyarrow and the Rust CLI


@needs_pyarrow
def test_pyarrow_reads_python_files_and_the_reverse(tmp_path):
    import pyarrow as pa

    a = np.arange(30, dtype=np.uint16).reshape(5, 6)[:, ::2]
    ti.write_tensor(a, tmp_path / "ours")
    with pa.memory_map(str(tmp_path / "ours")) as source:
        assert np.array_equal(pa.ipc.read_tensor(source).to_numpy(), a)
    with pa.OSFile(str(tmp_path / "theirs"), "wb") as sink:
        pa.ipc.write_tensor(pa.Tensor.from_numpy(np.asfortranarray(a), dim_names=["r", "c"]),
                            sink)
    t = ti.read_tensor(tmp_path / "theirs")
    assert np.array_equal(np.asarray(t), a) and t.dim_names == ["r", "c"]


def test_rust_reads_python_files_and_the_reverse(rust_bin, tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4).transpose(1, 0, 2)
    ti.write_tensor(a, tmp_path / "ours.tensor", dim_names=["a", "b", "c"])
    inspected = rust_cli(rust_bin, "inspect", tmp_path / "ours.tensor")
    assert inspected.returncode == 0, inspected.stderr
    assert "dtype=float32 shape=[3,2,4]" in inspected.stdout
    done = rust_cli(rust_bin, "convert", tmp_path / "ours.tensor", tmp_path / "back.npy")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "back.npy"), a)
    # Rust writes, Python reads.
    np.save(tmp_path / "in.npy", np.asfortranarray(a))
    done = rust_cli(rust_bin, "convert", tmp_path / "in.npy", tmp_path / "rust.tensor")
    assert done.returncode == 0, done.stderr
    t = ti.read_tensor(tmp_path / "rust.tensor")
    assert np.array_equal(np.asarray(t), a)
    assert (tmp_path / "rust.tensor").read_bytes() == encode(np.asfortranarray(a))


def test_tensor_ipc_console_script_is_the_rust_cli(rust_bin, tmp_path):
    import sys

    script = os.path.join(os.path.dirname(sys.executable), "tensor-ipc")
    assert os.path.exists(script), "installed with the package"
    ti.write_tensor(np.arange(6, dtype=np.int32).reshape(2, 3), tmp_path / "t")
    ours = subprocess.run([script, "inspect", str(tmp_path / "t")], capture_output=True,
                          text=True, timeout=60)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == rust_cli(rust_bin, "inspect", tmp_path / "t").stdout
    assert "dtype=int32 shape=[2,3]" in ours.stdout
    done = subprocess.run([script, "convert", str(tmp_path / "t"), str(tmp_path / "t.npy")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and np.load(tmp_path / "t.npy").sum() == 15
    bad = subprocess.run([script, "inspect", str(tmp_path / "missing")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.startswith("tensor-ipc: error:")
    usage = subprocess.run([script], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
