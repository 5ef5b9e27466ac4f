//! Arrow IPC tensor messages, byte-identical with Arrow C++ and pyarrow, written once into
//! any [`TensorSink`] and read back zero-copy from any [`TensorSource`].
//!
//! A dense tensor message is what Arrow C++ `ipc::WriteTensor` and `pyarrow.ipc.write_tensor`
//! produce:
//!
//! ```text
//! FF FF FF FF | L (i32 LE) | flatbuffer Message{Tensor} | zero padding | body
//! ^ message start                          8 + L is a multiple of 64 ^
//! ```
//!
//! ```
//! use tensor_ipc::{read_tensor, tensor_size, write_tensor, Tensor};
//!
//! let tensor = Tensor::from_vec(vec![2.0f32; 1000], vec![1000])?;
//! let mut message = Vec::new();
//! let written = write_tensor(&tensor, &mut message)?;
//! assert_eq!(written, tensor_size(&tensor)?);
//!
//! let back = read_tensor(&mut message.as_slice())?; // borrows `message`, no copy
//! assert_eq!(back.values::<f32>()?, tensor.values::<f32>()?);
//! # Ok::<(), tensor_ipc::Error>(())
//! ```
//!
//! The core does no I/O: backends (memory, file, Plasma shared memory) implement the two small
//! traits in [`sink`]. See `docs/FORMAT.md` for the byte layout and `docs/ARCHITECTURE.md` for
//! the code map.

#![warn(missing_docs)]

pub mod dtype;
pub mod error;
pub mod gather;
pub(crate) mod generated;
pub mod ipc;
pub mod layout;
pub mod sink;
pub mod sparse;
pub mod tensor;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use gather::Gather;
pub use ipc::{
    Framing, Header, Message, MessageHeader, MessageLayout, ReadOptions, TensorHeader,
    read_message, read_message_header, read_tensor, read_tensor_with, tensor_size, write_tensor,
};
pub use sink::{
    TensorSink, TensorSinkExt, TensorSource, TensorSourceExt, check_gather_len, check_parts_len,
    copy_parts,
};
pub use sparse::{
    SparseFormat, SparseTensor, SparseTensorHeader, read_sparse_tensor, sparse_tensor_size,
    write_sparse_tensor,
};
pub use tensor::{Tensor, TensorData};

/// Re-exported so users need not depend on `arrow-buffer` for the one type they touch.
pub use arrow_buffer::Buffer;
pub use half::f16;
