//! The crate's one error type, [`ObjectStoreError`], and how `object_store`'s errors map onto
//! it.

use std::error::Error as StdError;
use std::io;

use object_store::client::{HttpError, HttpErrorKind};

/// Everything that can go wrong between a sink or source and its object store.
///
/// Sinks and sources hand these to the core inside [`tensor_ipc::Error::Io`] (with the
/// matching [`io::ErrorKind`]), so `write_tensor` and `read_tensor` fail with them;
/// [`ObjectStoreError::find`] gets the typed error back out. Damaged or cut-short objects are
/// the core's own errors ([`tensor_ipc::Error::Truncated`], an invalid flatbuffer...), as for
/// every other backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectStoreError {
    /// The URL is not one of the supported forms, or its store could not be configured.
    #[error("invalid object store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// There is no object under the key.
    #[error("{url}: no such object")]
    NotFound {
        /// The object's URL.
        url: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The bucket (or container) named by the URL does not exist.
    #[error("{url}: the bucket does not exist")]
    NoSuchBucket {
        /// The object's URL.
        url: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The store refused the credentials or the operation.
    #[error("{url}: access denied ({operation}): {source}")]
    AccessDenied {
        /// The object's URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// No connection could be made to the store, after the configured retries.
    #[error("{url}: cannot reach the object store ({operation}): {source}")]
    Unreachable {
        /// The object's URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The store did not answer in time, after the configured retries.
    #[error("{url}: the object store did not answer in time ({operation}): {source}")]
    TimedOut {
        /// The object's URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// A transfer broke off in the middle (the connection dropped or the server went away).
    #[error("{url}: the transfer broke off ({operation}): {source}")]
    Interrupted {
        /// The object's URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The object was replaced or deleted while it was being read (its ETag no longer
    /// matches the one seen when the source opened it).
    #[error("{url}: the object changed while it was being read ({detail})")]
    Changed {
        /// The object's URL.
        url: String,
        /// How it showed: the store refused the conditional read, or answered with another
        /// ETag or size.
        detail: String,
    },

    /// The store answered with something that contradicts the request (a range other than
    /// the one asked for, more bytes than the object holds).
    #[error("{url}: unexpected answer from the object store: {reason}")]
    BadResponse {
        /// The object's URL.
        url: String,
        /// What was wrong.
        reason: String,
    },

    /// Any other error of the store.
    #[error("{url}: {operation} failed: {source}")]
    Store {
        /// The object's URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The backend's runtime could not be started.
    #[error("cannot start the object store runtime: {0}")]
    Runtime(#[source] io::Error),

    /// The sink cannot go on: an earlier write or upload failed (the upload was aborted), or
    /// the sink was used in the wrong order.
    #[error("{url}: {reason}")]
    SinkState {
        /// The object's URL.
        url: String,
        /// What happened.
        reason: &'static str,
    },
}

impl ObjectStoreError {
    /// Classifies an error of `object_store` met while doing `operation` on `url`.
    pub(crate) fn from_store(url: &str, operation: &'static str, e: object_store::Error) -> Self {
        let url = url.to_owned();
        let source = Box::new(e);
        let mentions = |needle: &str| chain_mentions(source.as_ref(), needle);
        if mentions("NoSuchBucket") || mentions("The specified bucket does not exist") {
            return Self::NoSuchBucket { url, source };
        }
        match source.as_ref() {
            object_store::Error::NotFound { .. } => Self::NotFound { url, source },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Self::AccessDenied {
                url,
                operation,
                source,
            },
            object_store::Error::Precondition { .. } => Self::Changed {
                url,
                detail: source.to_string(),
            },
            _ => match http_error_kind(source.as_ref()) {
                Some(HttpErrorKind::Connect) => Self::Unreachable {
                    url,
                    operation,
                    source,
                },
                Some(HttpErrorKind::Timeout) => Self::TimedOut {
                    url,
                    operation,
                    source,
                },
                Some(HttpErrorKind::Interrupted | HttpErrorKind::Request) => Self::Interrupted {
                    url,
                    operation,
                    source,
                },
                _ if mentions("AccessDenied")
                    || mentions("InvalidAccessKeyId")
                    || mentions("SignatureDoesNotMatch") =>
                {
                    Self::AccessDenied {
                        url,
                        operation,
                        source,
                    }
                }
                _ => Self::Store {
                    url,
                    operation,
                    source,
                },
            },
        }
    }

    /// The closest [`io::ErrorKind`], used when the error travels inside an [`io::Error`].
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::InvalidUrl { .. } => io::ErrorKind::InvalidInput,
            Self::NotFound { .. } | Self::NoSuchBucket { .. } => io::ErrorKind::NotFound,
            Self::AccessDenied { .. } => io::ErrorKind::PermissionDenied,
            Self::Unreachable { .. } => io::ErrorKind::ConnectionRefused,
            Self::TimedOut { .. } => io::ErrorKind::TimedOut,
            Self::Interrupted { .. } => io::ErrorKind::ConnectionAborted,
            Self::Changed { .. } | Self::BadResponse { .. } => io::ErrorKind::InvalidData,
            Self::Store { .. } | Self::Runtime(_) | Self::SinkState { .. } => io::ErrorKind::Other,
        }
    }

    /// The object store error inside a core error, if it carries one: how a caller of
    /// `read_tensor` or `write_tensor` tells "not found" from "access denied".
    pub fn find(error: &tensor_ipc::Error) -> Option<&ObjectStoreError> {
        match error {
            tensor_ipc::Error::Io(io) => io.get_ref()?.downcast_ref::<ObjectStoreError>(),
            _ => None,
        }
    }
}

/// The kind of the first HTTP transport error in the chain of `error`'s sources.
fn http_error_kind(error: &(dyn StdError + 'static)) -> Option<HttpErrorKind> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return Some(http.kind());
        }
        next = e.source();
    }
    None
}

/// Whether `error` or one of its sources says `needle` (S3 error codes travel as text in the
/// response body).
fn chain_mentions(error: &(dyn StdError + 'static), needle: &str) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.to_string().contains(needle) {
            return true;
        }
        next = e.source();
    }
    false
}

impl From<ObjectStoreError> for io::Error {
    fn from(e: ObjectStoreError) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

impl From<ObjectStoreError> for tensor_ipc::Error {
    fn from(e: ObjectStoreError) -> Self {
        tensor_ipc::Error::Io(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found() -> object_store::Error {
        object_store::Error::NotFound {
            path: "k".into(),
            source: "404".into(),
        }
    }

    #[test]
    fn kinds_survive_the_trip_through_the_core_error() {
        let e = ObjectStoreError::from_store("s3://b/k", "get", not_found());
        assert!(matches!(e, ObjectStoreError::NotFound { .. }));
        let core: tensor_ipc::Error = e.into();
        let tensor_ipc::Error::Io(io) = &core else {
            panic!("not an I/O error: {core}")
        };
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(matches!(
            ObjectStoreError::find(&core),
            Some(ObjectStoreError::NotFound { url, .. }) if url == "s3://b/k"
        ));
        assert_eq!(core.to_string(), "I/O error: s3://b/k: no such object");
        assert!(ObjectStoreError::find(&tensor_ipc::Error::EndOfStream).is_none());
    }

    #[test]
    fn store_errors_are_classified() {
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "403".into(),
        };
        assert!(matches!(
            ObjectStoreError::from_store("u", "put", denied),
            ObjectStoreError::AccessDenied {
                operation: "put",
                ..
            }
        ));
        let changed = object_store::Error::Precondition {
            path: "k".into(),
            source: "412".into(),
        };
        assert!(matches!(
            ObjectStoreError::from_store("u", "get", changed),
            ObjectStoreError::Changed { .. }
        ));
        let bucket = object_store::Error::Generic {
            store: "S3",
            source: "<Error><Code>NoSuchBucket</Code></Error>".into(),
        };
        assert!(matches!(
            ObjectStoreError::from_store("u", "put", bucket),
            ObjectStoreError::NoSuchBucket { .. }
        ));
        let connect = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                HttpErrorKind::Connect,
                io::Error::other("refused"),
            )),
        };
        assert!(matches!(
            ObjectStoreError::from_store("u", "get", connect),
            ObjectStoreError::Unreachable { .. }
        ));
        let other = object_store::Error::Generic {
            store: "S3",
            source: "500 Internal".into(),
        };
        assert!(matches!(
            ObjectStoreError::from_store("u", "get", other),
            ObjectStoreError::Store { .. }
        ));
    }
}
