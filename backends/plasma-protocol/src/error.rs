use std::io;

/// Errors of the Plasma protocol layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying socket failed.
    #[error("plasma socket I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection at a frame boundary.
    #[error("plasma peer closed the connection")]
    Closed,
    /// A frame header carried a version other than 0.
    #[error("plasma frame has protocol version {version}, expected 0")]
    BadVersion {
        /// The version found.
        version: i64,
    },
    /// A frame header carried a message type this side does not know or accept.
    #[error("unknown or unexpected plasma message type {kind}")]
    UnknownType {
        /// The raw type word.
        kind: i64,
    },
    /// A frame header carried a negative or too large body length.
    #[error("plasma frame length {length} is outside 0..={max}")]
    BadLength {
        /// The length found.
        length: i64,
        /// The largest accepted length.
        max: u64,
    },
    /// A body failed FlatBuffers verification.
    #[error("plasma message {kind} failed flatbuffer verification: {source}")]
    Flatbuffer {
        /// The raw message type.
        kind: i64,
        /// What the verifier found.
        source: flatbuffers::InvalidFlatbuffer,
    },
    /// A required field is absent.
    #[error("plasma message {kind} lacks required field {field}")]
    MissingField {
        /// The raw message type.
        kind: i64,
        /// The field name.
        field: &'static str,
    },
    /// An object id was not exactly 20 bytes long.
    #[error("plasma object id has {len} bytes, expected 20")]
    ObjectIdLength {
        /// The length found.
        len: usize,
    },
    /// A request listed more ids than [`crate::MAX_IDS_PER_REQUEST`].
    #[error("plasma request lists {count} ids, at most {max} are accepted")]
    TooManyIds {
        /// The count found.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Parallel vectors of a message have different lengths.
    #[error("plasma message {kind}: field {field} has {found} entries, expected {expected}")]
    LengthMismatch {
        /// The raw message type.
        kind: i64,
        /// The field name.
        field: &'static str,
        /// Entries found.
        found: usize,
        /// Entries expected.
        expected: usize,
    },
    /// A `PlasmaError` code outside 0..=5.
    #[error("unknown plasma status code {code}")]
    UnknownStatus {
        /// The raw code.
        code: i32,
    },
    /// An fd-passing message did not carry exactly one descriptor.
    #[error("fd-passing message carried {count} descriptors, expected 1")]
    FdCount {
        /// Descriptors received.
        count: usize,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
