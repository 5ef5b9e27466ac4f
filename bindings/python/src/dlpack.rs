//! DLPack export of a tensor: the `dltensor_versioned` capsule (DLPack 1.0, with the read-only
//! flag) or, for older consumers, the unversioned `dltensor` capsule.
//!
//! The structs are DLPack's `dlpack.h` (v1.0) declared by hand. The capsule owns one heap
//! block holding the managed tensor, its shape and strides, and a clone of the tensor's data
//! (which keeps the memory alive); the consumer calls the deleter when done, or the capsule's
//! destructor does if nobody consumed it. This module holds `unsafe` FFI code.

use std::ffi::{CStr, c_void};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use tensor_ipc::{DType, TensorData};

/// `(kDLCPU, 0)`.
pub(crate) const CPU_DEVICE: (i32, i32) = (1, 0);

const VERSIONED_NAME: &CStr = c"dltensor_versioned";
const UNVERSIONED_NAME: &CStr = c"dltensor";

/// `DLPACK_FLAG_BITMASK_READ_ONLY`.
const FLAG_READ_ONLY: u64 = 1 << 0;
/// `DLPACK_FLAG_BITMASK_IS_COPIED`.
const FLAG_IS_COPIED: u64 = 1 << 1;

#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLPackVersion {
    major: u32,
    minor: u32,
}

#[repr(C)]
struct DLManagedTensorVersioned {
    version: DLPackVersion,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// What the capsule keeps alive: the shape and strides the `DLTensor` points to, and the data.
struct Context {
    shape: Vec<i64>,
    strides: Vec<i64>,
    _data: TensorData<'static>,
}

/// One heap block per capsule; the managed tensor comes first so that a pointer to it is a
/// pointer to the block.
#[repr(C)]
struct Versioned {
    managed: DLManagedTensorVersioned,
    context: Context,
}

#[repr(C)]
struct Unversioned {
    managed: DLManagedTensor,
    context: Context,
}

unsafe extern "C" fn delete_versioned(managed: *mut DLManagedTensorVersioned) {
    if !managed.is_null() {
        // SAFETY: `managed` is the first field of a `Versioned` made by `Box::into_raw` in
        // `export`, and DLPack calls the deleter once.
        drop(unsafe { Box::from_raw(managed.cast::<Versioned>()) });
    }
}

unsafe extern "C" fn delete_unversioned(managed: *mut DLManagedTensor) {
    if !managed.is_null() {
        // SAFETY: as in `delete_versioned`, for an `Unversioned`.
        drop(unsafe { Box::from_raw(managed.cast::<Unversioned>()) });
    }
}

/// The capsule destructor: deletes the tensor unless a consumer took it (and renamed the
/// capsule to `used_dltensor...`).
unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with a live capsule; the names are NUL-terminated; a capsule
    // still carrying one of our names holds the pointer `export` stored, whose deleter is set.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, VERSIONED_NAME.as_ptr()) == 1 {
            let managed = ffi::PyCapsule_GetPointer(capsule, VERSIONED_NAME.as_ptr())
                .cast::<DLManagedTensorVersioned>();
            if let Some(deleter) = (*managed).deleter {
                deleter(managed);
            }
        } else if ffi::PyCapsule_IsValid(capsule, UNVERSIONED_NAME.as_ptr()) == 1 {
            let managed = ffi::PyCapsule_GetPointer(capsule, UNVERSIONED_NAME.as_ptr())
                .cast::<DLManagedTensor>();
            if let Some(deleter) = (*managed).deleter {
                deleter(managed);
            }
        }
    }
}

fn data_type(dtype: DType) -> DLDataType {
    let code = if dtype.is_float() {
        2 // kDLFloat
    } else if dtype.is_signed() {
        0 // kDLInt
    } else {
        1 // kDLUInt
    };
    DLDataType {
        code,
        bits: dtype.bit_width() as u8,
        lanes: 1,
    }
}

/// A DLPack capsule over `tensor` (its memory, read-only; or a row-major copy when `copy`).
pub(crate) fn export<'py>(
    py: Python<'py>,
    tensor: &tensor_ipc::Tensor<'static>,
    versioned: bool,
    copy: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if !versioned && !copy {
        return Err(PyBufferError::new_err(
            "a tensor_ipc.Tensor is read-only, which an unversioned DLPack capsule cannot say: \
             use a consumer of the versioned protocol (max_version >= (1, 0), e.g. numpy >= 2.1 \
             np.from_dlpack), pass copy=True, or use numpy.asarray",
        ));
    }
    let width = tensor.dtype().byte_width();
    let (data, strides): (TensorData<'static>, Vec<usize>) = if copy {
        let bytes = tensor
            .to_row_major_bytes()
            .map_err(crate::errors::codec_error)?;
        let strides = tensor_ipc::layout::row_major_strides(tensor.shape(), width)
            .map_err(crate::errors::codec_error)?;
        (
            TensorData::Shared(arrow_buffer::Buffer::from_vec(bytes)),
            strides,
        )
    } else {
        (tensor.data().clone(), tensor.strides().to_vec())
    };
    let element_strides = strides
        .iter()
        .zip(tensor.shape())
        .map(|(&s, &d)| {
            if s % width == 0 || d <= 1 {
                i64::try_from(s / width).map_err(|_| "stride")
            } else {
                Err("misaligned")
            }
        })
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|_| {
            PyBufferError::new_err(format!(
                "the strides {strides:?} are not whole elements of {width} bytes, which DLPack \
                 needs (pass copy=True)"
            ))
        })?;
    let mut context = Context {
        shape: tensor.shape().iter().map(|&d| d as i64).collect(),
        strides: element_strides,
        _data: data,
    };
    let ndim = i32::try_from(tensor.ndim())
        .map_err(|_| PyBufferError::new_err("too many dimensions for DLPack"))?;
    let dl_tensor = DLTensor {
        data: context._data.as_bytes().as_ptr() as *mut c_void,
        device: DLDevice {
            device_type: CPU_DEVICE.0,
            device_id: CPU_DEVICE.1,
        },
        ndim,
        dtype: data_type(tensor.dtype()),
        shape: context.shape.as_mut_ptr(),
        strides: context.strides.as_mut_ptr(),
        byte_offset: 0,
    };
    let (pointer, name): (*mut c_void, &CStr) = if versioned {
        let block = Box::new(Versioned {
            managed: DLManagedTensorVersioned {
                version: DLPackVersion { major: 1, minor: 0 },
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(delete_versioned),
                flags: if copy { FLAG_IS_COPIED } else { FLAG_READ_ONLY },
                dl_tensor,
            },
            context,
        });
        (Box::into_raw(block).cast(), VERSIONED_NAME)
    } else {
        let block = Box::new(Unversioned {
            managed: DLManagedTensor {
                dl_tensor,
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(delete_unversioned),
            },
            context,
        });
        (Box::into_raw(block).cast(), UNVERSIONED_NAME)
    };
    // SAFETY: `pointer` is a live heap block of the kind `name` says; the shape and strides
    // vectors it points to moved with their heap buffers into the block, so the pointers stay
    // valid; the destructor frees it unless a consumer takes it over.
    let capsule = unsafe { ffi::PyCapsule_New(pointer, name.as_ptr(), Some(capsule_destructor)) };
    if capsule.is_null() {
        // SAFETY: the capsule was not made, so the block is still ours.
        unsafe {
            if versioned {
                delete_versioned(pointer.cast());
            } else {
                delete_unversioned(pointer.cast());
            }
        }
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new, non-null reference.
    Ok(unsafe { Bound::from_owned_ptr(py, capsule) })
}
