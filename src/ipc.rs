//! Encoding and decoding of Arrow IPC tensor messages.
//!
//! A message is framed as Arrow C++ frames it (see `docs/FORMAT.md`):
//!
//! ```text
//! FF FF FF FF | L: i32 LE | flatbuffer Message | zero padding to 8 + L | body
//! ```
//!
//! For a dense tensor `8 + L` is a multiple of 64, so the body starts 64-byte aligned relative
//! to the start of the message. The reader also accepts the legacy framing of Arrow < 0.15
//! (no `FF FF FF FF`, the first word is `L`) and the end-of-stream markers.

use flatbuffers::{FlatBufferBuilder, VerifierOptions, WIPOffset};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::generated as fb;
use crate::layout;
use crate::sink::{TensorSink, TensorSource};
use crate::sparse::{SparseTensor, SparseTensorHeader};
use crate::tensor::{Tensor, TensorData};

/// The continuation marker that opens every message written by Arrow >= 0.15.
pub const CONTINUATION_MARKER: [u8; 4] = [0xFF; 4];

/// The alignment of a dense tensor's body relative to the start of its message.
pub const DENSE_BODY_ALIGNMENT: usize = 64;

/// The `MetadataVersion` code written (V5).
const WRITE_VERSION: fb::MetadataVersion = fb::MetadataVersion::V5;

/// How a reader treats its input.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Refuse (with [`Error::Misaligned`]) tensor data whose address is not a multiple of the
    /// element width, instead of copying it into aligned memory. Default: `false` (copy).
    pub require_alignment: bool,
    /// The largest metadata length accepted, in bytes. Default: 16 MiB.
    pub max_metadata_len: usize,
    /// The most flatbuffer tables the verifier visits in one message. A tensor message has
    /// about one table per dimension; the default, 16,384, bounds the time a hostile message
    /// (a table graph that expands exponentially) can cost.
    pub max_flatbuffer_tables: usize,
    /// The deepest nesting of flatbuffer tables allowed. Default: 128, as Arrow C++.
    pub max_flatbuffer_depth: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            require_alignment: false,
            max_metadata_len: 16 << 20,
            max_flatbuffer_tables: 16_384,
            max_flatbuffer_depth: 128,
        }
    }
}

impl ReadOptions {
    /// The default options: lenient like Arrow C++, copying misaligned data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Strict mode: refuse misaligned data instead of copying it.
    pub fn with_require_alignment(mut self, require: bool) -> Self {
        self.require_alignment = require;
        self
    }

    /// Sets the largest metadata length accepted.
    pub fn with_max_metadata_len(mut self, len: usize) -> Self {
        self.max_metadata_len = len;
        self
    }

    pub(crate) fn verifier(&self) -> VerifierOptions {
        VerifierOptions {
            max_depth: self.max_flatbuffer_depth,
            max_tables: self.max_flatbuffer_tables,
            ..VerifierOptions::default()
        }
    }
}

/// How a message was framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `FF FF FF FF`, then the metadata length (Arrow >= 0.15).
    Continuation,
    /// The metadata length alone (Arrow 0.11 to 0.14).
    Legacy,
}

/// Where the parts of a message lie, relative to its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLayout {
    /// The framing.
    pub framing: Framing,
    /// The `MetadataVersion` code (3 = V4, 4 = V5).
    pub version: i16,
    /// Bytes of the prefix: 8 (continuation) or 4 (legacy).
    pub prefix_len: usize,
    /// The metadata length field `L`: the flatbuffer and its padding.
    pub metadata_len: usize,
    /// The body length from the metadata.
    pub body_len: usize,
}

impl MessageLayout {
    /// Offset of the body from the start of the message.
    pub fn body_offset(&self) -> usize {
        self.prefix_len + self.metadata_len
    }

    /// Total bytes of the message.
    pub fn total_len(&self) -> usize {
        self.body_offset() + self.body_len
    }
}

/// The decoded header of a dense tensor message, before any validation against the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorHeader {
    /// The element type.
    pub dtype: DType,
    /// The shape.
    pub shape: Vec<usize>,
    /// The byte strides as written, `None` when absent or empty (meaning row-major).
    pub strides: Option<Vec<i64>>,
    /// The dimension names (empty when every name is empty or absent).
    pub dim_names: Vec<String>,
}

impl TensorHeader {
    /// The byte strides a reader gives this tensor over a body of `body_len` bytes, checked
    /// as [`read_tensor`] checks them: every check but the data's alignment, which needs the
    /// body itself. So a header read alone ([`read_message_header`]) is validated as the
    /// whole message would be.
    pub fn checked_strides(&self, body_len: usize) -> Result<Vec<usize>> {
        let width = self.dtype.byte_width();
        let shape = &self.shape;
        let strides = match &self.strides {
            None => layout::row_major_strides(shape, width)?,
            Some(raw) => {
                if raw.len() != shape.len() {
                    return Err(Error::StridesLengthMismatch {
                        shape_len: shape.len(),
                        strides_len: raw.len(),
                    });
                }
                // Arrow C++ skips every check for an empty tensor over an empty body, and the
                // stride of an empty axis otherwise; such strides address nothing, so a
                // negative one is kept as 0.
                let unchecked = body_len == 0 && shape.contains(&0);
                raw.iter()
                    .zip(shape)
                    .enumerate()
                    .map(|(axis, (&stride, &size))| {
                        if stride >= 0 {
                            usize::try_from(stride)
                                .map_err(|_| Error::Overflow { what: "a stride" })
                        } else if unchecked || size == 0 {
                            Ok(0)
                        } else {
                            Err(Error::NegativeStride { axis, stride })
                        }
                    })
                    .collect::<Result<Vec<usize>>>()?
            }
        };
        layout::check_strides_in_bounds(shape, &strides, width, body_len)?;
        layout::dense_byte_len(shape, width)?;
        Ok(strides)
    }
}

/// The kind of message and its decoded header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Header {
    /// A dense tensor.
    Tensor(TensorHeader),
    /// A sparse tensor (COO, CSR, CSC or CSF); see [`Message::into_sparse_tensor`].
    SparseTensor(SparseTensorHeader),
    /// A message of another kind (Schema, RecordBatch, DictionaryBatch), whose body is
    /// skipped.
    Other {
        /// The header type's name.
        header_type: &'static str,
    },
}

impl Header {
    /// The header type's name, as the Arrow format names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Header::Tensor(_) => "Tensor",
            Header::SparseTensor(_) => "SparseTensor",
            Header::Other { header_type } => header_type,
        }
    }
}

/// One decoded message: its layout, header and body (shared with the source, not copied).
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// Where the parts of the message lie.
    pub layout: MessageLayout,
    /// The decoded header.
    pub header: Header,
    /// The body bytes.
    pub body: TensorData<'a>,
}

impl<'a> Message<'a> {
    /// The dense tensor this message holds, validated as Arrow C++ `ReadTensor` validates it.
    /// The tensor's data is the message body itself (zero-copy) unless the body is misaligned
    /// for the element type, in which case it is copied or refused per `options`.
    pub fn into_tensor(self, options: &ReadOptions) -> Result<Tensor<'a>> {
        let header = match self.header {
            Header::Tensor(header) => header,
            other => {
                return Err(Error::UnexpectedHeader {
                    found: other.type_name(),
                    expected: "Tensor",
                });
            }
        };
        tensor_from_header(header, self.body, options)
    }

    /// The sparse tensor this message holds, validated as Arrow C++ `ReadSparseTensor`
    /// validates it and checked for consistency (indices in range, `indptr` monotone, lengths
    /// that agree with the non-zero count). Each buffer shares the message body (zero-copy)
    /// unless it is misaligned for its type, in which case it is copied or refused per
    /// `options`.
    pub fn into_sparse_tensor(self, options: &ReadOptions) -> Result<SparseTensor<'a>> {
        let header = match self.header {
            Header::SparseTensor(header) => header,
            other => {
                return Err(Error::UnexpectedHeader {
                    found: other.type_name(),
                    expected: "SparseTensor",
                });
            }
        };
        crate::sparse::sparse_from_header(header, self.body, options)
    }
}

/// Validates a tensor header against its body and assembles the tensor.
fn tensor_from_header<'a>(
    header: TensorHeader,
    body: TensorData<'a>,
    options: &ReadOptions,
) -> Result<Tensor<'a>> {
    let strides = header.checked_strides(body.len())?;
    let TensorHeader {
        dtype,
        shape,
        dim_names,
        ..
    } = header;
    let width = dtype.byte_width();
    let data = if body.is_empty() {
        body
    } else {
        body.aligned(width, options.require_alignment)?
    };
    Ok(Tensor::from_validated_parts(
        dtype, shape, strides, dim_names, data,
    ))
}

/// A message's layout and decoded header, without its body: what
/// [`read_message_header`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// Where the parts of the message lie.
    pub layout: MessageLayout,
    /// The decoded header.
    pub header: Header,
}

/// Reads the next message from `source`; `Ok(None)` at the end of the stream (no bytes left,
/// or an end-of-stream marker).
pub fn read_message<'a, S: TensorSource<'a> + ?Sized>(
    source: &mut S,
    options: &ReadOptions,
) -> Result<Option<Message<'a>>> {
    let Some(MessageHeader { layout, header }) = read_prefix_and_metadata(source, options)? else {
        return Ok(None);
    };
    let body = source.take(layout.body_len).map_err(body_truncated)?;
    Ok(Some(Message {
        layout,
        header,
        body,
    }))
}

/// Reads the next message's prefix and metadata and moves past its body with
/// [`TensorSource::skip`], never asking the source for the body's bytes: a source that fetches
/// on demand (an object store) reads only the header. `Ok(None)` at the end of the stream.
///
/// The body's presence is still checked: a source shorter than the message gives
/// [`Error::Truncated`], as [`read_message`] does.
pub fn read_message_header<'a, S: TensorSource<'a> + ?Sized>(
    source: &mut S,
    options: &ReadOptions,
) -> Result<Option<MessageHeader>> {
    let Some(message) = read_prefix_and_metadata(source, options)? else {
        return Ok(None);
    };
    source
        .skip(message.layout.body_len)
        .map_err(body_truncated)?;
    Ok(Some(message))
}

/// Names the body as the part that was cut short.
fn body_truncated(e: Error) -> Error {
    match e {
        Error::Truncated {
            expected,
            available,
            ..
        } => Error::Truncated {
            part: "message body",
            expected,
            available,
        },
        other => other,
    }
}

/// Reads and consumes a message's prefix and metadata, leaving the source at its body;
/// `None` at the end of the stream.
fn read_prefix_and_metadata<'a, S: TensorSource<'a> + ?Sized>(
    source: &mut S,
    options: &ReadOptions,
) -> Result<Option<MessageHeader>> {
    let head = source.peek(8)?;
    if head.is_empty() {
        return Ok(None);
    }
    if head.len() < 4 {
        return Err(Error::Truncated {
            part: "message prefix",
            expected: 4,
            available: head.len() as u64,
        });
    }
    let first = i32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let (framing, prefix_len, metadata_len) = match first {
        -1 => {
            if head.len() < 8 {
                return Err(Error::Truncated {
                    part: "message prefix",
                    expected: 8,
                    available: head.len() as u64,
                });
            }
            let len = i32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
            if len == 0 {
                source.take(8)?;
                return Ok(None);
            }
            let len =
                usize::try_from(len).map_err(|_| Error::NegativeMetadataLength { length: len })?;
            (Framing::Continuation, 8, len)
        }
        0 => {
            source.take(4)?;
            return Ok(None);
        }
        len if len > 0 => (Framing::Legacy, 4, len as usize),
        value => return Err(Error::InvalidContinuation { value }),
    };
    if metadata_len > options.max_metadata_len {
        return Err(Error::MetadataTooLarge {
            length: metadata_len as u64,
            limit: options.max_metadata_len as u64,
        });
    }
    let framed = source.peek(prefix_len + metadata_len)?;
    if framed.len() < prefix_len + metadata_len {
        return Err(Error::Truncated {
            part: "message metadata",
            expected: metadata_len as u64,
            available: (framed.len() - prefix_len.min(framed.len())) as u64,
        });
    }
    let (version, header, body_len) = decode_metadata(&framed[prefix_len..], options)?;
    source.take(prefix_len + metadata_len)?;
    Ok(Some(MessageHeader {
        layout: MessageLayout {
            framing,
            version,
            prefix_len,
            metadata_len,
            body_len,
        },
        header,
    }))
}

/// Decodes and verifies the flatbuffer metadata: version, header and body length.
fn decode_metadata(bytes: &[u8], options: &ReadOptions) -> Result<(i16, Header, usize)> {
    let message = fb::root_as_message_with_opts(&options.verifier(), bytes)?;
    let version = message.version().0;
    if version < fb::MetadataVersion::V4.0 {
        return Err(Error::OldMetadataVersion { version });
    }
    if version > fb::MetadataVersion::V5.0 {
        return Err(Error::FutureMetadataVersion { version });
    }
    let body_len = message.bodyLength();
    let body_len =
        usize::try_from(body_len).map_err(|_| Error::NegativeBodyLength { length: body_len })?;
    let header = match message.header_type() {
        fb::MessageHeader::Tensor => {
            let tensor = message.header_as_tensor().ok_or(Error::UnexpectedHeader {
                found: "NONE",
                expected: "Tensor",
            })?;
            Header::Tensor(decode_tensor_header(&tensor)?)
        }
        fb::MessageHeader::SparseTensor => {
            let sparse = message
                .header_as_sparse_tensor()
                .ok_or(Error::UnexpectedHeader {
                    found: "NONE",
                    expected: "SparseTensor",
                })?;
            Header::SparseTensor(crate::sparse::decode_sparse_header(&sparse)?)
        }
        other => Header::Other {
            header_type: other.variant_name().unwrap_or("unknown"),
        },
    };
    Ok((version, header, body_len))
}

/// Decodes a `Tensor` table.
fn decode_tensor_header(tensor: &fb::Tensor<'_>) -> Result<TensorHeader> {
    let dtype = decode_dtype(tensor)?;
    let dims = tensor.shape();
    let mut shape = Vec::with_capacity(dims.len());
    let mut dim_names = Vec::with_capacity(dims.len());
    for (axis, dim) in dims.iter().enumerate() {
        let size = dim.size();
        shape.push(usize::try_from(size).map_err(|_| Error::NegativeDimension { axis, size })?);
        dim_names.push(dim.name().unwrap_or("").to_owned());
    }
    if dim_names.iter().all(String::is_empty) {
        dim_names.clear();
    }
    let strides = tensor
        .strides()
        .filter(|s| !s.is_empty())
        .map(|s| s.iter().collect());
    Ok(TensorHeader {
        dtype,
        shape,
        strides,
        dim_names,
    })
}

/// Maps the `Tensor.type` union to an element type, as Arrow C++ does.
fn decode_dtype(tensor: &fb::Tensor<'_>) -> Result<DType> {
    dtype_from_type_union(
        tensor.type_type(),
        tensor.type__as_int(),
        tensor.type__as_floating_point(),
    )
}

/// Maps a `Type` union (given as its type code and the two tables a tensor may hold) to an
/// element type, as Arrow C++ does.
pub(crate) fn dtype_from_type_union(
    type_type: fb::Type,
    int: Option<fb::Int<'_>>,
    float: Option<fb::FloatingPoint<'_>>,
) -> Result<DType> {
    if let Some(int) = int {
        return Ok(match (int.bitWidth(), int.is_signed()) {
            (8, true) => DType::Int8,
            (16, true) => DType::Int16,
            (32, true) => DType::Int32,
            (64, true) => DType::Int64,
            (8, false) => DType::UInt8,
            (16, false) => DType::UInt16,
            (32, false) => DType::UInt32,
            (64, false) => DType::UInt64,
            (bit_width, _) => return Err(Error::UnsupportedBitWidth { bit_width }),
        });
    }
    if let Some(float) = float {
        return Ok(match float.precision() {
            fb::Precision::HALF => DType::Float16,
            fb::Precision::SINGLE => DType::Float32,
            // Arrow C++ reads every other precision code as double; so do we.
            _ => DType::Float64,
        });
    }
    Err(Error::UnsupportedType {
        type_name: type_type.variant_name().unwrap_or("unknown").to_lowercase(),
    })
}

/// Reads one dense tensor with the default [`ReadOptions`], zero-copy.
///
/// [`Error::EndOfStream`] when the stream has ended; [`Error::UnexpectedHeader`] for a message
/// of another kind.
pub fn read_tensor<'a, S: TensorSource<'a> + ?Sized>(source: &mut S) -> Result<Tensor<'a>> {
    read_tensor_with(source, &ReadOptions::default())
}

/// Reads one dense tensor with the given options.
pub fn read_tensor_with<'a, S: TensorSource<'a> + ?Sized>(
    source: &mut S,
    options: &ReadOptions,
) -> Result<Tensor<'a>> {
    read_message(source, options)?
        .ok_or(Error::EndOfStream)?
        .into_tensor(options)
}

/// What the writer writes for a tensor: the encoded metadata and how to produce the body.
struct DensePlan {
    metadata: Vec<u8>,
    metadata_len: usize,
    body_len: usize,
    contiguous: bool,
}

impl DensePlan {
    fn new(tensor: &Tensor<'_>) -> Result<Self> {
        let contiguous = tensor.is_contiguous();
        let body_len = tensor.dense_byte_len();
        let metadata = if contiguous {
            encode_tensor_metadata(tensor, tensor.strides(), tensor.dim_names(), body_len)?
        } else {
            // Arrow C++ writes a non-contiguous tensor as a row-major copy, without names.
            let strides = layout::row_major_strides(tensor.shape(), tensor.dtype().byte_width())?;
            encode_tensor_metadata(tensor, &strides, &[], body_len)?
        };
        let metadata_len = padded_metadata_len(metadata.len(), DENSE_BODY_ALIGNMENT)?;
        Ok(DensePlan {
            metadata,
            metadata_len,
            body_len,
            contiguous,
        })
    }

    fn total_len(&self) -> Result<usize> {
        (8 + self.metadata_len)
            .checked_add(self.body_len)
            .ok_or(Error::Overflow {
                what: "the message size",
            })
    }
}

/// `L` for a flatbuffer of `flatbuffer_len` bytes: padded so that `8 + L` is a multiple of
/// `alignment`.
pub(crate) fn padded_metadata_len(flatbuffer_len: usize, alignment: usize) -> Result<usize> {
    let len = (flatbuffer_len + 8).next_multiple_of(alignment) - 8;
    if i32::try_from(len).is_err() {
        return Err(Error::Overflow {
            what: "the metadata length",
        });
    }
    Ok(len)
}

/// Writes the 8-byte prefix, the metadata and its zero padding into the front of `region`.
pub(crate) fn write_framed_metadata(region: &mut [u8], metadata: &[u8], metadata_len: usize) {
    region[..4].copy_from_slice(&CONTINUATION_MARKER);
    region[4..8].copy_from_slice(&(metadata_len as i32).to_le_bytes());
    region[8..8 + metadata.len()].copy_from_slice(metadata);
    region[8 + metadata.len()..8 + metadata_len].fill(0);
}

/// The 8-byte prefix, the metadata and its zero padding, as one buffer.
pub(crate) fn framed_metadata(metadata: &[u8], metadata_len: usize) -> Vec<u8> {
    let mut head = vec![0u8; 8 + metadata_len];
    write_framed_metadata(&mut head, metadata, metadata_len);
    head
}

/// The exact number of bytes [`write_tensor`] writes for `tensor`, as Arrow C++
/// `ipc::GetTensorSize` computes it.
pub fn tensor_size(tensor: &Tensor<'_>) -> Result<usize> {
    DensePlan::new(tensor)?.total_len()
}

/// Writes `tensor` as one dense tensor message, byte-identical with Arrow C++ `WriteTensor`,
/// and returns the number of bytes written.
///
/// The sink is told the exact size first, then the body is copied once into the sink's
/// region: the data as it is for a row- or column-major tensor, gathered into row-major order
/// otherwise (with row-major strides and no dimension names, as Arrow C++ does).
pub fn write_tensor<S: TensorSink + ?Sized>(tensor: &Tensor<'_>, sink: &mut S) -> Result<usize> {
    let plan = DensePlan::new(tensor)?;
    let total = plan.total_len()?;
    let head = framed_metadata(&plan.metadata, plan.metadata_len);
    if plan.contiguous {
        sink.write_parts(total, &[&head, &tensor.as_bytes()[..plan.body_len]])?;
        return Ok(total);
    }
    sink.write_gather(total, &head, &tensor.row_major_gather())?;
    Ok(total)
}

/// Builds the flatbuffer `Message` of a dense tensor in Arrow C++'s builder order, so that
/// the bytes are identical.
fn encode_tensor_metadata(
    tensor: &Tensor<'_>,
    strides: &[usize],
    dim_names: &[String],
    body_len: usize,
) -> Result<Vec<u8>> {
    let to_i64 = |v: usize, what| i64::try_from(v).map_err(|_| Error::Overflow { what });
    let mut fbb = FlatBufferBuilder::with_capacity(512);
    let (type_type, type_table) = encode_dtype(&mut fbb, tensor.dtype());
    let mut dims = Vec::with_capacity(tensor.ndim());
    for (axis, &size) in tensor.shape().iter().enumerate() {
        let name = fbb.create_string(dim_names.get(axis).map_or("", String::as_str));
        let dim = fb::TensorDim::create(
            &mut fbb,
            &fb::TensorDimArgs {
                size: to_i64(size, "a dimension")?,
                name: Some(name),
            },
        );
        dims.push(dim);
    }
    let shape = fbb.create_vector(&dims);
    let strides = if strides.is_empty() {
        // C++ FlatBuffers does not pre-align an empty vector to its element size; the Rust
        // builder does. An empty vector of 4-byte elements has the same bytes and is aligned
        // as C++ aligns it.
        let empty = fbb.create_vector::<i32>(&[]);
        WIPOffset::new(empty.value())
    } else {
        let strides = strides
            .iter()
            .map(|&s| to_i64(s, "a stride"))
            .collect::<Result<Vec<i64>>>()?;
        fbb.create_vector(&strides)
    };
    let data = fb::Buffer::new(0, to_i64(body_len, "the body length")?);
    let tensor_table = fb::Tensor::create(
        &mut fbb,
        &fb::TensorArgs {
            type_type,
            type_: Some(type_table),
            shape: Some(shape),
            strides: Some(strides),
            data: Some(&data),
        },
    );
    finish_message(
        fbb,
        fb::MessageHeader::Tensor,
        tensor_table.as_union_value(),
        body_len,
    )
}

/// Wraps a header table in the `Message` root (version V5, no custom metadata), as Arrow C++
/// does, and returns the finished flatbuffer.
pub(crate) fn finish_message(
    mut fbb: FlatBufferBuilder<'_>,
    header_type: fb::MessageHeader,
    header: WIPOffset<flatbuffers::UnionWIPOffset>,
    body_len: usize,
) -> Result<Vec<u8>> {
    let body_len = i64::try_from(body_len).map_err(|_| Error::Overflow {
        what: "the body length",
    })?;
    let message = fb::Message::create(
        &mut fbb,
        &fb::MessageArgs {
            version: WRITE_VERSION,
            header_type,
            header: Some(header),
            bodyLength: body_len,
            custom_metadata: None,
        },
    );
    fbb.finish(message, None);
    Ok(fbb.finished_data().to_vec())
}

/// Builds the `Int` or `FloatingPoint` table of an element type.
pub(crate) fn encode_dtype(
    fbb: &mut FlatBufferBuilder<'_>,
    dtype: DType,
) -> (fb::Type, WIPOffset<flatbuffers::UnionWIPOffset>) {
    let int = |fbb: &mut FlatBufferBuilder<'_>, bit_width: i32, is_signed: bool| {
        let table = fb::Int::create(
            fbb,
            &fb::IntArgs {
                bitWidth: bit_width,
                is_signed,
            },
        );
        (fb::Type::Int, table.as_union_value())
    };
    let float = |fbb: &mut FlatBufferBuilder<'_>, precision: fb::Precision| {
        let table = fb::FloatingPoint::create(fbb, &fb::FloatingPointArgs { precision });
        (fb::Type::FloatingPoint, table.as_union_value())
    };
    match dtype {
        DType::Int8 => int(fbb, 8, true),
        DType::Int16 => int(fbb, 16, true),
        DType::Int32 => int(fbb, 32, true),
        DType::Int64 => int(fbb, 64, true),
        DType::UInt8 => int(fbb, 8, false),
        DType::UInt16 => int(fbb, 16, false),
        DType::UInt32 => int(fbb, 32, false),
        DType::UInt64 => int(fbb, 64, false),
        DType::Float16 => float(fbb, fb::Precision::HALF),
        DType::Float32 => float(fbb, fb::Precision::SINGLE),
        DType::Float64 => float(fbb, fb::Precision::DOUBLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int32_2x3_named() -> Tensor<'static> {
        Tensor::from_vec((0..6).collect::<Vec<i32>>(), vec![2, 3])
            .unwrap()
            .with_dim_names(["row", "col"])
            .unwrap()
    }

    #[test]
    fn layout_of_a_small_message() {
        let t = int32_2x3_named();
        let mut out = Vec::new();
        let n = write_tensor(&t, &mut out).unwrap();
        assert_eq!(n, 280);
        assert_eq!(n, tensor_size(&t).unwrap());
        assert_eq!(&out[..8], &[0xff, 0xff, 0xff, 0xff, 0xf8, 0, 0, 0]);
        assert_eq!(&out[256..260], &[0, 0, 0, 0]);
        let mut src = out.as_slice();
        let back = read_tensor(&mut src).unwrap();
        assert!(src.is_empty());
        assert_eq!(back.shape(), &[2, 3]);
        assert_eq!(back.dim_names(), &["row", "col"]);
        assert_eq!(back.to_vec::<i32>().unwrap(), (0..6).collect::<Vec<_>>());
        // Zero-copy: the tensor points into the message.
        assert_eq!(back.as_bytes().as_ptr(), out[256..].as_ptr());
    }

    /// A source over a byte slice that counts what it hands out and moves past skipped
    /// bytes without handing them out.
    struct Counting<'b> {
        rest: &'b [u8],
        taken: usize,
        skipped: usize,
    }

    impl<'b> TensorSource<'b> for Counting<'b> {
        fn peek(&mut self, len: usize) -> Result<&[u8]> {
            self.rest.peek(len)
        }
        fn take(&mut self, len: usize) -> Result<TensorData<'b>> {
            self.taken += len;
            self.rest.take(len)
        }
        fn skip(&mut self, len: usize) -> Result<()> {
            if len > self.rest.len() {
                return Err(Error::Truncated {
                    part: "input",
                    expected: len as u64,
                    available: self.rest.len() as u64,
                });
            }
            self.skipped += len;
            self.rest = &self.rest[len..];
            Ok(())
        }
    }

    #[test]
    fn message_header_skips_the_body() {
        let t = int32_2x3_named();
        let mut out = Vec::new();
        write_tensor(&t, &mut out).unwrap();
        write_tensor(&t, &mut out).unwrap();
        let mut src = Counting {
            rest: &out,
            taken: 0,
            skipped: 0,
        };
        let opts = ReadOptions::default();
        for _ in 0..2 {
            let head = read_message_header(&mut src, &opts).unwrap().unwrap();
            assert_eq!(head.layout.body_len, 24);
            assert_eq!(head.layout.total_len(), 280);
            let Header::Tensor(header) = head.header else {
                panic!("not a tensor header")
            };
            assert_eq!(header.shape, [2, 3]);
            assert_eq!(header.dim_names, ["row", "col"]);
        }
        assert_eq!(
            (src.taken, src.skipped),
            (2 * 256, 2 * 24),
            "bodies skipped"
        );
        assert!(read_message_header(&mut src, &opts).unwrap().is_none());

        // The default skip takes the bytes; a body cut short is an error either way.
        let mut plain = out.as_slice();
        assert!(read_message_header(&mut plain, &opts).unwrap().is_some());
        assert_eq!(plain.len(), 280, "the default skip moved past the body");
        let err = read_message_header(&mut &out[..270], &opts).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    part: "message body",
                    expected: 24,
                    available: 14
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn end_of_stream_forms() {
        let opts = ReadOptions::default();
        for eos in [
            &[][..],
            &[0, 0, 0, 0],
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        ] {
            let mut src = eos;
            assert!(read_message(&mut src, &opts).unwrap().is_none());
            assert!(matches!(
                read_tensor(&mut &eos[..]),
                Err(Error::EndOfStream)
            ));
        }
    }

    #[test]
    fn hostile_prefixes() {
        type Case<'c> = (&'c [u8], fn(&Error) -> bool);
        let cases: &[Case<'_>] = &[
            (&[1, 2], |e| matches!(e, Error::Truncated { .. })),
            (&[0xfe, 0xff, 0xff, 0xff], |e| {
                matches!(e, Error::InvalidContinuation { value: -2 })
            }),
            (&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80], |e| {
                matches!(e, Error::NegativeMetadataLength { .. })
            }),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], |e| {
                matches!(e, Error::MetadataTooLarge { .. })
            }),
            (&[0xff, 0xff, 0xff, 0xff, 16, 0, 0, 0, 1], |e| {
                matches!(e, Error::Truncated { .. })
            }),
            (&[8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], |e| {
                matches!(e, Error::InvalidFlatbuffer(_))
            }),
        ];
        for (bytes, is_expected) in cases {
            let err = read_tensor(&mut &bytes[..]).unwrap_err();
            assert!(is_expected(&err), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn non_contiguous_is_gathered_and_loses_names() {
        let t = Tensor::from_vec((0..24).collect::<Vec<i64>>(), vec![4, 6]).unwrap();
        // Every other column of the 4x6 matrix: a 4x3 view.
        let view = Tensor::with_layout(
            DType::Int64,
            t.data().clone(),
            vec![4, 3],
            vec![48, 16],
            vec!["r".into(), "c".into()],
        )
        .unwrap();
        let mut out = Vec::new();
        write_tensor(&view, &mut out).unwrap();
        let back = read_tensor(&mut out.as_slice()).unwrap();
        assert_eq!(back.strides(), &[24, 8]);
        assert!(back.dim_names().is_empty());
        assert_eq!(back.to_vec::<i64>().unwrap(), view.to_vec::<i64>().unwrap());
    }

    #[test]
    fn misaligned_body_copied_or_refused() {
        let t = Tensor::from_vec(vec![1.5f64, 2.5], vec![2]).unwrap();
        let mut out = vec![0u8];
        write_tensor(&t, &mut out).unwrap();
        let misaligned = &out[1..];
        let copied = read_tensor(&mut &misaligned[..]).unwrap();
        assert_eq!(copied.values::<f64>().unwrap(), &[1.5, 2.5]);
        let strict = ReadOptions::new().with_require_alignment(true);
        let err = read_tensor_with(&mut &misaligned[..], &strict).unwrap_err();
        // The body may land aligned by chance if the vector's allocation is odd; check the
        // address decides.
        if !(misaligned[192..].as_ptr() as usize).is_multiple_of(8) {
            assert!(
                matches!(err, Error::Misaligned { alignment: 8, .. }),
                "{err}"
            );
        }
    }
}
