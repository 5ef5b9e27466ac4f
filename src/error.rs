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

    /// Memory for a tensor, a copy of one or a conversion's output could not be allocated.
    #[error("cannot allocate {bytes} bytes")]
    AllocationFailed {
        /// The size asked for.
        bytes: u64,
    },

    /// A conversion would make more than the bytes it was allowed (see
    /// [`FromDenseOptions::max_output_bytes`](crate::sparse::FromDenseOptions)); refused before
    /// anything is allocated.
    #[error("{what} would take {}, more than the limit of {limit} bytes", byte_count(*.bytes))]
    OutputTooLarge {
        /// What would have been made.
        what: &'static str,
        /// Its size in bytes (`u64::MAX` when the size overflows 64 bits).
        bytes: u64,
        /// The limit.
        limit: u64,
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

    /// A sparse index type that Arrow does not allow (a float, or uint64).
    #[error("{type_name} cannot be used as the index value type of a sparse index")]
    SparseIndexType {
        /// The type's name.
        type_name: String,
    },

    /// An extent of a sparse index (a dimension, a vector length) exceeds its index type.
    #[error("the bit width of the index type {index_type} is too small for the value {value}")]
    IndexTypeTooSmall {
        /// The index type.
        index_type: DType,
        /// The value that does not fit.
        value: u64,
    },

    /// A COO coordinates matrix that is neither row- nor column-major.
    #[error("sparse COO coordinates must be contiguous (strides {strides:?})")]
    NonContiguousCoords {
        /// The byte strides of the `nnz x ndim` matrix.
        strides: Vec<usize>,
    },

    /// Parts of a sparse index disagree in length with each other or with the shape.
    #[error("inconsistent sparse index: {what} is {found}, expected {expected}")]
    SparseLength {
        /// What was measured.
        what: &'static str,
        /// The length the rest of the tensor implies.
        expected: usize,
        /// The length found.
        found: usize,
    },

    /// A sparse format used with a number of dimensions it does not support.
    #[error("{reason} (the tensor has {ndim})")]
    SparseShape {
        /// What the format needs.
        reason: &'static str,
        /// The number of dimensions.
        ndim: usize,
    },

    /// A CSF axis order that is not a permutation of the axes.
    #[error("CSF axis order {axis_order:?} is not a permutation of the dimensions")]
    InvalidAxisOrder {
        /// The axis order.
        axis_order: Vec<i64>,
    },

    /// The vectors of one sparse index have different types.
    #[error("sparse index vectors must have one type: found {indptr} and {indices}")]
    MismatchedIndexTypes {
        /// The type of the indptr (or first differing) vector.
        indptr: DType,
        /// The type of the indices vector.
        indices: DType,
    },

    /// A sparse index value lies outside its dimension.
    #[error("{what} {value} at position {position} is out of range (bound {bound})")]
    SparseIndexOutOfRange {
        /// Which index vector.
        what: &'static str,
        /// The position of the value in its vector (the row, for COO).
        position: usize,
        /// The value.
        value: i64,
        /// The exclusive upper bound.
        bound: usize,
    },

    /// An `indptr` vector that does not start at 0 or decreases.
    #[error("{what} must start at 0 and not decrease: {value} at position {position}")]
    IndptrNotMonotone {
        /// Which indptr vector.
        what: &'static str,
        /// The offending position.
        position: usize,
        /// The value there.
        value: i64,
    },

    /// A buffer of a sparse tensor message lies outside the body (or has a negative offset or
    /// length).
    #[error(
        "sparse {what} buffer (offset {offset}, {length} bytes) lies outside the body of {body_len} bytes"
    )]
    SparseBufferOutOfBounds {
        /// Which buffer.
        what: &'static str,
        /// Its offset.
        offset: i64,
        /// Its length in bytes.
        length: i64,
        /// The body length.
        body_len: usize,
    },

    /// The values buffer of a sparse tensor message is not at a multiple of 8 in the body.
    #[error("buffer of sparse index data did not start on 8-byte aligned offset: {offset}")]
    MisalignedSparseBuffer {
        /// The buffer offset.
        offset: i64,
    },

    /// A sparse tensor message without a known sparse index.
    #[error("unsupported sparse index format {format}")]
    UnsupportedSparseIndex {
        /// The `SparseTensorIndex` union type found.
        format: String,
    },
}

/// `N bytes`, or `more than 2^64 bytes` for `u64::MAX` (a size that overflowed).
fn byte_count(bytes: u64) -> String {
    if bytes == u64::MAX {
        "more than 2^64 bytes".to_owned()
    } else {
        format!("{bytes} bytes")
    }
}
