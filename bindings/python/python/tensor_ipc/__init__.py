"""tensor_ipc: Arrow tensor messages for numpy, and a Plasma store client.

Write a tensor once, read it from many processes with zero copies.

* ``write_tensor(array, dest)`` writes a numpy array as one Arrow IPC tensor
  message, byte-identical with ``pa.ipc.write_tensor(pa.Tensor.from_numpy(a))``,
  into a file (``dest`` a path), a file object, or a writable buffer.
* ``read_tensor(src)`` reads one back as a :class:`Tensor` over the source's
  memory (a memory-mapped file, bytes-like objects, a Plasma buffer), which
  converts to numpy without copying (``numpy.asarray(t)``, ``t.to_numpy()``,
  ``numpy.from_dlpack(t)``). ``read_tensors(src)`` iterates over a stream;
  sparse messages read as :class:`SparseTensor`.
* :mod:`tensor_ipc.plasma` is ``pyarrow.plasma`` for current Python, numpy
  and pyarrow: change the import, keep the code.

pyarrow is optional: it is used when installed, never required.
"""

import os as _os

from tensor_ipc import _native
from tensor_ipc._native import SparseTensor, Tensor, TensorIpcError, __version__

__all__ = [
    "SparseTensor",
    "Tensor",
    "TensorIpcError",
    "read_sparse_tensor",
    "read_tensor",
    "read_tensors",
    "tensor_size",
    "write_tensor",
    "__version__",
]


def _byte_array(obj):
    """A uint8 numpy array over the memory of a bytes-like object (no copy)."""
    import numpy as np

    if isinstance(obj, np.ndarray) and obj.dtype == np.uint8 and obj.ndim == 1:
        return obj
    return np.frombuffer(obj, dtype=np.uint8)


def _is_path(obj):
    return isinstance(obj, (str, _os.PathLike))


def write_tensor(array, dest, *, dim_names=None):
    """Write ``array`` as one Arrow IPC tensor message into ``dest``.

    The bytes are those of ``pa.ipc.write_tensor(pa.Tensor.from_numpy(array,
    dim_names))``: a row- or column-major array is written as it lies in
    memory, any other layout gathered into row-major order in one pass
    (without an intermediate copy of the array).

    Parameters
    ----------
    array : numpy.ndarray or array-like
        int8 ... uint64, float16, float32 or float64, native byte order,
        any shape and strides (negative strides are copied first).
    dest : str, os.PathLike, file object or writable buffer
        A path (the file is created or truncated), an object with a
        ``write`` method (the message is appended at its position), or a
        writable bytes-like object (the message is written at its start).
    dim_names : sequence of str, optional
        One name per dimension (dropped for non-contiguous arrays, as
        Arrow C++ drops them).

    Returns
    -------
    int
        The size of the message in bytes.
    """
    names = None if dim_names is None else [str(n) for n in dim_names]
    if _is_path(dest):
        return _native.write_tensor_to_path(array, _os.fspath(dest), names)
    if hasattr(dest, "write"):
        return _write_to_file(array, dest, names)
    return _native.write_tensor_into(array, _byte_array(dest), names)


def _write_to_file(array, file, names):
    import numpy as np

    if isinstance(array, np.ndarray):
        head = _native.tensor_message_head(array, names) \
            if all(s >= 0 for s in array.strides) else None
        if head is not None:
            # Row- or column-major: the body is the array's memory as it is.
            body = array if array.flags.c_contiguous else array.T
            file.write(head)
            file.write(memoryview(np.frombuffer(body, dtype=np.uint8)))
            return len(head) + array.nbytes
    message = _native.encode_tensor(array, names)
    file.write(message)
    return len(message)


def tensor_size(array, *, dim_names=None):
    """The size in bytes of the tensor message of ``array`` (what
    ``pa.ipc.get_tensor_size`` gives)."""
    names = None if dim_names is None else [str(n) for n in dim_names]
    return _native.tensor_message_size(array, names)


def _reader(src):
    if _is_path(src):
        return _native.read_path(_os.fspath(src))
    return _native.read_buffer(_byte_array(src))


def read_tensor(src):
    """Read one dense tensor message from ``src``, zero-copy.

    Parameters
    ----------
    src : str, os.PathLike or bytes-like
        A path (the file is memory-mapped read-only), or any object with the
        buffer protocol: bytes, bytearray, memoryview, numpy array,
        ``pyarrow.Buffer``, a buffer of ``tensor_ipc.plasma``.

    Returns
    -------
    Tensor
        A tensor over ``src``'s memory, which it keeps alive.
    """
    return _reader(src).read_tensor()


def read_sparse_tensor(src):
    """Read one sparse tensor message (COO, CSR, CSC or CSF) from ``src``
    (as for :func:`read_tensor`), zero-copy."""
    return _reader(src).read_sparse_tensor()


def read_tensors(src):
    """Iterate over the tensor messages of a stream in ``src`` (as for
    :func:`read_tensor`): a :class:`Tensor` for each dense message, a
    :class:`SparseTensor` for each sparse one."""
    return iter(_reader(src))
