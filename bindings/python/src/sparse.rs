//! `SparseTensor`: a COO, CSR, CSC or CSF tensor read from a message, zero-copy.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use tensor_ipc::sparse::{IndexVector, SparseIndex};
use tensor_ipc::{DType, TensorData};

use crate::errors::CodecResult;
use crate::numpy_view::{array_over, numpy_dtype};
use crate::tensor::Tensor;

/// A sparse tensor read from a message: the non-zero values and their index, each a
/// read-only numpy array over the message's memory (zero-copy).
///
/// `format` is "coo", "csr", "csc" or "csf". COO has `coords` (nnz x ndim); CSR and CSC have
/// `indptr` and `indices`; CSF has lists `indptr` and `indices` (one array per level) and
/// `axis_order`. `to_numpy()` gives the dense array, `to_scipy()` a scipy.sparse matrix.
#[pyclass(module = "tensor_ipc", frozen)]
pub struct SparseTensor {
    inner: tensor_ipc::SparseTensor<'static>,
}

impl From<tensor_ipc::SparseTensor<'static>> for SparseTensor {
    fn from(inner: tensor_ipc::SparseTensor<'static>) -> Self {
        SparseTensor { inner }
    }
}

/// A read-only numpy array over `data` (owned by `owner`).
fn view<'py>(
    owner: &Bound<'py, SparseTensor>,
    data: &TensorData<'static>,
    dtype: DType,
    shape: &[usize],
    strides: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let strides = strides
        .iter()
        .map(|&s| isize::try_from(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PyValueError::new_err("a stride does not fit numpy's index type"))?;
    // SAFETY: `data` belongs to the sparse tensor held by `owner` (the array's base), which
    // validated at read time that these lengths and strides lie inside it.
    unsafe {
        array_over(
            owner.py(),
            owner.clone().into_any(),
            data.as_bytes().as_ptr(),
            numpy_dtype(owner.py(), dtype),
            shape,
            &strides,
            false,
        )
    }
}

fn index_view<'py>(
    owner: &Bound<'py, SparseTensor>,
    v: &IndexVector<'static>,
) -> PyResult<Bound<'py, PyAny>> {
    let width = v.index_type().byte_width();
    view(owner, v.data(), v.index_type(), &[v.len()], &[width])
}

fn format_error(what: &str, format: &str) -> PyErr {
    PyTypeError::new_err(format!("a {format} sparse tensor has no {what}"))
}

#[pymethods]
impl SparseTensor {
    /// The index format: "coo", "csr", "csc" or "csf".
    #[getter]
    fn format(&self) -> &'static str {
        self.inner.format().name()
    }

    /// The element type of the values, as a numpy dtype.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        numpy_dtype(py, self.inner.dtype()).into_any()
    }

    /// The element type of the index arrays, as a numpy dtype.
    #[getter]
    fn index_dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        numpy_dtype(py, self.inner.index_type()).into_any()
    }

    /// The shape of the dense tensor.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    /// The number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }

    /// The dimension names (`[]` when none is named).
    #[getter]
    fn dim_names(&self) -> Vec<String> {
        self.inner.dim_names().to_vec()
    }

    /// The number of stored values.
    #[getter]
    fn non_zero_length(&self) -> usize {
        self.inner.non_zero_length()
    }

    /// The number of elements of the dense tensor.
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }

    /// The stored values (one-dimensional, read-only, zero-copy).
    #[getter]
    fn data<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let s = &slf.get().inner;
        let width = s.dtype().byte_width();
        view(slf, s.data(), s.dtype(), &[s.non_zero_length()], &[width])
    }

    /// COO: the coordinates, an `nnz x ndim` array (read-only, zero-copy).
    #[getter]
    fn coords<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        match slf.get().inner.index() {
            SparseIndex::Coo(coo) => view(
                slf,
                coo.data(),
                coo.index_type(),
                &[coo.non_zero_length(), coo.ndim()],
                &coo.strides(),
            ),
            _ => Err(format_error("coords", slf.get().inner.format().name())),
        }
    }

    /// COO: whether the coordinates are sorted row-major without duplicates.
    #[getter]
    fn is_canonical(&self) -> PyResult<bool> {
        match self.inner.index() {
            SparseIndex::Coo(coo) => Ok(coo.is_canonical()),
            _ => Err(format_error("is_canonical", self.inner.format().name())),
        }
    }

    /// CSR/CSC: the index pointers (an array); CSF: one array per level but the last.
    #[getter]
    fn indptr<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        match slf.get().inner.index() {
            SparseIndex::Csx(csx) => index_view(slf, csx.indptr()),
            SparseIndex::Csf(csf) => {
                let views = csf
                    .indptr()
                    .iter()
                    .map(|v| index_view(slf, v))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(slf.py(), views)?.into_any())
            }
            SparseIndex::Coo(_) => Err(format_error("indptr", "coo")),
        }
    }

    /// CSR/CSC: the indices on the other axis (an array); CSF: one array per level.
    #[getter]
    fn indices<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        match slf.get().inner.index() {
            SparseIndex::Csx(csx) => index_view(slf, csx.indices()),
            SparseIndex::Csf(csf) => {
                let views = csf
                    .indices()
                    .iter()
                    .map(|v| index_view(slf, v))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(slf.py(), views)?.into_any())
            }
            SparseIndex::Coo(_) => Err(format_error("indices", "coo")),
        }
    }

    /// CSF: the order in which the levels visit the axes.
    #[getter]
    fn axis_order<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match self.inner.index() {
            SparseIndex::Csf(csf) => PyTuple::new(py, csf.axis_order()),
            _ => Err(format_error("axis_order", self.inner.format().name())),
        }
    }

    /// The dense tensor, as a new (writable) numpy array.
    fn to_numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let dense = py.detach(|| self.inner.to_dense()).py()?;
        Tensor::numpy_of(py, dense)?.call_method0("copy")
    }

    /// A scipy.sparse matrix (`coo_matrix`, `csr_matrix` or `csc_matrix`) sharing the index
    /// and value arrays; two-dimensional tensors only, and not CSF. Needs scipy.
    fn to_scipy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let s = &slf.get().inner;
        if s.ndim() != 2 {
            return Err(PyTypeError::new_err(format!(
                "scipy.sparse holds matrices; this tensor has {} dimensions",
                s.ndim()
            )));
        }
        let scipy = py.import("scipy.sparse")?;
        let shape = PyTuple::new(py, s.shape())?;
        let data = SparseTensor::data(slf)?;
        match s.index() {
            SparseIndex::Coo(_) => {
                let coords = SparseTensor::coords(slf)?;
                let rows = coords.get_item((pyo3::types::PySlice::full(py), 0))?;
                let cols = coords.get_item((pyo3::types::PySlice::full(py), 1))?;
                let ij = PyTuple::new(py, [rows, cols])?;
                let arg = PyTuple::new(py, [data, ij.into_any()])?;
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item("shape", shape)?;
                scipy.call_method("coo_matrix", (arg,), Some(&kwargs))
            }
            SparseIndex::Csx(_) => {
                let name = if s.format().name() == "csr" {
                    "csr_matrix"
                } else {
                    "csc_matrix"
                };
                let arg = PyTuple::new(
                    py,
                    [
                        data,
                        SparseTensor::indices(slf)?,
                        SparseTensor::indptr(slf)?,
                    ],
                )?;
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item("shape", shape)?;
                scipy.call_method(name, (arg,), Some(&kwargs))
            }
            SparseIndex::Csf(_) => Err(PyTypeError::new_err(
                "scipy.sparse has no CSF format; use to_numpy()",
            )),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "tensor_ipc.SparseTensor(format={}, dtype={}, shape={:?}, nnz={})",
            self.inner.format().name(),
            self.inner.dtype().name(),
            self.inner.shape(),
            self.inner.non_zero_length()
        )
    }
}
