//! Rust errors as Python exceptions, carrying the Rust messages unchanged.
//!
//! * Codec errors ([`tensor_ipc::Error`]) become `tensor_ipc.TensorIpcError` (a `ValueError`);
//!   I/O errors become the matching `OSError` subclass (`FileNotFoundError`, ...).
//! * Plasma client errors become the exception classes of `tensor_ipc._errors`, which derive
//!   from `pyarrow.lib.ArrowException` when pyarrow is installed (as `pyarrow.plasma`'s did),
//!   so code that catches those keeps working.

use std::io;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use tensor_ipc_plasma_client::ClientError;

pyo3::create_exception!(
    tensor_ipc,
    TensorIpcError,
    PyValueError,
    "A tensor message could not be written or read (the message says why)."
);

/// The module defining the Plasma exception classes.
fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("tensor_ipc._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// An exception of class `name` from `tensor_ipc._errors` with `message`.
pub(crate) fn plasma_exception(py: Python<'_>, name: &str, message: String) -> PyErr {
    let class = errors_module(py)
        .and_then(|m| m.getattr(name))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, message),
        Err(e) => e,
    }
}

/// The exception class name of a client error.
fn client_error_class(e: &ClientError) -> &'static str {
    match e {
        ClientError::ObjectExists(_) => "PlasmaObjectExists",
        ClientError::ObjectNotFound(_) => "PlasmaObjectNotFound",
        ClientError::OutOfMemory { .. } => "PlasmaStoreFull",
        ClientError::ObjectNotSealed(_) => "PlasmaObjectNotSealed",
        ClientError::ObjectInUse(_) => "PlasmaObjectInUse",
        ClientError::Connect { .. } | ClientError::Disconnected(_) => "PlasmaConnectionError",
        ClientError::Timeout(_) => "PlasmaTimeoutError",
        ClientError::Protocol(_) | ClientError::InvalidReply(_) => "PlasmaProtocolError",
        ClientError::Io(_) => "PlasmaIOError",
        _ => "PlasmaError",
    }
}

/// A Plasma client error as its Python exception.
pub(crate) fn client_error(e: &ClientError) -> PyErr {
    Python::attach(|py| plasma_exception(py, client_error_class(e), e.to_string()))
}

/// A codec error as its Python exception; a Plasma error carried inside it (a sink or
/// source over a store) keeps its Plasma class.
pub(crate) fn codec_error(e: tensor_ipc::Error) -> PyErr {
    if let tensor_ipc::Error::Io(io) = &e {
        if let Some(client) = io.get_ref().and_then(|r| r.downcast_ref::<ClientError>()) {
            return client_error(client);
        }
        return io_error(io);
    }
    TensorIpcError::new_err(e.to_string())
}

/// An I/O error as the matching `OSError` subclass, with its message.
pub(crate) fn io_error(e: &io::Error) -> PyErr {
    let message = e.to_string();
    match e.raw_os_error() {
        // OSError(errno, strerror) picks the subclass (FileNotFoundError, ...) from errno.
        Some(errno) => PyOSError::new_err((errno, message)),
        None => PyErr::from(io::Error::new(e.kind(), message)),
    }
}

/// Converts a codec result.
pub(crate) trait CodecResult<T> {
    /// The value, or the error as a Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> CodecResult<T> for tensor_ipc::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(codec_error)
    }
}

/// Converts a client result.
pub(crate) trait ClientResultExt<T> {
    /// The value, or the error as a Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> ClientResultExt<T> for Result<T, ClientError> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| client_error(&e))
    }
}
