//! Encoding and decoding of Arrow IPC `SparseTensor` messages, byte-identical with Arrow C++
//! `ipc::WriteSparseTensor` (see `docs/FORMAT.md`, "Sparse tensors").

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::{
    CompressedAxis, CooIndex, CsfIndex, CsxIndex, IndexVector, SPARSE_ALIGNMENT, SparseFormat,
    SparseIndex, SparseTensor, check_index_type, check_ndim,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::generated as fb;
use crate::ipc::{
    self, ReadOptions, dtype_from_type_union, encode_dtype, framed_metadata, padded_metadata_len,
};
use crate::layout;
use crate::sink::{TensorSink, TensorSource};
use crate::tensor::TensorData;

/// A `Buffer` record of a message: an offset into the body and a length, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSpec {
    /// Offset from the start of the body.
    pub offset: i64,
    /// Length: bytes, except for CSF index buffers, where it is a number of elements.
    pub length: i64,
}

impl From<&fb::Buffer> for BufferSpec {
    fn from(b: &fb::Buffer) -> Self {
        BufferSpec {
            offset: b.offset(),
            length: b.length(),
        }
    }
}

/// The decoded sparse index of a `SparseTensor` message, before any check against the body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SparseIndexHeader {
    /// `SparseTensorIndexCOO`.
    Coo {
        /// The coordinates' type.
        indices_type: DType,
        /// `indicesStrides` as written, `None` when absent or empty (row-major).
        indices_strides: Option<Vec<i64>>,
        /// `indicesBuffer`.
        indices: BufferSpec,
        /// `isCanonical`.
        is_canonical: bool,
    },
    /// `SparseMatrixIndexCSX`.
    Csx {
        /// `compressedAxis`.
        axis: CompressedAxis,
        /// `indptrType`.
        indptr_type: DType,
        /// `indptrBuffer`.
        indptr: BufferSpec,
        /// `indicesType`.
        indices_type: DType,
        /// `indicesBuffer`.
        indices: BufferSpec,
    },
    /// `SparseTensorIndexCSF`.
    Csf {
        /// `indptrType`.
        indptr_type: DType,
        /// `indptrBuffers` (lengths are element counts).
        indptr: Vec<BufferSpec>,
        /// `indicesType`.
        indices_type: DType,
        /// `indicesBuffers` (lengths are element counts).
        indices: Vec<BufferSpec>,
        /// `axisOrder`.
        axis_order: Vec<i32>,
    },
}

/// The decoded header of a sparse tensor message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseTensorHeader {
    /// The element type of the values.
    pub dtype: DType,
    /// The shape.
    pub shape: Vec<usize>,
    /// The dimension names (empty when every name is empty or absent).
    pub dim_names: Vec<String>,
    /// `non_zero_length`.
    pub non_zero_length: usize,
    /// The sparse index.
    pub index: SparseIndexHeader,
    /// The values buffer.
    pub data: BufferSpec,
}

/// The format of a decoded sparse index.
fn header_format(index: &SparseIndexHeader) -> SparseFormat {
    match index {
        SparseIndexHeader::Coo { .. } => SparseFormat::Coo,
        SparseIndexHeader::Csx {
            axis: CompressedAxis::Row,
            ..
        } => SparseFormat::Csr,
        SparseIndexHeader::Csx { .. } => SparseFormat::Csc,
        SparseIndexHeader::Csf { .. } => SparseFormat::Csf,
    }
}

impl SparseTensorHeader {
    /// The index format.
    pub fn format(&self) -> SparseFormat {
        header_format(&self.index)
    }

    /// The type of the index values (`indices`).
    pub fn index_type(&self) -> DType {
        match &self.index {
            SparseIndexHeader::Coo { indices_type, .. }
            | SparseIndexHeader::Csx { indices_type, .. }
            | SparseIndexHeader::Csf { indices_type, .. } => *indices_type,
        }
    }
}

/// An `Int` table as an index type (uint64 is decoded, and refused later, as Arrow C++ does).
fn decode_int(int: fb::Int<'_>) -> Result<DType> {
    ipc::dtype_from_type_union(fb::Type::Int, Some(int), None)
}

/// Decodes a `SparseTensor` table.
pub(crate) fn decode_sparse_header(sparse: &fb::SparseTensor<'_>) -> Result<SparseTensorHeader> {
    let dtype = dtype_from_type_union(
        sparse.type_type(),
        sparse.type__as_int(),
        sparse.type__as_floating_point(),
    )?;
    let (shape, dim_names) = decode_sparse_dims(sparse)?;
    let nnz = sparse.non_zero_length();
    let non_zero_length = usize::try_from(nnz).map_err(|_| Error::SparseIndexOutOfRange {
        what: "non_zero_length",
        position: 0,
        value: nnz,
        bound: 0,
    })?;
    Ok(SparseTensorHeader {
        dtype,
        shape,
        dim_names,
        non_zero_length,
        index: decode_sparse_index(sparse)?,
        data: sparse.data().into(),
    })
}

/// The shape and dimension names of a `SparseTensor` table (no names when all are empty).
fn decode_sparse_dims(sparse: &fb::SparseTensor<'_>) -> Result<(Vec<usize>, Vec<String>)> {
    let dims = sparse.shape();
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
    Ok((shape, dim_names))
}

/// The sparse index of a `SparseTensor` table, one decoder per format.
fn decode_sparse_index(sparse: &fb::SparseTensor<'_>) -> Result<SparseIndexHeader> {
    let unsupported = || Error::UnsupportedSparseIndex {
        format: sparse
            .sparseIndex_type()
            .variant_name()
            .unwrap_or("unknown")
            .to_owned(),
    };
    match sparse.sparseIndex_type() {
        fb::SparseTensorIndex::SparseTensorIndexCOO => decode_coo_header(
            sparse
                .sparseIndex_as_sparse_tensor_index_coo()
                .ok_or_else(unsupported)?,
        ),
        fb::SparseTensorIndex::SparseMatrixIndexCSX => decode_csx_header(
            sparse
                .sparseIndex_as_sparse_matrix_index_csx()
                .ok_or_else(unsupported)?,
        ),
        fb::SparseTensorIndex::SparseTensorIndexCSF => decode_csf_header(
            sparse
                .sparseIndex_as_sparse_tensor_index_csf()
                .ok_or_else(unsupported)?,
        ),
        _ => Err(unsupported()),
    }
}

/// Decodes a `SparseTensorIndexCOO` table (empty strides read as absent: row-major).
fn decode_coo_header(coo: fb::SparseTensorIndexCOO<'_>) -> Result<SparseIndexHeader> {
    Ok(SparseIndexHeader::Coo {
        indices_type: decode_int(coo.indicesType())?,
        indices_strides: coo
            .indicesStrides()
            .filter(|s| !s.is_empty())
            .map(|s| s.iter().collect()),
        indices: coo.indicesBuffer().into(),
        is_canonical: coo.isCanonical(),
    })
}

/// Decodes a `SparseMatrixIndexCSX` table.
fn decode_csx_header(csx: fb::SparseMatrixIndexCSX<'_>) -> Result<SparseIndexHeader> {
    let axis = match csx.compressedAxis() {
        fb::SparseMatrixCompressedAxis::Row => CompressedAxis::Row,
        fb::SparseMatrixCompressedAxis::Column => CompressedAxis::Column,
        other => {
            return Err(Error::UnsupportedSparseIndex {
                format: format!("SparseMatrixIndexCSX with compressedAxis {}", other.0),
            });
        }
    };
    Ok(SparseIndexHeader::Csx {
        axis,
        indptr_type: decode_int(csx.indptrType())?,
        indptr: csx.indptrBuffer().into(),
        indices_type: decode_int(csx.indicesType())?,
        indices: csx.indicesBuffer().into(),
    })
}

/// Decodes a `SparseTensorIndexCSF` table.
fn decode_csf_header(csf: fb::SparseTensorIndexCSF<'_>) -> Result<SparseIndexHeader> {
    Ok(SparseIndexHeader::Csf {
        indptr_type: decode_int(csf.indptrType())?,
        indptr: csf.indptrBuffers().iter().map(BufferSpec::from).collect(),
        indices_type: decode_int(csf.indicesType())?,
        indices: csf.indicesBuffers().iter().map(BufferSpec::from).collect(),
        axis_order: csf.axisOrder().iter().collect(),
    })
}

/// The bytes `spec` names in `body` (`length` bytes from `offset`), checked to lie inside it.
fn slice_body<'a>(
    body: &TensorData<'a>,
    offset: i64,
    length: i64,
    what: &'static str,
) -> Result<TensorData<'a>> {
    let out_of_bounds = || Error::SparseBufferOutOfBounds {
        what,
        offset,
        length,
        body_len: body.len(),
    };
    let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
    let len = usize::try_from(length).map_err(|_| out_of_bounds())?;
    match start.checked_add(len) {
        Some(end) if end <= body.len() => Ok(body.slice(start, len)),
        _ => Err(out_of_bounds()),
    }
}

/// Aligns a non-empty buffer to `width` (copy, or an error when strict).
fn align(data: TensorData<'_>, width: usize, strict: bool) -> Result<TensorData<'_>> {
    if data.is_empty() {
        Ok(data)
    } else {
        data.aligned(width, strict)
    }
}

/// An index vector of `count` elements of `dtype` in a buffer of `byte_len` bytes at
/// `offset`, which must hold them.
fn index_vector<'a>(
    body: &TensorData<'a>,
    dtype: DType,
    spec: BufferSpec,
    count: usize,
    what: &'static str,
    strict: bool,
) -> Result<IndexVector<'a>> {
    check_index_type(dtype)?;
    let data = slice_body(body, spec.offset, spec.length, what)?;
    let required = count
        .checked_mul(dtype.byte_width())
        .ok_or(Error::Overflow { what })?;
    if data.len() < required {
        return Err(Error::SparseLength {
            what,
            expected: required,
            found: data.len(),
        });
    }
    IndexVector::new(dtype, align(data, dtype.byte_width(), strict)?, count)
}

/// A CSF element count as recorded in a buffer record.
fn csf_count(spec: BufferSpec, what: &'static str) -> Result<usize> {
    usize::try_from(spec.length).map_err(|_| Error::SparseBufferOutOfBounds {
        what,
        offset: spec.offset,
        length: spec.length,
        body_len: 0,
    })
}

/// The body of a sparse message as its index buffers are read from it: the bytes, whether
/// misaligned buffers are refused (rather than copied), and the declared non-zero length.
struct SparseBody<'b, 'a> {
    body: &'b TensorData<'a>,
    strict: bool,
    nnz: usize,
}

impl<'a> SparseBody<'_, 'a> {
    /// The bytes `spec` names, checked to lie inside the body and aligned to `width`.
    fn aligned(
        &self,
        spec: BufferSpec,
        width: usize,
        what: &'static str,
    ) -> Result<TensorData<'a>> {
        let data = slice_body(self.body, spec.offset, spec.length, what)?;
        align(data, width, self.strict)
    }

    /// An index vector of `count` elements of `dtype` in the buffer `spec` names.
    fn index_vector(
        &self,
        dtype: DType,
        spec: BufferSpec,
        count: usize,
        what: &'static str,
    ) -> Result<IndexVector<'a>> {
        index_vector(self.body, dtype, spec, count, what, self.strict)
    }
}

/// Validates a sparse header against its body and assembles the tensor, as Arrow C++
/// `ReadSparseTensor` does, plus the consistency checks of [`SparseTensor::new`].
pub(crate) fn sparse_from_header<'a>(
    header: SparseTensorHeader,
    body: TensorData<'a>,
    options: &ReadOptions,
) -> Result<SparseTensor<'a>> {
    let SparseTensorHeader {
        dtype,
        shape,
        dim_names,
        non_zero_length: nnz,
        index,
        data,
    } = header;
    if data.offset % SPARSE_ALIGNMENT as i64 != 0 {
        return Err(Error::MisalignedSparseBuffer {
            offset: data.offset,
        });
    }
    let ndim = shape.len();
    check_ndim(header_format(&index), ndim)?;
    let sparse_body = SparseBody {
        body: &body,
        strict: options.require_alignment,
        nnz,
    };
    let index = match index {
        SparseIndexHeader::Coo {
            indices_type,
            indices_strides,
            indices,
            is_canonical,
        } => coo_from_header(
            &sparse_body,
            ndim,
            indices_type,
            indices_strides,
            indices,
            is_canonical,
        )?,
        SparseIndexHeader::Csx {
            axis,
            indptr_type,
            indptr,
            indices_type,
            indices,
        } => csx_from_header(
            &sparse_body,
            &shape,
            axis,
            (indptr_type, indptr),
            (indices_type, indices),
        )?,
        SparseIndexHeader::Csf {
            indptr_type,
            indptr,
            indices_type,
            indices,
            axis_order,
        } => csf_from_header(
            &sparse_body,
            ndim,
            (indptr_type, &indptr),
            (indices_type, &indices),
            &axis_order,
        )?,
    };
    let values = sparse_body.aligned(data, dtype.byte_width(), "data")?;
    SparseTensor::new(dtype, shape, index, values, dim_names)
}

/// The COO index of a message: an `nnz` x `ndim` coordinate matrix with the strides recorded
/// (row-major when none are).
fn coo_from_header<'a>(
    body: &SparseBody<'_, 'a>,
    ndim: usize,
    indices_type: DType,
    indices_strides: Option<Vec<i64>>,
    indices: BufferSpec,
    is_canonical: bool,
) -> Result<SparseIndex<'a>> {
    check_index_type(indices_type)?;
    let width = indices_type.byte_width();
    let strides = coo_strides(indices_strides, body.nnz, ndim, width)?;
    let coords = body.aligned(indices, width, "COO indices")?;
    Ok(SparseIndex::Coo(CooIndex::unchecked(
        indices_type,
        coords,
        body.nnz,
        ndim,
        strides,
        is_canonical,
    )?))
}

/// The byte strides of a COO coordinate matrix: the two recorded, or row-major.
fn coo_strides(raw: Option<Vec<i64>>, nnz: usize, ndim: usize, width: usize) -> Result<[usize; 2]> {
    let Some(raw) = raw else {
        let s = layout::row_major_strides(&[nnz, ndim], width)?;
        return Ok([s[0], s[1]]);
    };
    if raw.len() != 2 {
        return Err(Error::StridesLengthMismatch {
            shape_len: 2,
            strides_len: raw.len(),
        });
    }
    let mut strides = [0usize; 2];
    for (axis, (&stride, out)) in raw.iter().zip(&mut strides).enumerate() {
        *out = usize::try_from(stride).map_err(|_| Error::NegativeStride { axis, stride })?;
    }
    Ok(strides)
}

/// Refuses index buffers of two different types (Arrow C++ reads one type for both).
fn check_same_index_types(indptr: DType, indices: DType) -> Result<()> {
    if indptr == indices {
        Ok(())
    } else {
        Err(Error::MismatchedIndexTypes { indptr, indices })
    }
}

/// The CSR or CSC index of a message: `shape[axis] + 1` offsets and `nnz` indices.
fn csx_from_header<'a>(
    body: &SparseBody<'_, 'a>,
    shape: &[usize],
    axis: CompressedAxis,
    (indptr_type, indptr): (DType, BufferSpec),
    (indices_type, indices): (DType, BufferSpec),
) -> Result<SparseIndex<'a>> {
    check_same_index_types(indptr_type, indices_type)?;
    let indptr_len = shape[axis.axis()].checked_add(1).ok_or(Error::Overflow {
        what: "the indptr length",
    })?;
    let indices = body.index_vector(indices_type, indices, body.nnz, "CSX indices")?;
    let indptr = body.index_vector(indptr_type, indptr, indptr_len, "CSX indptr")?;
    Ok(SparseIndex::Csx(CsxIndex::new(axis, indptr, indices)?))
}

/// The CSF index of a message: `ndim - 1` indptr levels, `ndim` indices levels, the axis
/// order. Buffer lengths are element counts, checked against each other and `nnz` first.
fn csf_from_header<'a>(
    body: &SparseBody<'_, 'a>,
    ndim: usize,
    (indptr_type, indptr): (DType, &[BufferSpec]),
    (indices_type, indices): (DType, &[BufferSpec]),
    axis_order: &[i32],
) -> Result<SparseIndex<'a>> {
    check_same_index_types(indptr_type, indices_type)?;
    check_index_type(indices_type)?;
    check_csf_levels(ndim, indptr.len(), indices.len(), axis_order.len())?;
    let (indptr_counts, index_counts) = csf_counts(indptr, indices, body.nnz)?;
    let indptr = csf_vectors(body, indptr_type, indptr, &indptr_counts, "CSF indptr")?;
    let indices = csf_vectors(body, indices_type, indices, &index_counts, "CSF indices")?;
    Ok(SparseIndex::Csf(CsfIndex::new(
        indptr,
        indices,
        csf_axis_order(axis_order)?,
    )?))
}

/// Refuses a CSF index whose numbers of buffers and axes disagree with `ndim`.
fn check_csf_levels(ndim: usize, indptr: usize, indices: usize, axis_order: usize) -> Result<()> {
    let found = if indices != ndim {
        indices
    } else if indptr + 1 != ndim {
        indptr + 1
    } else if axis_order != ndim {
        axis_order
    } else {
        return Ok(());
    };
    Err(Error::SparseLength {
        what: "CSF indices buffers / indptr buffers + 1 / axis order entries",
        expected: ndim,
        found,
    })
}

/// The element counts of the CSF indptr and indices buffers, checked to agree with each other
/// (each level's indptr one longer than its indices) and the last level with `nnz`, before
/// the body is touched, so a writer that recorded byte lengths is named as such.
fn csf_counts(
    indptr: &[BufferSpec],
    indices: &[BufferSpec],
    nnz: usize,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let index_counts = indices
        .iter()
        .map(|&s| csf_count(s, "CSF indices"))
        .collect::<Result<Vec<usize>>>()?;
    let indptr_counts = indptr
        .iter()
        .map(|&s| csf_count(s, "CSF indptr"))
        .collect::<Result<Vec<usize>>>()?;
    for (level, (&p, &i)) in indptr_counts.iter().zip(&index_counts).enumerate() {
        if Some(p) != i.checked_add(1) {
            return Err(Error::SparseLength {
                what: if level == 0 {
                    "CSF indptr[0] length (indices[0] length + 1; buffer lengths must be element counts)"
                } else {
                    "CSF indptr length (indices length of the same level + 1; buffer lengths must be element counts)"
                },
                expected: i.saturating_add(1),
                found: p,
            });
        }
    }
    match index_counts.last() {
        Some(&last) if last != nnz => Err(Error::SparseLength {
            what: "CSF indices of the last level (the non-zero length)",
            expected: nnz,
            found: last,
        }),
        _ => Ok(()),
    }?;
    Ok((indptr_counts, index_counts))
}

/// One index vector per CSF level: `counts[level]` elements of `dtype` at each record's offset.
fn csf_vectors<'a>(
    body: &SparseBody<'_, 'a>,
    dtype: DType,
    specs: &[BufferSpec],
    counts: &[usize],
    what: &'static str,
) -> Result<Vec<IndexVector<'a>>> {
    specs
        .iter()
        .zip(counts)
        .map(|(&spec, &count)| {
            let bytes = count
                .checked_mul(dtype.byte_width())
                .and_then(|n| i64::try_from(n).ok())
                .ok_or(Error::Overflow { what })?;
            let spec = BufferSpec {
                offset: spec.offset,
                length: bytes,
            };
            body.index_vector(dtype, spec, count, what)
        })
        .collect()
}

/// The CSF axis order as axes, refusing negative entries.
fn csf_axis_order(axis_order: &[i32]) -> Result<Vec<usize>> {
    axis_order
        .iter()
        .map(|&a| usize::try_from(a))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| Error::InvalidAxisOrder {
            axis_order: axis_order.iter().map(|&a| i64::from(a)).collect(),
        })
}

/// Reads one sparse tensor with the default [`ReadOptions`], zero-copy.
///
/// [`Error::EndOfStream`] when the stream has ended; [`Error::UnexpectedHeader`] for a message
/// of another kind.
pub fn read_sparse_tensor<'a, S: TensorSource<'a> + ?Sized>(
    source: &mut S,
) -> Result<SparseTensor<'a>> {
    read_sparse_tensor_with(source, &ReadOptions::default())
}

/// Reads one sparse tensor with the given options.
pub fn read_sparse_tensor_with<'a, S: TensorSource<'a> + ?Sized>(
    source: &mut S,
    options: &ReadOptions,
) -> Result<SparseTensor<'a>> {
    ipc::read_message(source, options)?
        .ok_or(Error::EndOfStream)?
        .into_sparse_tensor(options)
}

/// What the writer writes: the encoded metadata and the body buffers in order.
struct SparsePlan<'t> {
    metadata: Vec<u8>,
    metadata_len: usize,
    buffers: Vec<&'t [u8]>,
    body_len: usize,
}

impl<'t> SparsePlan<'t> {
    fn new(st: &'t SparseTensor<'_>) -> Result<Self> {
        // Arrow C++ writes each source buffer whole.
        let mut buffers: Vec<&'t [u8]> = Vec::new();
        match st.index() {
            SparseIndex::Coo(coo) => buffers.push(coo.data().as_bytes()),
            SparseIndex::Csx(csx) => {
                buffers.push(csx.indptr().data().as_bytes());
                buffers.push(csx.indices().data().as_bytes());
            }
            SparseIndex::Csf(csf) => {
                buffers.extend(csf.indptr().iter().map(|v| v.data().as_bytes()));
                buffers.extend(csf.indices().iter().map(|v| v.data().as_bytes()));
            }
        }
        buffers.push(st.data().as_bytes());
        let mut specs = Vec::with_capacity(buffers.len());
        let mut offset = 0usize;
        for b in &buffers {
            let padded = padded_len(b.len())?;
            specs.push((offset, padded));
            offset = offset.checked_add(padded).ok_or(Error::Overflow {
                what: "the body length",
            })?;
        }
        let metadata = encode_sparse_metadata(st, &specs, offset)?;
        let metadata_len = padded_metadata_len(metadata.len(), SPARSE_ALIGNMENT)?;
        Ok(SparsePlan {
            metadata,
            metadata_len,
            buffers,
            body_len: offset,
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

fn padded_len(len: usize) -> Result<usize> {
    len.checked_next_multiple_of(SPARSE_ALIGNMENT)
        .ok_or(Error::Overflow {
            what: "a padded buffer length",
        })
}

/// The exact number of bytes [`write_sparse_tensor`] writes for `st`.
pub fn sparse_tensor_size(st: &SparseTensor<'_>) -> Result<usize> {
    SparsePlan::new(st)?.total_len()
}

/// Writes `st` as one sparse tensor message, byte-identical with Arrow C++
/// `ipc::WriteSparseTensor`, and returns the number of bytes written.
///
/// The sink is told the exact size first; then the metadata and each buffer (zero-padded to a
/// multiple of 8) are copied once into the sink's region.
pub fn write_sparse_tensor<S: TensorSink + ?Sized>(
    st: &SparseTensor<'_>,
    sink: &mut S,
) -> Result<usize> {
    const ZEROS: [u8; 8] = [0; 8];
    let plan = SparsePlan::new(st)?;
    let total = plan.total_len()?;
    let head = framed_metadata(&plan.metadata, plan.metadata_len);
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * plan.buffers.len());
    parts.push(&head);
    for b in &plan.buffers {
        parts.push(b);
        parts.push(&ZEROS[..padded_len(b.len())? - b.len()]);
    }
    sink.write_parts(total, &parts)?;
    Ok(total)
}

/// The `Int` table of an index type.
fn int_table<'b>(fbb: &mut FlatBufferBuilder<'b>, dtype: DType) -> WIPOffset<fb::Int<'b>> {
    fb::Int::create(
        fbb,
        &fb::IntArgs {
            bitWidth: dtype.bit_width() as i32,
            is_signed: dtype.is_signed(),
        },
    )
}

fn to_i64(v: usize, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Overflow { what })
}

/// A buffer record of the body: offset and length.
fn buffer_record((offset, len): (usize, usize)) -> Result<fb::Buffer> {
    Ok(fb::Buffer::new(
        to_i64(offset, "a buffer offset")?,
        to_i64(len, "a buffer length")?,
    ))
}

/// A sparse index table, as the union member of the `SparseTensor` table.
type IndexTable = (
    fb::SparseTensorIndex,
    WIPOffset<flatbuffers::UnionWIPOffset>,
);

/// Builds the flatbuffer `Message` of a sparse tensor in Arrow C++'s builder order
/// (`MakeSparseTensor` in `metadata_internal.cc`), so that the bytes are identical.
/// `specs` are the (offset, padded length) of each body buffer in order.
fn encode_sparse_metadata(
    st: &SparseTensor<'_>,
    specs: &[(usize, usize)],
    body_len: usize,
) -> Result<Vec<u8>> {
    let mut fbb = FlatBufferBuilder::with_capacity(1024);
    let (type_type, type_table) = encode_dtype(&mut fbb, st.dtype());
    let mut dims = Vec::with_capacity(st.ndim());
    for (axis, &size) in st.shape().iter().enumerate() {
        let name = fbb.create_string(st.dim_name(axis));
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
    let (index_type, index) = match st.index() {
        SparseIndex::Coo(coo) => encode_coo_index(&mut fbb, coo, specs)?,
        SparseIndex::Csx(csx) => encode_csx_index(&mut fbb, csx, specs)?,
        SparseIndex::Csf(csf) => encode_csf_index(&mut fbb, csf, specs)?,
    };
    let data = buffer_record(specs[specs.len() - 1])?;
    let sparse = fb::SparseTensor::create(
        &mut fbb,
        &fb::SparseTensorArgs {
            type_type,
            type_: Some(type_table),
            shape: Some(shape),
            non_zero_length: to_i64(st.non_zero_length(), "the non-zero length")?,
            sparseIndex_type: index_type,
            sparseIndex: Some(index),
            data: Some(&data),
        },
    );
    ipc::finish_message(
        fbb,
        fb::MessageHeader::SparseTensor,
        sparse.as_union_value(),
        body_len,
    )
}

/// The COO index table: the coordinates' type, strides and buffer (`specs[0]`).
fn encode_coo_index(
    fbb: &mut FlatBufferBuilder<'_>,
    coo: &CooIndex<'_>,
    specs: &[(usize, usize)],
) -> Result<IndexTable> {
    let int = int_table(fbb, coo.index_type());
    let [s0, s1] = coo.strides();
    let strides = fbb.create_vector(&[to_i64(s0, "a stride")?, to_i64(s1, "a stride")?]);
    let indices = buffer_record(specs[0])?;
    let table = fb::SparseTensorIndexCOO::create(
        fbb,
        &fb::SparseTensorIndexCOOArgs {
            indicesType: Some(int),
            indicesStrides: Some(strides),
            indicesBuffer: Some(&indices),
            isCanonical: coo.is_canonical(),
        },
    );
    Ok((
        fb::SparseTensorIndex::SparseTensorIndexCOO,
        table.as_union_value(),
    ))
}

/// The CSR/CSC index table: the compressed axis, indptr (`specs[0]`) and indices (`specs[1]`).
fn encode_csx_index(
    fbb: &mut FlatBufferBuilder<'_>,
    csx: &CsxIndex<'_>,
    specs: &[(usize, usize)],
) -> Result<IndexTable> {
    let indptr_type = int_table(fbb, csx.indptr().index_type());
    let indices_type = int_table(fbb, csx.indices().index_type());
    let indptr = buffer_record(specs[0])?;
    let indices = buffer_record(specs[1])?;
    let table = fb::SparseMatrixIndexCSX::create(
        fbb,
        &fb::SparseMatrixIndexCSXArgs {
            compressedAxis: match csx.axis() {
                CompressedAxis::Row => fb::SparseMatrixCompressedAxis::Row,
                CompressedAxis::Column => fb::SparseMatrixCompressedAxis::Column,
            },
            indptrType: Some(indptr_type),
            indptrBuffer: Some(&indptr),
            indicesType: Some(indices_type),
            indicesBuffer: Some(&indices),
        },
    );
    Ok((
        fb::SparseTensorIndex::SparseMatrixIndexCSX,
        table.as_union_value(),
    ))
}

/// The CSF index table: indptr buffers (`specs[..ndim - 1]`), indices buffers (the next
/// `ndim`) and the axis order. CSF records element counts, not byte lengths (the C++ reader
/// relies on it).
fn encode_csf_index(
    fbb: &mut FlatBufferBuilder<'_>,
    csf: &CsfIndex<'_>,
    specs: &[(usize, usize)],
) -> Result<IndexTable> {
    let dtype = csf.index_type();
    let indptr_type = int_table(fbb, dtype);
    let indices_type = int_table(fbb, dtype);
    let n_indptr = csf.indptr().len();
    let counted = |spec: (usize, usize), count: usize| buffer_record((spec.0, count));
    let indices = csf
        .indices()
        .iter()
        .enumerate()
        .map(|(i, v)| counted(specs[n_indptr + i], v.len()))
        .collect::<Result<Vec<_>>>()?;
    let indptr = csf
        .indptr()
        .iter()
        .enumerate()
        .map(|(i, v)| counted(specs[i], v.len()))
        .collect::<Result<Vec<_>>>()?;
    let indices = fbb.create_vector(&indices);
    let indptr = fbb.create_vector(&indptr);
    let axis_order = csf
        .axis_order()
        .iter()
        .map(|&a| i32::try_from(a).map_err(|_| Error::Overflow { what: "an axis" }))
        .collect::<Result<Vec<i32>>>()?;
    let axis_order = fbb.create_vector(&axis_order);
    let table = fb::SparseTensorIndexCSF::create(
        fbb,
        &fb::SparseTensorIndexCSFArgs {
            indptrType: Some(indptr_type),
            indptrBuffers: Some(indptr),
            indicesType: Some(indices_type),
            indicesBuffers: Some(indices),
            axisOrder: Some(axis_order),
        },
    );
    Ok((
        fb::SparseTensorIndex::SparseTensorIndexCSF,
        table.as_union_value(),
    ))
}
