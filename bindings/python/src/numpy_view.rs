//! numpy arrays over memory that Rust owns, and the memory of numpy arrays seen from Rust.
//!
//! This module and `dlpack.rs` hold the crate's `unsafe` code: the numpy C API calls that make
//! an array over a pointer (its `base` object keeping the memory alive), and the slices Rust
//! reads from an array's data pointer.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;
use numpy::npyffi::{self, NPY_ARRAY_WRITEABLE, NpyTypes, PY_ARRAY_API, npy_intp};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods, dtype};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use tensor_ipc::DType;

/// The numpy dtype of a tensor element type.
pub(crate) fn numpy_dtype(py: Python<'_>, d: DType) -> Bound<'_, PyArrayDescr> {
    match d {
        DType::Int8 => dtype::<i8>(py),
        DType::Int16 => dtype::<i16>(py),
        DType::Int32 => dtype::<i32>(py),
        DType::Int64 => dtype::<i64>(py),
        DType::UInt8 => dtype::<u8>(py),
        DType::UInt16 => dtype::<u16>(py),
        DType::UInt32 => dtype::<u32>(py),
        DType::UInt64 => dtype::<u64>(py),
        DType::Float16 => dtype::<half::f16>(py),
        DType::Float32 => dtype::<f32>(py),
        DType::Float64 => dtype::<f64>(py),
        _ => dtype::<u8>(py),
    }
}

/// The tensor element type of a numpy dtype: native byte order, one of the 11 Arrow tensor
/// types; `None` for anything else (bool, complex, strings, records, big-endian, ...).
pub(crate) fn tensor_dtype(descr: &Bound<'_, PyArrayDescr>) -> Option<DType> {
    if descr.is_native_byteorder() == Some(false) || descr.has_fields() || descr.has_subarray() {
        return None;
    }
    Some(match (descr.kind(), descr.itemsize()) {
        (b'i', 1) => DType::Int8,
        (b'i', 2) => DType::Int16,
        (b'i', 4) => DType::Int32,
        (b'i', 8) => DType::Int64,
        (b'u', 1) => DType::UInt8,
        (b'u', 2) => DType::UInt16,
        (b'u', 4) => DType::UInt32,
        (b'u', 8) => DType::UInt64,
        (b'f', 2) => DType::Float16,
        (b'f', 4) => DType::Float32,
        (b'f', 8) => DType::Float64,
        _ => return None,
    })
}

/// A new numpy array of `descr`, `shape` and byte `strides` over the memory at `data`, with
/// `base` as its base object (which keeps the memory alive), read-only unless `writable`.
///
/// # Safety
/// Every element the shape and strides address must lie in memory valid for reads (and
/// writes, when `writable`) for as long as `base` lives; nothing else may write it while it is
/// read-only to numpy, unless the caller accepts that readers see the writes.
pub(crate) unsafe fn array_over<'py>(
    py: Python<'py>,
    base: Bound<'py, PyAny>,
    data: *const u8,
    descr: Bound<'py, PyArrayDescr>,
    shape: &[usize],
    strides: &[isize],
    writable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let nd = i32::try_from(shape.len())
        .map_err(|_| PyValueError::new_err("too many dimensions for numpy"))?;
    let mut dims = shape
        .iter()
        .map(|&d| npy_intp::try_from(d))
        .collect::<Result<Vec<npy_intp>, _>>()
        .map_err(|_| PyValueError::new_err("a dimension does not fit numpy's index type"))?;
    let mut strides: Vec<npy_intp> = strides.iter().map(|&s| s as npy_intp).collect();
    let flags = if writable { NPY_ARRAY_WRITEABLE } else { 0 };
    // SAFETY: the GIL is held (`py`); the type object is numpy's ndarray type; the descr
    // reference is handed over to numpy (`into_dtype_ptr` increments it, NewFromDescr steals
    // it, also on failure); dims and strides hold `nd` entries each; with a data pointer given,
    // numpy allocates nothing and only records the pointer, the flags, and (below) the base.
    // The caller guarantees the memory stays valid while `base` lives.
    let array = unsafe {
        let subtype = npyffi::get_type_object(py, NpyTypes::PyArray_Type);
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            subtype,
            descr.into_dtype_ptr(),
            nd,
            dims.as_mut_ptr(),
            strides.as_mut_ptr(),
            data as *mut c_void,
            flags,
            std::ptr::null_mut(),
        )
    };
    if array.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `array` is a new, non-null reference returned by numpy.
    let array = unsafe { Bound::from_owned_ptr(py, array) };
    // SAFETY: `array` is an ndarray that has no base yet; SetBaseObject steals the reference
    // `into_ptr` gives it (also on failure).
    let status = unsafe {
        PY_ARRAY_API.PyArray_SetBaseObject(
            py,
            array.as_ptr() as *mut npyffi::PyArrayObject,
            base.into_ptr(),
        )
    };
    if status < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(array)
}

/// A one-dimensional `uint8` array over `len` bytes at `data` (see [`array_over`]).
///
/// # Safety
/// As [`array_over`]: `len` bytes at `data` stay valid while `base` lives.
pub(crate) unsafe fn bytes_over<'py>(
    py: Python<'py>,
    base: Bound<'py, PyAny>,
    data: *const u8,
    len: usize,
    writable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: forwarded from the caller.
    unsafe { array_over(py, base, data, dtype::<u8>(py), &[len], &[1], writable) }
}

/// What Rust needs to know about a numpy array to read (or write) its memory.
pub(crate) struct ArrayMemory {
    /// The address of element `[0, 0, ...]`.
    pub data: *mut u8,
    /// The shape.
    pub shape: Vec<usize>,
    /// The byte strides (possibly negative).
    pub strides: Vec<isize>,
    /// Bytes per element.
    pub itemsize: usize,
    /// The tensor element type, when the dtype is one.
    pub dtype: Option<DType>,
    /// Whether numpy lets the array be written.
    pub writable: bool,
}

impl ArrayMemory {
    /// Reads the layout of `array`, which must be a numpy array.
    pub(crate) fn of(array: &Bound<'_, PyAny>) -> PyResult<ArrayMemory> {
        let array = array
            .cast::<PyUntypedArray>()
            .map_err(|_| PyTypeError::new_err("expected a numpy array"))?;
        let descr = array.dtype();
        let ptr = array.as_array_ptr();
        // SAFETY: `ptr` is a live ndarray (we hold a reference to it) and the GIL is held.
        let (data, flags) = unsafe {
            let fields = npyffi::_PyArray_GET_ITEM_DATA(ptr);
            ((*fields).data as *mut u8, (*fields).flags)
        };
        Ok(ArrayMemory {
            data,
            shape: array.shape().to_vec(),
            strides: array.strides().to_vec(),
            itemsize: descr.itemsize(),
            dtype: tensor_dtype(&descr),
            writable: flags & NPY_ARRAY_WRITEABLE != 0,
        })
    }

    /// The byte strides as non-negative values, `None` when one is negative.
    pub(crate) fn unsigned_strides(&self) -> Option<Vec<usize>> {
        self.strides
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect()
    }

    /// Bytes from the first element to the end of the last one the strides address (0 for an
    /// empty array), for non-negative strides.
    pub(crate) fn span(&self) -> Option<usize> {
        if self.shape.contains(&0) {
            return Some(0);
        }
        let strides = self.unsigned_strides()?;
        self.shape
            .iter()
            .zip(&strides)
            .try_fold(self.itemsize, |end, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| x.checked_add(end))
            })
    }

    /// The bytes of the array's memory span, read-only.
    ///
    /// # Safety
    /// The array must stay alive (and keep its memory) for `'a`, and its strides must be
    /// non-negative (`span()` is `Some`). Writers of the array during `'a` race with the reader
    /// (as with any numpy function that releases the GIL).
    pub(crate) unsafe fn bytes<'a>(&self) -> &'a [u8] {
        let len = self.span().unwrap_or(0);
        if len == 0 {
            return &[];
        }
        // SAFETY: numpy guarantees that every addressed element lies in the array's memory,
        // which spans `len` bytes from `data`; the caller keeps the array alive.
        unsafe { std::slice::from_raw_parts(self.data, len) }
    }

    /// The bytes of a contiguous one-dimensional `uint8` array, writable.
    ///
    /// # Safety
    /// The array must stay alive for `'a` and be written by nothing else meanwhile.
    pub(crate) unsafe fn bytes_mut<'a>(&self) -> PyResult<&'a mut [u8]> {
        if !self.writable {
            return Err(PyTypeError::new_err("the destination buffer is read-only"));
        }
        let len = self.byte_len()?;
        if len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: a contiguous byte array of `len` bytes, writable, kept alive by the caller.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.data, len) })
    }

    /// The length of a contiguous one-dimensional `uint8` array.
    pub(crate) fn byte_len(&self) -> PyResult<usize> {
        match (
            self.shape.as_slice(),
            self.strides.as_slice(),
            self.itemsize,
        ) {
            ([len], [1], 1) => Ok(*len),
            ([0], _, 1) => Ok(0),
            _ => Err(PyValueError::new_err(
                "expected a contiguous buffer of bytes",
            )),
        }
    }
}

/// A Python object that owns memory an Arrow [`Buffer`] points into (any `Send + Sync +
/// RefUnwindSafe` type is an Arrow allocation owner).
struct PyOwner {
    _object: std::panic::AssertUnwindSafe<Py<PyAny>>,
}

/// An Arrow [`Buffer`] over the bytes of a contiguous one-dimensional `uint8` numpy array,
/// keeping the array (and whatever exported its memory to it) alive. Zero-copy.
pub(crate) fn buffer_of(array: &Bound<'_, PyAny>) -> PyResult<Buffer> {
    let memory = ArrayMemory::of(array)?;
    let len = memory.byte_len()?;
    if len == 0 {
        return Ok(Buffer::from_vec(Vec::<u8>::new()));
    }
    let owner = Arc::new(PyOwner {
        _object: std::panic::AssertUnwindSafe(array.clone().unbind()),
    });
    let ptr = NonNull::new(memory.data)
        .ok_or_else(|| PyValueError::new_err("the buffer has a null data pointer"))?;
    // SAFETY: `len` bytes at `ptr` belong to the array, which `owner` keeps alive until the
    // last clone of the buffer is dropped; the buffer is only ever read. (A writable source,
    // a bytearray say, may still be written from Python: readers of the buffer then see the
    // new bytes, as readers of a numpy view would.)
    Ok(unsafe { Buffer::from_custom_allocation(ptr, len, owner) })
}
