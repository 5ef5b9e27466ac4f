//! `ObjectID`: a Plasma object id, 20 raw bytes (`pyarrow.plasma.ObjectID`).

use pyo3::exceptions::{PyDeprecationWarning, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tensor_ipc_plasma_client::ObjectId;
use tensor_ipc_plasma_client::protocol::OBJECT_ID_SIZE;

/// The warning `pyarrow.plasma` gave on every `ObjectID(...)` and `connect(...)`; kept so that
/// code (and tests) written against it behave the same. Starts with "Plasma", so the filter
/// `ignore:Plasma:DeprecationWarning` those test suites use keeps silencing it.
pub(crate) const DEPRECATION: &std::ffi::CStr = c"Plasma is deprecated in Apache Arrow since 10.0.0 and was removed in 12.0.0; tensor_ipc.plasma keeps its API for existing code";

/// Emits [`DEPRECATION`] as a `DeprecationWarning`.
pub(crate) fn warn_deprecated(py: Python<'_>) -> PyResult<()> {
    PyErr::warn(py, &py.get_type::<PyDeprecationWarning>(), DEPRECATION, 1)
}

/// An ObjectID represents a string of 20 bytes identifying a Plasma object.
///
/// Hashable, comparable, picklable. `ObjectID(b)` takes exactly 20 bytes;
/// `ObjectID.from_random()` draws one from the operating system's random source.
#[pyclass(module = "tensor_ipc.plasma", frozen, eq, ord, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectID(pub ObjectId);

#[pymethods]
impl ObjectID {
    #[new]
    fn new(py: Python<'_>, object_id: &Bound<'_, PyAny>) -> PyResult<Self> {
        let id = match object_id.cast::<PyBytes>() {
            Ok(b) if b.as_bytes().len() == OBJECT_ID_SIZE => ObjectId::from_slice(b.as_bytes())
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "Object ID must be {OBJECT_ID_SIZE} bytes, is {}",
                    object_id.str()?
                )));
            }
        };
        warn_deprecated(py)?;
        Ok(ObjectID(id))
    }

    /// A random ObjectID (20 bytes from the operating system's random source).
    #[staticmethod]
    fn from_random() -> PyResult<Self> {
        Ok(ObjectID(random_id()?))
    }

    /// The 20 bytes of the id.
    fn binary<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.0)
    }

    fn __repr__(&self) -> String {
        format!("ObjectID({})", self.0.hex())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let rebuild = py.get_type::<ObjectID>().getattr("_from_binary")?;
        let args = PyTuple::new(py, [slf.get().binary(py)])?;
        PyTuple::new(py, [rebuild, args.into_any()])
    }

    /// Rebuilds an id from its bytes (what unpickling calls; no deprecation warning).
    #[staticmethod]
    fn _from_binary(object_id: &[u8]) -> PyResult<Self> {
        ObjectId::from_slice(object_id)
            .map(ObjectID)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// 20 random bytes.
pub(crate) fn random_id() -> PyResult<ObjectId> {
    let mut bytes = [0u8; OBJECT_ID_SIZE];
    getrandom::fill(&mut bytes)
        .map_err(|e| PyValueError::new_err(format!("no random bytes for an ObjectID: {e}")))?;
    Ok(ObjectId(bytes))
}
