//! `Tensor` (a dense tensor read zero-copy) and the tensor message codec between numpy arrays
//! and files, buffers and bytes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pyo3::exceptions::{PyBufferError, PyOSError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tensor_ipc::{
    Error, Header, ReadOptions, TensorData, TensorSink, TensorSource, read_message, tensor_size,
    write_tensor,
};
use tensor_ipc_file::{FileSink, FileSource};
use tensor_ipc_memory::BufferSource;

use crate::errors::{CodecResult, TensorIpcError, codec_error};
use crate::numpy_view::{ArrayMemory, array_over, buffer_of, numpy_dtype};
use crate::sparse::SparseTensor;

/// `obj` as a numpy array whose strides are all non-negative: `obj` itself when it is one,
/// `numpy.asarray(obj)` for anything else, and a C-contiguous copy of an array with negative
/// strides (which Arrow tensors cannot describe).
pub(crate) fn contiguous_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let numpy = py.import("numpy")?;
    let array = if obj.is_instance(&numpy.getattr("ndarray")?)? {
        obj.clone()
    } else {
        numpy.call_method1("asarray", (obj,))?
    };
    let memory = ArrayMemory::of(&array)?;
    if memory.unsigned_strides().is_some() {
        Ok(array)
    } else {
        numpy.call_method1("ascontiguousarray", (array,))
    }
}

/// A tensor over the memory of a numpy array (no copy).
///
/// # Safety
/// The array must stay alive, with its memory, for `'a`.
pub(crate) unsafe fn array_tensor<'a>(
    memory: &ArrayMemory,
    dim_names: Vec<String>,
) -> PyResult<tensor_ipc::Tensor<'a>> {
    let dtype = memory.dtype.ok_or_else(|| {
        PyTypeError::new_err(
            "the array's dtype is not a tensor type (int8...uint64, float16/32/64 in native \
             byte order)",
        )
    })?;
    let strides = memory
        .unsigned_strides()
        .ok_or_else(|| PyValueError::new_err("negative strides"))?;
    // SAFETY: forwarded from the caller; strides are non-negative.
    let bytes = unsafe { memory.bytes() };
    tensor_ipc::Tensor::with_layout(
        dtype,
        TensorData::Borrowed(bytes),
        memory.shape.clone(),
        strides,
        dim_names,
    )
    .py()
}

/// Runs `f` on the tensor over `array` (any numpy array or array-like) without the GIL.
fn with_array_tensor<R: Send>(
    array: &Bound<'_, PyAny>,
    dim_names: Option<Vec<String>>,
    f: impl FnOnce(&tensor_ipc::Tensor<'_>) -> tensor_ipc::Result<R> + Send,
) -> PyResult<tensor_ipc::Result<R>> {
    let array = contiguous_array(array)?;
    let memory = ArrayMemory::of(&array)?;
    // SAFETY: `array` lives until this function returns, after `f`.
    let tensor = unsafe { array_tensor(&memory, dim_names.unwrap_or_default())? };
    Ok(array.py().detach(|| f(&tensor)))
}

/// A sink writing one message at the start of a borrowed region.
struct SliceSink<'a> {
    region: &'a mut [u8],
    used: usize,
}

impl TensorSink for SliceSink<'_> {
    fn reserve(&mut self, len: usize) -> tensor_ipc::Result<&mut [u8]> {
        let end = self
            .used
            .checked_add(len)
            .filter(|&e| e <= self.region.len());
        match end {
            Some(end) => {
                let start = self.used;
                self.used = end;
                Ok(&mut self.region[start..end])
            }
            None => Err(Error::SinkFull {
                requested: len as u64,
                reason: "the destination buffer is smaller than the message",
            }),
        }
    }

    fn commit(&mut self) -> tensor_ipc::Result<()> {
        Ok(())
    }
}

/// An I/O error about `path` as an `OSError` naming the file.
fn path_error(e: Error, path: &Path) -> PyErr {
    if let Error::Io(io) = &e
        && let Some(errno) = io.raw_os_error()
    {
        let message = std::io::Error::from_raw_os_error(errno).to_string();
        return PyOSError::new_err((errno, message, path.display().to_string()));
    }
    codec_error(e)
}

/// Writes `array` as one tensor message into a new file at `path`; returns its size.
#[pyfunction]
#[pyo3(signature = (array, path, dim_names=None))]
pub fn write_tensor_to_path(
    array: &Bound<'_, PyAny>,
    path: PathBuf,
    dim_names: Option<Vec<String>>,
) -> PyResult<usize> {
    let target = path.clone();
    with_array_tensor(array, dim_names, move |tensor| {
        let mut sink = FileSink::create(&path)?;
        let written = write_tensor(tensor, &mut sink)?;
        sink.finish()?;
        Ok(written)
    })?
    .map_err(|e| path_error(e, &target))
}

/// Writes `array` as one tensor message at the start of `dest` (a writable contiguous
/// `uint8` array); returns the message size.
#[pyfunction]
#[pyo3(signature = (array, dest, dim_names=None))]
pub fn write_tensor_into(
    array: &Bound<'_, PyAny>,
    dest: &Bound<'_, PyAny>,
    dim_names: Option<Vec<String>>,
) -> PyResult<usize> {
    let memory = ArrayMemory::of(dest)?;
    // SAFETY: `dest` lives until this function returns.
    let region = unsafe { memory.bytes_mut()? };
    with_array_tensor(array, dim_names, move |tensor| {
        write_tensor(tensor, &mut SliceSink { region, used: 0 })
    })?
    .py()
}

/// The tensor message of `array`, as `bytes`.
#[pyfunction]
#[pyo3(signature = (array, dim_names=None))]
pub fn encode_tensor<'py>(
    array: &Bound<'py, PyAny>,
    dim_names: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = array.py();
    let array = contiguous_array(array)?;
    let memory = ArrayMemory::of(&array)?;
    // SAFETY: `array` lives until this function returns.
    let tensor = unsafe { array_tensor(&memory, dim_names.unwrap_or_default())? };
    let size = tensor_size(&tensor).py()?;
    PyBytes::new_with(py, size, |region| {
        py.detach(|| write_tensor(&tensor, &mut SliceSink { region, used: 0 }))
            .py()
            .map(drop)
    })
}

/// For an array whose data is the message body as it is (row- or column-major): the bytes
/// of the message before the body. `None` for other layouts (whose body is gathered).
#[pyfunction]
#[pyo3(signature = (array, dim_names=None))]
pub fn tensor_message_head<'py>(
    array: &Bound<'py, PyAny>,
    dim_names: Option<Vec<String>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let py = array.py();
    let memory = ArrayMemory::of(array)?;
    // SAFETY: `array` lives until this function returns.
    let tensor = unsafe { array_tensor(&memory, dim_names.unwrap_or_default())? };
    if !tensor.is_contiguous() {
        return Ok(None);
    }
    let total = tensor_size(&tensor).py()?;
    let head_len = total - tensor.dense_byte_len();
    let mut sink = HeadSink {
        head_len,
        head: Vec::new(),
        whole: Vec::new(),
    };
    write_tensor(&tensor, &mut sink).py()?;
    Ok(Some(PyBytes::new(py, &sink.head)))
}

/// The size in bytes of the tensor message of `array`.
#[pyfunction]
#[pyo3(signature = (array, dim_names=None))]
pub fn tensor_message_size(
    array: &Bound<'_, PyAny>,
    dim_names: Option<Vec<String>>,
) -> PyResult<usize> {
    let array = contiguous_array(array)?;
    let memory = ArrayMemory::of(&array)?;
    // SAFETY: `array` lives until this function returns.
    let tensor = unsafe { array_tensor(&memory, dim_names.unwrap_or_default())? };
    tensor_size(&tensor).py()
}

/// A sink that keeps only the first `head_len` bytes of the message.
struct HeadSink {
    head_len: usize,
    head: Vec<u8>,
    /// The whole message when the writer goes through `reserve` (not for contiguous arrays).
    whole: Vec<u8>,
}

impl TensorSink for HeadSink {
    fn reserve(&mut self, len: usize) -> tensor_ipc::Result<&mut [u8]> {
        self.whole = vec![0; len];
        Ok(&mut self.whole)
    }

    fn commit(&mut self) -> tensor_ipc::Result<()> {
        self.head = self.whole[..self.head_len.min(self.whole.len())].to_vec();
        self.whole = Vec::new();
        Ok(())
    }

    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> tensor_ipc::Result<()> {
        tensor_ipc::check_parts_len(len, parts)?;
        for part in parts {
            let want = self.head_len - self.head.len();
            if want == 0 {
                break;
            }
            self.head.extend_from_slice(&part[..want.min(part.len())]);
        }
        Ok(())
    }
}

/// A dense tensor read from a message, zero-copy: its data is the memory the message was read
/// from (a mapped file, a buffer, a Plasma object), kept alive while the tensor (or any array
/// made from it) lives.
///
/// Converts without copying: `numpy.asarray(t)`, `t.to_numpy()` (read-only arrays), and
/// DLPack (`numpy.from_dlpack(t)`, versioned capsules flagged read-only).
#[pyclass(module = "tensor_ipc", frozen)]
pub struct Tensor {
    pub(crate) inner: tensor_ipc::Tensor<'static>,
}

impl Tensor {
    /// A read-only numpy array over a tensor's data, whose base is a new `Tensor`.
    pub(crate) fn numpy_of<'py>(
        py: Python<'py>,
        tensor: tensor_ipc::Tensor<'static>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Tensor::to_numpy(&Bound::new(py, Tensor { inner: tensor })?)
    }
}

#[pymethods]
impl Tensor {
    /// The element type, as a numpy dtype.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        numpy_dtype(py, self.inner.dtype()).into_any()
    }

    /// The shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    /// The byte strides.
    #[getter]
    fn strides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.strides())
    }

    /// The dimension names (empty strings for unnamed dimensions; `[]` when none is named).
    #[getter]
    fn dim_names(&self) -> Vec<String> {
        self.inner.dim_names().to_vec()
    }

    /// The number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }

    /// The number of elements.
    #[getter]
    fn size(&self) -> usize {
        self.inner.len()
    }

    /// The bytes of the elements (size times the element width).
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.dense_byte_len()
    }

    /// Whether the strides are row-major (C order) as Arrow defines it.
    #[getter]
    fn is_row_major(&self) -> bool {
        self.inner.is_row_major()
    }

    /// Whether the strides are column-major (Fortran order) as Arrow defines it.
    #[getter]
    fn is_column_major(&self) -> bool {
        self.inner.is_column_major()
    }

    /// Row- or column-major.
    #[getter]
    fn is_contiguous(&self) -> bool {
        self.inner.is_contiguous()
    }

    /// A read-only numpy array over the tensor's data (zero-copy).
    fn to_numpy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let t = &slf.get().inner;
        let strides = t
            .strides()
            .iter()
            .map(|&s| isize::try_from(s))
            .collect::<Result<Vec<isize>, _>>()
            .map_err(|_| PyValueError::new_err("a stride does not fit numpy's index type"))?;
        // SAFETY: the tensor's strides address only bytes of its data (checked when it was
        // read), which the tensor (the array's base, `slf`) keeps alive and never writes.
        unsafe {
            array_over(
                py,
                slf.clone().into_any(),
                t.as_bytes().as_ptr(),
                numpy_dtype(py, t.dtype()),
                t.shape(),
                &strides,
                false,
            )
        }
    }

    /// The numpy array protocol: a read-only view, or a copy when asked for one (`copy=True`
    /// or another dtype).
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(
        slf: &Bound<'py, Self>,
        dtype: Option<Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut array = Tensor::to_numpy(slf)?;
        if let Some(dtype) = dtype.filter(|d| !d.is_none()) {
            let same = array.getattr("dtype")?.eq(&dtype)?;
            if !same {
                if copy == Some(false) {
                    return Err(PyValueError::new_err(
                        "a tensor cannot be converted to another dtype without a copy",
                    ));
                }
                return array.call_method1("astype", (dtype,));
            }
        }
        if copy == Some(true) {
            array = array.call_method0("copy")?;
        }
        Ok(array)
    }

    /// DLPack export (the versioned protocol): a `dltensor_versioned` capsule flagged read-only,
    /// or a read-write copy with `copy=True`. Consumers that only know unversioned capsules
    /// (`max_version` absent) get one only with `copy=True`, since an unversioned capsule
    /// cannot say the memory is read-only (numpy refuses read-only arrays the same way).
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = stream; // CPU memory: there is no stream to synchronise with.
        if let Some(device) = dl_device
            && device != crate::dlpack::CPU_DEVICE
        {
            return Err(PyBufferError::new_err(format!(
                "a tensor_ipc.Tensor lives on the CPU (1, 0), not on device {device:?}"
            )));
        }
        let versioned = max_version.is_some_and(|(major, _)| major >= 1);
        crate::dlpack::export(py, &self.inner, versioned, copy == Some(true))
    }

    /// The DLPack device: `(1, 0)`, the CPU.
    fn __dlpack_device__(&self) -> (i32, i32) {
        crate::dlpack::CPU_DEVICE
    }

    fn __repr__(&self) -> String {
        let t = &self.inner;
        let names = if t.dim_names().is_empty() {
            String::new()
        } else {
            format!(", dim_names={:?}", t.dim_names())
        };
        format!(
            "tensor_ipc.Tensor(dtype={}, shape={:?}, strides={:?}{names})",
            t.dtype().name(),
            t.shape(),
            t.strides()
        )
    }
}

/// Reads tensor messages one after another from a mapped file or a buffer.
#[pyclass(module = "tensor_ipc._native")]
pub struct MessageReader {
    source: Mutex<Box<dyn TensorSource<'static> + Send>>,
}

/// One message read: a dense or a sparse tensor.
enum Read {
    Dense(tensor_ipc::Tensor<'static>),
    Sparse(tensor_ipc::SparseTensor<'static>),
}

impl MessageReader {
    fn next_message(&self) -> PyResult<Option<Read>> {
        let mut source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        let options = ReadOptions::default();
        let Some(message) = read_message(&mut **source, &options).py()? else {
            return Ok(None);
        };
        match &message.header {
            Header::Tensor(_) => Ok(Some(Read::Dense(message.into_tensor(&options).py()?))),
            Header::SparseTensor(_) => Ok(Some(Read::Sparse(
                message.into_sparse_tensor(&options).py()?,
            ))),
            other => Err(TensorIpcError::new_err(format!(
                "the stream holds a {} message, not a tensor",
                other.type_name()
            ))),
        }
    }
}

fn into_py(py: Python<'_>, read: Read) -> PyResult<Bound<'_, PyAny>> {
    match read {
        Read::Dense(t) => Ok(Bound::new(py, Tensor { inner: t })?.into_any()),
        Read::Sparse(s) => Ok(Bound::new(py, SparseTensor::from(s))?.into_any()),
    }
}

#[pymethods]
impl MessageReader {
    /// The next message, dense or sparse; `None` at the end of the stream.
    fn read_any<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next_message()?.map(|r| into_py(py, r)).transpose()
    }

    /// The next message, which must be a dense tensor.
    fn read_tensor(&self) -> PyResult<Tensor> {
        match self.next_message()? {
            Some(Read::Dense(t)) => Ok(Tensor { inner: t }),
            Some(Read::Sparse(_)) => Err(TensorIpcError::new_err(
                "the message is a sparse tensor: read it with read_sparse_tensor",
            )),
            None => Err(codec_error(Error::EndOfStream)),
        }
    }

    /// The next message, which must be a sparse tensor.
    fn read_sparse_tensor(&self) -> PyResult<SparseTensor> {
        match self.next_message()? {
            Some(Read::Sparse(s)) => Ok(SparseTensor::from(s)),
            Some(Read::Dense(_)) => Err(TensorIpcError::new_err(
                "the message is a dense tensor: read it with read_tensor",
            )),
            None => Err(codec_error(Error::EndOfStream)),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.read_any(py)? {
            Some(item) => Ok(item),
            None => Err(PyStopIteration::new_err(())),
        }
    }
}

/// A reader over the file at `path`, memory-mapped (tensors read are views of the mapping).
#[pyfunction]
pub fn read_path(path: PathBuf) -> PyResult<MessageReader> {
    let source = FileSource::open(&path).map_err(|e| path_error(e, &path))?;
    Ok(MessageReader {
        source: Mutex::new(Box::new(source)),
    })
}

/// A reader over the bytes of a contiguous `uint8` array (tensors read are views of them).
#[pyfunction]
pub fn read_buffer(buffer: &Bound<'_, PyAny>) -> PyResult<MessageReader> {
    let buffer = buffer_of(buffer)?;
    Ok(MessageReader {
        source: Mutex::new(Box::new(BufferSource::new(buffer))),
    })
}
