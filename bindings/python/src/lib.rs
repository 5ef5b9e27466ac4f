//! `tensor_ipc._native`: the compiled half of the `tensor_ipc` Python package.
//!
//! The Python modules (`tensor_ipc`, `tensor_ipc.plasma`) hold the public API and its
//! docstrings; this extension holds what must be fast or must touch memory:
//!
//! * `object_id.rs`: `ObjectID`, the 20-byte Plasma object id;
//! * `client.rs`: the Plasma client (`_native.Client`), over the Rust client, with every
//!   blocking call run without the GIL and waits cut into slices so Ctrl-C interrupts them;
//! * `tensor.rs`: `Tensor`, the dense tensor read zero-copy, and the tensor message codec
//!   between numpy arrays and files, buffers and bytes;
//! * `sparse.rs`: the `SparseTensor` class;
//! * `dlpack.rs`: the DLPack capsules of `Tensor.__dlpack__`;
//! * `numpy_view.rs`: numpy arrays over memory owned by Rust, and the memory of numpy arrays
//!   seen from Rust (this module and `dlpack.rs` hold the crate's `unsafe` code);
//! * `errors.rs`: Rust errors as Python exceptions, with the Rust messages;
//! * `cli.rs`: the `plasma-store` and `tensor-ipc` commands, run in-process.

mod cli;
mod client;
mod dlpack;
mod errors;
mod numpy_view;
mod object_id;
mod sparse;
mod tensor;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "TensorIpcError",
        m.py().get_type::<errors::TensorIpcError>(),
    )?;
    m.add_class::<object_id::ObjectID>()?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::PlasmaObject>()?;
    m.add_class::<client::CreatedBuffer>()?;
    m.add_class::<tensor::Tensor>()?;
    m.add_class::<tensor::MessageReader>()?;
    m.add_class::<sparse::SparseTensor>()?;
    m.add_function(wrap_pyfunction!(client::decode_notifications, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::write_tensor_to_path, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::write_tensor_into, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::encode_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::tensor_message_head, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::tensor_message_size, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::read_path, m)?)?;
    m.add_function(wrap_pyfunction!(tensor::read_buffer, m)?)?;
    m.add_function(wrap_pyfunction!(cli::run_plasma_store, m)?)?;
    m.add_function(wrap_pyfunction!(cli::run_tensor_ipc, m)?)?;
    m.add(
        "PICKLE_METADATA",
        pyo3::types::PyBytes::new(m.py(), client::PICKLE_METADATA),
    )?;
    Ok(())
}
