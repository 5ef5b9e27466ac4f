"""Type stubs of tensor_ipc: Arrow tensor messages for numpy (zero-copy)."""

import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Source = Union[_Path, bytes, bytearray, memoryview, np.ndarray, Any]

class TensorIpcError(ValueError):
    """A tensor message could not be written or read (the message says why)."""

class Tensor:
    """A dense tensor read from a message, zero-copy: its data is the memory the
    message was read from (a mapped file, a buffer, a Plasma object), kept alive
    while the tensor or any array made from it lives.

    Converts without copying: ``numpy.asarray(t)``, ``t.to_numpy()`` (read-only
    arrays), and DLPack (``numpy.from_dlpack(t)``, read-only versioned capsules).
    """

    @property
    def dtype(self) -> np.dtype:
        """The element type."""
    @property
    def shape(self) -> Tuple[int, ...]:
        """The shape."""
    @property
    def strides(self) -> Tuple[int, ...]:
        """The byte strides."""
    @property
    def dim_names(self) -> List[str]:
        """The dimension names (``[]`` when none is named)."""
    @property
    def ndim(self) -> int:
        """The number of dimensions."""
    @property
    def size(self) -> int:
        """The number of elements."""
    @property
    def nbytes(self) -> int:
        """The bytes of the elements."""
    @property
    def is_row_major(self) -> bool:
        """Row-major (C order) strides, as Arrow defines them."""
    @property
    def is_column_major(self) -> bool:
        """Column-major (Fortran order) strides, as Arrow defines them."""
    @property
    def is_contiguous(self) -> bool:
        """Row- or column-major."""
    def to_numpy(self) -> np.ndarray:
        """A read-only numpy array over the tensor's data (zero-copy)."""
    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        """The numpy array protocol: a read-only view, or a copy when asked."""
    def __dlpack__(self, *, stream: Any = None, max_version: Optional[Tuple[int, int]] = None,
                   dl_device: Optional[Tuple[int, int]] = None,
                   copy: Optional[bool] = None) -> Any:
        """A DLPack capsule: versioned and read-only (``max_version >= (1, 0)``), or a
        read-write copy (``copy=True``)."""
    def __dlpack_device__(self) -> Tuple[int, int]:
        """``(1, 0)``: the CPU."""

class SparseTensor:
    """A sparse tensor (COO, CSR, CSC or CSF) read from a message; its value and
    index arrays are read-only numpy arrays over the message's memory."""

    @property
    def format(self) -> str:
        """"coo", "csr", "csc" or "csf"."""
    @property
    def dtype(self) -> np.dtype:
        """The element type of the values."""
    @property
    def index_dtype(self) -> np.dtype:
        """The element type of the index arrays."""
    @property
    def shape(self) -> Tuple[int, ...]:
        """The shape of the dense tensor."""
    @property
    def ndim(self) -> int:
        """The number of dimensions."""
    @property
    def dim_names(self) -> List[str]:
        """The dimension names (``[]`` when none is named)."""
    @property
    def non_zero_length(self) -> int:
        """The number of stored values."""
    @property
    def size(self) -> int:
        """The number of elements of the dense tensor."""
    @property
    def data(self) -> np.ndarray:
        """The stored values (one-dimensional)."""
    @property
    def coords(self) -> np.ndarray:
        """COO: the ``nnz x ndim`` coordinates."""
    @property
    def is_canonical(self) -> bool:
        """COO: sorted row-major, no duplicates."""
    @property
    def indptr(self) -> Union[np.ndarray, List[np.ndarray]]:
        """CSR/CSC: the index pointers; CSF: one array per level but the last."""
    @property
    def indices(self) -> Union[np.ndarray, List[np.ndarray]]:
        """CSR/CSC: the indices on the other axis; CSF: one array per level."""
    @property
    def axis_order(self) -> Tuple[int, ...]:
        """CSF: the order in which the levels visit the axes."""
    def to_numpy(self) -> np.ndarray:
        """The dense tensor, as a new writable array."""
    def to_scipy(self) -> Any:
        """A scipy.sparse coo/csr/csc matrix (two dimensions, not CSF)."""

def write_tensor(array: Any, dest: Any, *, dim_names: Optional[Sequence[str]] = None) -> int:
    """Write ``array`` as one Arrow tensor message into ``dest`` (a path, a file
    object or a writable buffer); returns the message size."""

def tensor_size(array: Any, *, dim_names: Optional[Sequence[str]] = None) -> int:
    """The size in bytes of the tensor message of ``array``."""

def read_tensor(src: _Source) -> Tensor:
    """Read one dense tensor message from a path (memory-mapped) or a bytes-like
    object, zero-copy."""

def read_sparse_tensor(src: _Source) -> SparseTensor:
    """Read one sparse tensor message, zero-copy."""

def read_tensors(src: _Source) -> Iterator[Union[Tensor, SparseTensor]]:
    """Iterate over the tensor messages of a stream."""
