//! Errors of the Plasma client.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::ObjectId;

/// What a Plasma client call can fail with.
///
/// Store errors (`ObjectExists`, `ObjectNotFound`, `OutOfMemory`,
/// `ObjectNotSealed`, `ObjectInUse`) are typed; a dead store or a broken
/// socket is [`Disconnected`](ClientError::Disconnected), a store that stops
/// answering is [`Timeout`](ClientError::Timeout). After either of those the
/// connection is unusable and every later call fails fast with
/// `Disconnected`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Every connection attempt failed.
    #[error("could not connect to the plasma store socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The last attempt's error.
        source: io::Error,
    },
    /// The object id already exists in the store.
    #[error("object {0} already exists in the plasma store")]
    ObjectExists(ObjectId),
    /// The object does not exist in the store (or not sealed before the timeout).
    #[error("object {0} does not exist in the plasma store")]
    ObjectNotFound(ObjectId),
    /// The object does not fit in the store.
    #[error("object of {size} bytes does not fit in the plasma store")]
    OutOfMemory {
        /// The object, when the request named one.
        id: Option<ObjectId>,
        /// Data plus metadata bytes requested.
        size: u64,
    },
    /// The object is not sealed.
    #[error("object {0} is not sealed")]
    ObjectNotSealed(ObjectId),
    /// The object is in use (referenced) and the request needs it free.
    #[error("object {0} is in use")]
    ObjectInUse(ObjectId),
    /// The store closed the connection or the socket failed.
    #[error("the plasma store disconnected: {0}")]
    Disconnected(String),
    /// The store did not answer within the request timeout.
    #[error("the plasma store did not answer within {0:?}")]
    Timeout(Duration),
    /// A reply could not be decoded.
    #[error("undecodable reply from the plasma store: {0}")]
    Protocol(#[from] tensor_ipc_plasma_protocol::Error),
    /// A reply decoded but made no sense (wrong type, id, sizes, offsets).
    #[error("invalid reply from the plasma store: {0}")]
    InvalidReply(String),
    /// The call is not allowed in the client's current state.
    #[error("invalid plasma client call: {0}")]
    InvalidCall(String),
    /// A local system call (mmap, socketpair) failed.
    #[error("plasma client I/O failed: {0}")]
    Io(#[source] io::Error),
}

impl ClientError {
    /// The closest `std::io::ErrorKind`, used when the error is carried
    /// inside an `io::Error`.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::Connect { source, .. } => source.kind(),
            Self::ObjectExists(_) => io::ErrorKind::AlreadyExists,
            Self::ObjectNotFound(_) => io::ErrorKind::NotFound,
            Self::OutOfMemory { .. } => io::ErrorKind::StorageFull,
            Self::ObjectNotSealed(_) | Self::ObjectInUse(_) => io::ErrorKind::ResourceBusy,
            Self::Disconnected(_) => io::ErrorKind::BrokenPipe,
            Self::Timeout(_) => io::ErrorKind::TimedOut,
            Self::Protocol(_) | Self::InvalidReply(_) => io::ErrorKind::InvalidData,
            Self::InvalidCall(_) => io::ErrorKind::InvalidInput,
            Self::Io(e) => e.kind(),
        }
    }
}

/// Carries the client error inside `std::io::Error` (recover it with
/// `io::Error::get_ref` and `downcast_ref::<ClientError>()`).
impl From<ClientError> for io::Error {
    fn from(e: ClientError) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

/// Carries the client error as [`tensor_ipc::Error::Io`].
impl From<ClientError> for tensor_ipc::Error {
    fn from(e: ClientError) -> Self {
        tensor_ipc::Error::Io(e.into())
    }
}

/// Result alias of the client.
pub type ClientResult<T> = std::result::Result<T, ClientError>;
