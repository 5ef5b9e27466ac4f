//! The object-storage backend of tensor-ipc: tensor messages written to and read from S3,
//! Google Cloud Storage, Azure Blob Storage, HTTP servers, local files or memory, through the
//! [`object_store`] crate (the one arrow-rs, DataFusion and Lance use).
//!
//! ```
//! use tensor_ipc::{Tensor, TensorSinkExt, TensorSourceExt};
//! use tensor_ipc_object_store::{ObjectStoreSink, ObjectStoreSource};
//!
//! // `s3://bucket/key`, `gs://...`, `az://...`, `https://...` and `file:///...` work the same
//! // way, configured from the environment (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...).
//! let mut sink = ObjectStoreSink::create_url("memory://doc/t.arrow_tensor")?;
//! sink.write_tensor(&Tensor::from_vec(vec![2.0f32; 1000], vec![1000])?)?;
//! sink.finish()?; // the object appears now, all at once
//!
//! let tensor = ObjectStoreSource::open_url("memory://doc/t.arrow_tensor")?.read_tensor()?;
//! assert_eq!(tensor.values::<f32>()?[999], 2.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The API is synchronous: the backend owns one tokio runtime and runs every transfer on it,
//! so `write_tensor(&t, &mut sink)` and `read_tensor(&mut source)` are used exactly as with
//! files. [`ObjectStorage`] wraps any `Arc<dyn ObjectStore>` or builds one from a URL;
//! [`TransferOptions`] sets the part size and concurrency, [`ConnectOptions`] the timeouts and
//! bounded retries. Failures are [`ObjectStoreError`]s (not found, no such bucket, access
//! denied, unreachable, timed out, changed while read...), carried inside
//! [`tensor_ipc::Error::Io`] by the sink and source and found again with
//! [`ObjectStoreError::find`]; damaged objects are the core's errors, as for files.

#![warn(missing_docs)]

mod aligned;
mod error;
mod fetch;
mod options;
mod runtime;
mod sink;
mod source;
mod storage;

pub use error::ObjectStoreError;
pub use options::{ConnectOptions, TransferOptions};
pub use sink::{MAX_PARTS, ObjectStoreSink};
pub use source::ObjectStoreSource;
pub use storage::{ObjectInfo, ObjectStorage};

/// Re-exported so callers can name stores and keys without depending on `object_store`
/// themselves.
pub use object_store::{self, ObjectStore, path::Path};
