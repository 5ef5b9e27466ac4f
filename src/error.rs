//! The crate's one error type and its `Result` alias.

use crate::dtype::DType;

/// A specialised `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, writing or reading a tensor message.
///
/// Every variant carries the numbers that explain it, so a caller can match on the kind of
/// failure and a person can read the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from a sink or source backend.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The stream ended cleanly (an end-of-stream marker or no bytes at all) where a message
    /// was expected.
    #[error("end of stream: no message to read")]
    EndOfStream,

    /// The input ended inside a message.
    #[error("truncated {part}: expected {expected} bytes, only {available} available")]
    Truncated {
        /// Which part of the message was cut short.
        part: &'static str,
        /// The number of bytes the message announced.
        expected: u64,
        /// The number of bytes that were there.
        available: u64,
    },

    /// The 4-byte prefix was a negative number other than the continuation marker.
    #[error("invalid message prefix {value} (expected 0xFFFFFFFF or a metadata length)")]
    InvalidContinuation {
        /// The prefix read, as a signed 32-bit integer.
        value: i32,
    },

    /// The metadata length after the continuation marker was negative.
    #[error("negative metadata length {length}")]
    NegativeMetadataLength {
        /// The length field read.
        length: i32,
    },

    /// The metadata length exceeds the reader's configured limit.
    #[error("metadata length {length} exceeds the limit of {limit} bytes")]
    MetadataTooLarge {
        /// The length field read.
        length: u64,
        /// The configured limit ([`ReadOptions::max_metadata_len`](crate::ReadOptions)).
        limit: u64,
    },

    /// The metadata failed FlatBuffers verification.
    #[error("invalid flatbuffers message: {0}")]
    InvalidFlatbuffer(#[from] flatbuffers::InvalidFlatbuffer),

    /// The metadata version is older than V4 (Arrow < 0.8), which Arrow C++ no longer reads.
    #[error("old metadata version not supported (version code {version}, need V4 or V5)")]
    OldMetadataVersion {
        /// The `MetadataVersion` code in the message (V1 = 0 ... V5 = 4).
        version: i16,
    },

    /// The metadata version is newer than V5.
    #[error("unsupported future metadata version (version code {version}, need V4 or V5)")]
    FutureMetadataVersion {
        /// The `MetadataVersion` code in the message.
        version: i16,
    },

    /// The message declares a negative body length.
    #[error("negative body length {length}")]
    NegativeBodyLength {
        /// The `bodyLength` field.
        length: i64,
    },

    /// The message is not of the kind the caller asked for.
    #[error("header type of the message is {found}, not {expected}")]
    UnexpectedHeader {
        /// The header type found.
        found: &'static str,
        /// The header type wanted.
        expected: &'static str,
    },

    /// The message names an Arrow type that is not a tensor element type.
    #[error("{type_name} is not a valid data type for a tensor")]
    UnsupportedType {
        /// The Arrow type's name.
        type_name: String,
    },

    /// An `Int` type with a bit width other than 8, 16, 32 or 64.
    #[error("integer bit width {bit_width} is not supported")]
    UnsupportedBitWidth {
        /// The `bitWidth` field.
        bit_width: i32,
    },

    /// A `FloatingPoint` type with an unknown precision code.
    #[error("floating point precision code {precision} is not supported")]
    UnsupportedPrecision {
        /// The `precision` field.
        precision: i16,
    },

    /// Shape and strides have different lengths.
    #[error("the sizes of shape ({shape_len}) and strides ({strides_len}) are mismatched")]
    StridesLengthMismatch {
        /// Number of dimensions in the shape.
        shape_len: usize,
        /// Number of strides.
        strides_len: usize,
    },

    /// A dimension is negative.
    #[error("negative size {size} for dimension {axis}")]
    NegativeDimension {
        /// The axis.
        axis: usize,
        /// Its size.
        size: i64,
    },

    /// A stride of a non-empty axis is negative.
    #[error("negative stride {stride} for dimension {axis} is not supported")]
    NegativeStride {
        /// The axis.
        axis: usize,
        /// Its byte stride.
        stride: i64,
    },

    /// The strides reach past the end of the data.
    #[error(
        "strides must not involve buffer over run: the last element ends at byte {required}, \
         the data has {available} bytes"
    )]
    StridesOverrun {
        /// One past the last byte the strides address.
        required: u128,
        /// The length of the data.
        available: u64,
    },

    /// A size computation overflowed.
    #[error("{what} overflows a 64-bit size")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },

    /// The number of dimension names differs from the number of dimensions.
    #[error("{names} dimension names given for a tensor of {ndim} dimensions")]
    DimNamesMismatch {
        /// How many names were given.
        names: usize,
        /// How many dimensions the tensor has.
        ndim: usize,
    },

    /// The data length is not what the shape requires.
    #[error("data of {available} bytes does not hold the {required} bytes the shape requires")]
    DataLength {
        /// Bytes required by shape and element type.
        required: u64,
        /// Bytes given.
        available: u64,
    },

    /// Typed access asked for another element type than the tensor's.
    #[error("element type mismatch: the tensor holds {actual}, {requested} was requested")]
    DTypeMismatch {
        /// The tensor's element type.
        actual: DType,
        /// The requested element type.
        requested: DType,
    },

    /// Data is not aligned to its element width, and the reader was asked not to copy it.
    #[error(
        "tensor data at address offset {misalignment} (mod {alignment}) is not aligned to {alignment} bytes"
    )]
    Misaligned {
        /// The required alignment in bytes.
        alignment: usize,
        /// The address modulo the alignment.
        misalignment: usize,
    },

    /// A slice view of the data was requested, but the tensor is not contiguous.
    #[error("the tensor is not contiguous (strides {strides:?})")]
    NotContiguous {
        /// The tensor's byte strides.
        strides: Vec<usize>,
    },

    /// An element index is outside the tensor's shape.
    #[error("index {index:?} is out of bounds for shape {shape:?}")]
    IndexOutOfBounds {
        /// The index.
        index: Vec<usize>,
        /// The shape.
        shape: Vec<usize>,
    },

    /// A sink refused to provide room for a message.
    #[error("the sink cannot hold a message of {requested} bytes ({reason})")]
    SinkFull {
        /// The message size.
        requested: u64,
        /// Why the sink refused.
        reason: &'static str,
    },

    /// A sink was committed without a message being reserved, or reserved twice.
    #[error("sink protocol violated: {0}")]
    SinkState(&'static str),

    /// A NumPy `.npy` file could not be read or written.
    #[error("npy: {reason}")]
    Npy {
        /// What is wrong.
        reason: String,
    },
}
