//! Sparse tensors: the COO, CSR, CSC and CSF formats of Arrow's `SparseTensor` message.
//!
//! A [`SparseTensor`] holds the non-zero values of a tensor and a [`SparseIndex`] saying where
//! they are, in one of four formats, exactly as Arrow C++ (`arrow::SparseCOOTensor`,
//! `SparseCSRMatrix`, `SparseCSCMatrix`, `SparseCSFTensor`) models them:
//!
//! * **COO**: an `nnz x ndim` matrix of coordinates (row- or column-major), one row per value,
//!   and whether the rows are canonical (sorted row-major, no duplicates);
//! * **CSR / CSC** (matrices only): `indptr` (one entry per row / column, plus one) and
//!   `indices` (the column / row of each value);
//! * **CSF**: a tree of `indptr` and `indices` vectors, one level per axis, visiting the axes in
//!   `axis_order`.
//!
//! Index vectors may be any integer type but `uint64` (Arrow refuses it); the values any of the
//! eleven tensor element types. Buffers are [`TensorData`], so a sparse tensor read from a
//! message shares the message's memory.
//!
//! ```
//! use tensor_ipc::sparse::{SparseFormat, SparseTensor, read_sparse_tensor, write_sparse_tensor};
//! use tensor_ipc::Tensor;
//!
//! let dense = Tensor::from_vec(vec![0.0f64, 1.5, 0.0, 0.0, 0.0, -2.0], vec![2, 3])?;
//! let csr = SparseTensor::from_dense(&dense, SparseFormat::Csr)?;
//! assert_eq!(csr.non_zero_length(), 2);
//!
//! let mut message = Vec::new();
//! write_sparse_tensor(&csr, &mut message)?;
//! let back = read_sparse_tensor(&mut message.as_slice())?;
//! assert_eq!(back.to_dense()?.to_vec::<f64>()?, dense.to_vec::<f64>()?);
//! # Ok::<(), tensor_ipc::Error>(())
//! ```

mod codec;
mod convert;

use std::fmt;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout;
use crate::tensor::TensorData;

pub use codec::{
    BufferSpec, SparseIndexHeader, SparseTensorHeader, read_sparse_tensor, read_sparse_tensor_with,
    sparse_tensor_size, write_sparse_tensor,
};
pub(crate) use codec::{decode_sparse_header, sparse_from_header};
pub use convert::{DEFAULT_MAX_OUTPUT_BYTES, FromDenseOptions};

/// The alignment of every buffer in a sparse tensor message body, and of its metadata.
pub const SPARSE_ALIGNMENT: usize = 8;

/// The index format of a sparse tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SparseFormat {
    /// Coordinate list.
    Coo,
    /// Compressed sparse row (matrices).
    Csr,
    /// Compressed sparse column (matrices).
    Csc,
    /// Compressed sparse fiber (any number of dimensions >= 2).
    Csf,
}

impl SparseFormat {
    /// All formats.
    pub const ALL: [SparseFormat; 4] = [
        SparseFormat::Coo,
        SparseFormat::Csr,
        SparseFormat::Csc,
        SparseFormat::Csf,
    ];

    /// The lower-case name: `coo`, `csr`, `csc`, `csf`.
    pub const fn name(self) -> &'static str {
        match self {
            SparseFormat::Coo => "coo",
            SparseFormat::Csr => "csr",
            SparseFormat::Csc => "csc",
            SparseFormat::Csf => "csf",
        }
    }

    /// Parses a name as printed by [`SparseFormat::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<SparseFormat> {
        SparseFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for SparseFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which axis of a matrix a CSX index compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressedAxis {
    /// Rows (CSR): `indptr` has one entry per row plus one, `indices` are column numbers.
    Row,
    /// Columns (CSC): `indptr` has one entry per column plus one, `indices` are row numbers.
    Column,
}

impl CompressedAxis {
    /// The compressed axis number: 0 for rows, 1 for columns.
    pub const fn axis(self) -> usize {
        match self {
            CompressedAxis::Row => 0,
            CompressedAxis::Column => 1,
        }
    }
}

/// Checks that `dtype` may be the type of a sparse index (an integer type other than uint64),
/// as Arrow C++ `CheckSparseIndexMaximumValue` does.
pub fn check_index_type(dtype: DType) -> Result<()> {
    if dtype.is_float() || dtype == DType::UInt64 {
        return Err(Error::SparseIndexType {
            type_name: dtype.name().to_owned(),
        });
    }
    Ok(())
}

/// Checks that `format` can index a tensor of `ndim` dimensions: COO any number (a 0-d COO
/// has coordinate rows of no values), CSR and CSC two, CSF at least two.
pub fn check_ndim(format: SparseFormat, ndim: usize) -> Result<()> {
    let reason = match format {
        SparseFormat::Coo => return Ok(()),
        SparseFormat::Csr | SparseFormat::Csc if ndim != 2 => {
            "a CSR/CSC index needs a matrix (two dimensions)"
        }
        SparseFormat::Csf if ndim < 2 => "a CSF index needs at least two dimensions",
        _ => return Ok(()),
    };
    Err(Error::SparseShape { reason, ndim })
}

/// The largest value an index type holds.
fn index_type_max(dtype: DType) -> u64 {
    match dtype {
        DType::Int8 => i8::MAX as u64,
        DType::Int16 => i16::MAX as u64,
        DType::Int32 => i32::MAX as u64,
        DType::UInt8 => u8::MAX as u64,
        DType::UInt16 => u16::MAX as u64,
        DType::UInt32 => u32::MAX as u64,
        _ => i64::MAX as u64,
    }
}

/// Arrow C++ `CheckSparseIndexMaximumValue`: every extent must fit the index type.
fn check_index_capacity(dtype: DType, extents: &[usize]) -> Result<()> {
    check_index_type(dtype)?;
    let max = index_type_max(dtype);
    if let Some(&value) = extents.iter().find(|&&x| x as u64 > max) {
        return Err(Error::IndexTypeTooSmall {
            index_type: dtype,
            value: value as u64,
        });
    }
    Ok(())
}

/// Reads one little-endian index value of `dtype` from `bytes` (exactly its width).
fn read_index(dtype: DType, bytes: &[u8]) -> i64 {
    match dtype {
        DType::Int8 => i64::from(bytes[0] as i8),
        DType::UInt8 => i64::from(bytes[0]),
        DType::Int16 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
        DType::UInt16 => i64::from(u16::from_le_bytes([bytes[0], bytes[1]])),
        DType::Int32 => i64::from(i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))),
        DType::UInt32 => i64::from(u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))),
        // Int64 (UInt64 and floats are refused before any read).
        _ => i64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
    }
}

/// An empty byte vector with room for `bytes`, or [`Error::AllocationFailed`].
pub(crate) fn try_vec_with_capacity(bytes: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.try_reserve_exact(bytes)
        .map_err(|_| Error::AllocationFailed {
            bytes: bytes as u64,
        })?;
    Ok(out)
}

/// Appends index values of a given type to a byte vector, checking that each fits.
#[derive(Debug)]
pub(crate) struct IndexWriter {
    dtype: DType,
    width: usize,
    max: u64,
    bytes: Vec<u8>,
}

impl IndexWriter {
    /// A writer with room for `capacity` values, allocated fallibly.
    pub(crate) fn new(dtype: DType, capacity: usize) -> Result<Self> {
        check_index_type(dtype)?;
        let width = dtype.byte_width();
        let bytes = capacity.checked_mul(width).ok_or(Error::Overflow {
            what: "an index buffer size",
        })?;
        Ok(IndexWriter {
            dtype,
            width,
            max: index_type_max(dtype),
            bytes: try_vec_with_capacity(bytes)?,
        })
    }

    /// Appends `value` `count` times.
    pub(crate) fn push_repeated(&mut self, value: usize, count: usize) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let start = self.bytes.len();
        self.push(value)?;
        let more = (count - 1).checked_mul(self.width).ok_or(Error::Overflow {
            what: "an index buffer size",
        })?;
        self.bytes
            .try_reserve(more)
            .map_err(|_| Error::AllocationFailed { bytes: more as u64 })?;
        let end = self.bytes.len();
        for _ in 1..count {
            self.bytes.extend_from_within(start..end);
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn push(&mut self, value: usize) -> Result<()> {
        if value as u64 > self.max {
            return Err(Error::IndexTypeTooSmall {
                index_type: self.dtype,
                value: value as u64,
            });
        }
        // Fixed-size copies: the width is one of four, and the branch is predictable.
        match self.width {
            8 => self.bytes.extend_from_slice(&(value as u64).to_le_bytes()),
            4 => self.bytes.extend_from_slice(&(value as u32).to_le_bytes()),
            2 => self.bytes.extend_from_slice(&(value as u16).to_le_bytes()),
            _ => self.bytes.push(value as u8),
        }
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / self.width
    }

    pub(crate) fn finish(self) -> IndexVector<'static> {
        let len = self.len();
        IndexVector {
            dtype: self.dtype,
            len,
            data: TensorData::Shared(arrow_buffer::Buffer::from_vec(self.bytes)),
        }
    }
}

/// A vector of index values (`indptr` or `indices`), of one integer type, over shared or
/// borrowed bytes.
#[derive(Clone, Debug)]
pub struct IndexVector<'a> {
    dtype: DType,
    len: usize,
    data: TensorData<'a>,
}

impl<'a> IndexVector<'a> {
    /// `len` values of `dtype` at the start of `data` (which may be longer: Arrow C++ writes a
    /// whole buffer, and so does this crate).
    pub fn new(dtype: DType, data: impl Into<TensorData<'a>>, len: usize) -> Result<Self> {
        check_index_type(dtype)?;
        let data = data.into();
        let required = len.checked_mul(dtype.byte_width()).ok_or(Error::Overflow {
            what: "an index buffer size",
        })?;
        if data.len() < required {
            return Err(Error::DataLength {
                required: required as u64,
                available: data.len() as u64,
            });
        }
        Ok(IndexVector { dtype, len, data })
    }

    /// The index type.
    pub fn index_type(&self) -> DType {
        self.dtype
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer (possibly longer than `len()` values).
    pub fn data(&self) -> &TensorData<'a> {
        &self.data
    }

    /// The value at `i` (any alignment).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn get(&self, i: usize) -> i64 {
        assert!(i < self.len, "index {i} out of bounds ({})", self.len);
        let w = self.dtype.byte_width();
        read_index(self.dtype, &self.data.as_bytes()[i * w..(i + 1) * w])
    }

    /// All values, widened to `i64`.
    pub fn to_vec(&self) -> Vec<i64> {
        let w = self.dtype.byte_width();
        self.data.as_bytes()[..self.len * w]
            .chunks_exact(w)
            .map(|b| read_index(self.dtype, b))
            .collect()
    }

    /// The same vector with `'static` data (borrowed data is copied once).
    pub fn into_owned(self) -> IndexVector<'static> {
        IndexVector {
            dtype: self.dtype,
            len: self.len,
            data: self.data.into_static(),
        }
    }
}

impl IndexVector<'static> {
    /// A vector of `dtype` holding `values`, each checked to fit the type.
    pub fn from_values(dtype: DType, values: &[i64]) -> Result<Self> {
        let mut writer = IndexWriter::new(dtype, values.len())?;
        for (position, &v) in values.iter().enumerate() {
            let v = usize::try_from(v).map_err(|_| Error::SparseIndexOutOfRange {
                what: "index value",
                position,
                value: v,
                bound: 0,
            })?;
            writer.push(v)?;
        }
        Ok(writer.finish())
    }
}

/// A COO index: an `nnz x ndim` coordinates matrix with byte strides, and the canonical flag.
#[derive(Clone, Debug)]
pub struct CooIndex<'a> {
    dtype: DType,
    nnz: usize,
    ndim: usize,
    strides: [usize; 2],
    coords: TensorData<'a>,
    is_canonical: bool,
}

impl<'a> CooIndex<'a> {
    /// A row-major `nnz x ndim` coordinates matrix of `dtype` over `coords`, with the canonical
    /// flag detected from the coordinates as Arrow C++ `SparseCOOIndex::Make` detects it.
    pub fn new(
        dtype: DType,
        coords: impl Into<TensorData<'a>>,
        nnz: usize,
        ndim: usize,
    ) -> Result<Self> {
        let strides = layout::row_major_strides(&[nnz, ndim], dtype.byte_width())?;
        Self::with_strides(dtype, coords, nnz, ndim, [strides[0], strides[1]])
    }

    /// A coordinates matrix with explicit byte strides, which must be Arrow's row- or
    /// column-major strides for `(nnz, ndim)`; canonicality is detected.
    pub fn with_strides(
        dtype: DType,
        coords: impl Into<TensorData<'a>>,
        nnz: usize,
        ndim: usize,
        strides: [usize; 2],
    ) -> Result<Self> {
        let mut index = Self::unchecked(dtype, coords.into(), nnz, ndim, strides, false)?;
        index.is_canonical = index.detect_canonical();
        Ok(index)
    }

    /// Builds and checks the matrix layout (not the coordinate values).
    fn unchecked(
        dtype: DType,
        coords: TensorData<'a>,
        nnz: usize,
        ndim: usize,
        strides: [usize; 2],
        is_canonical: bool,
    ) -> Result<Self> {
        check_index_capacity(dtype, &[nnz, ndim])?;
        let w = dtype.byte_width();
        let shape = [nnz, ndim];
        // Size first: a matrix too large to address is an overflow, not a layout problem.
        let required = layout::dense_byte_len(&shape, w)?;
        if !layout::is_row_major(&shape, &strides, w)
            && !layout::is_column_major(&shape, &strides, w)
        {
            return Err(Error::NonContiguousCoords {
                strides: strides.to_vec(),
            });
        }
        if coords.len() < required {
            return Err(Error::DataLength {
                required: required as u64,
                available: coords.len() as u64,
            });
        }
        Ok(CooIndex {
            dtype,
            nnz,
            ndim,
            strides,
            coords,
            is_canonical,
        })
    }

    /// The same index with the canonical flag set as given (Arrow C++ `SparseCOOIndex::Make`
    /// with `is_canonical`): the flag is written as it is and not checked.
    pub fn with_canonical(mut self, is_canonical: bool) -> Self {
        self.is_canonical = is_canonical;
        self
    }

    /// A row-major index of `dtype` from row-major coordinates (`nnz * ndim` values).
    pub fn from_values(dtype: DType, coords: &[i64], ndim: usize) -> Result<CooIndex<'static>> {
        let nnz = coords.len().checked_div(ndim).unwrap_or(0);
        if nnz.checked_mul(ndim) != Some(coords.len()) {
            return Err(Error::SparseLength {
                what: "COO coordinates",
                expected: nnz * ndim,
                found: coords.len(),
            });
        }
        let vector = IndexVector::from_values(dtype, coords)?;
        CooIndex::new(dtype, vector.data, nnz, ndim)
    }

    /// The index type.
    pub fn index_type(&self) -> DType {
        self.dtype
    }

    /// Number of coordinate rows (non-zero values).
    pub fn non_zero_length(&self) -> usize {
        self.nnz
    }

    /// Number of dimensions (columns of the matrix).
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// The byte strides of the `nnz x ndim` matrix.
    pub fn strides(&self) -> [usize; 2] {
        self.strides
    }

    /// Whether the coordinates are flagged canonical (sorted row-major, no duplicates).
    pub fn is_canonical(&self) -> bool {
        self.is_canonical
    }

    /// The coordinates buffer.
    pub fn data(&self) -> &TensorData<'a> {
        &self.coords
    }

    /// Coordinate `axis` of value `row`.
    ///
    /// # Panics
    /// If `row >= non_zero_length()` or `axis >= ndim()`.
    pub fn coord(&self, row: usize, axis: usize) -> i64 {
        assert!(
            row < self.nnz && axis < self.ndim,
            "coordinate out of bounds"
        );
        let w = self.dtype.byte_width();
        let at = row * self.strides[0] + axis * self.strides[1];
        read_index(self.dtype, &self.coords.as_bytes()[at..at + w])
    }

    /// The coordinates in logical row-major order (`nnz * ndim` values).
    pub fn to_vec(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.nnz * self.ndim);
        for row in 0..self.nnz {
            for axis in 0..self.ndim {
                out.push(self.coord(row, axis));
            }
        }
        out
    }

    /// Arrow C++ `DetectSparseCOOIndexCanonicality`: rows strictly increasing.
    fn detect_canonical(&self) -> bool {
        (1..self.nnz).all(|row| {
            for axis in 0..self.ndim {
                let (a, b) = (self.coord(row - 1, axis), self.coord(row, axis));
                if a != b {
                    return a < b;
                }
            }
            false
        })
    }

    fn into_owned(self) -> CooIndex<'static> {
        CooIndex {
            dtype: self.dtype,
            nnz: self.nnz,
            ndim: self.ndim,
            strides: self.strides,
            coords: self.coords.into_static(),
            is_canonical: self.is_canonical,
        }
    }
}

/// A CSR or CSC index: `indptr` over the compressed axis and `indices` on the other.
#[derive(Clone, Debug)]
pub struct CsxIndex<'a> {
    axis: CompressedAxis,
    indptr: IndexVector<'a>,
    indices: IndexVector<'a>,
}

impl<'a> CsxIndex<'a> {
    /// A CSR (`Row`) or CSC (`Column`) index. Both vectors must have the same type (Arrow C++
    /// aborts reading anything else); the values are checked against a shape by
    /// [`SparseTensor::new`].
    pub fn new(
        axis: CompressedAxis,
        indptr: IndexVector<'a>,
        indices: IndexVector<'a>,
    ) -> Result<Self> {
        if indptr.dtype != indices.dtype {
            return Err(Error::MismatchedIndexTypes {
                indptr: indptr.dtype,
                indices: indices.dtype,
            });
        }
        check_index_capacity(indptr.dtype, &[indptr.len, indices.len])?;
        Ok(CsxIndex {
            axis,
            indptr,
            indices,
        })
    }

    /// The compressed axis.
    pub fn axis(&self) -> CompressedAxis {
        self.axis
    }

    /// The index pointers: `shape[axis] + 1` values.
    pub fn indptr(&self) -> &IndexVector<'a> {
        &self.indptr
    }

    /// The indices on the other axis: one per value.
    pub fn indices(&self) -> &IndexVector<'a> {
        &self.indices
    }

    fn into_owned(self) -> CsxIndex<'static> {
        CsxIndex {
            axis: self.axis,
            indptr: self.indptr.into_owned(),
            indices: self.indices.into_owned(),
        }
    }
}

/// A CSF index: per level `i` (axis `axis_order[i]`), `indices[i]`, and for every level but
/// the last, `indptr[i]` delimiting each node's children in level `i + 1`.
#[derive(Clone, Debug)]
pub struct CsfIndex<'a> {
    indptr: Vec<IndexVector<'a>>,
    indices: Vec<IndexVector<'a>>,
    axis_order: Vec<usize>,
}

impl<'a> CsfIndex<'a> {
    /// A CSF index: `ndim - 1` indptr vectors, `ndim` indices vectors, all of one type, and
    /// a permutation of the axes.
    pub fn new(
        indptr: Vec<IndexVector<'a>>,
        indices: Vec<IndexVector<'a>>,
        axis_order: Vec<usize>,
    ) -> Result<Self> {
        let ndim = axis_order.len();
        check_ndim(SparseFormat::Csf, ndim)?;
        if indices.len() != ndim {
            return Err(Error::SparseLength {
                what: "CSF indices vectors (one per dimension)",
                expected: ndim,
                found: indices.len(),
            });
        }
        if indptr.len() + 1 != ndim {
            return Err(Error::SparseLength {
                what: "CSF indptr vectors (one per dimension but the last)",
                expected: ndim - 1,
                found: indptr.len(),
            });
        }
        let mut seen = vec![false; ndim];
        for &axis in &axis_order {
            if axis >= ndim || std::mem::replace(&mut seen[axis], true) {
                return Err(Error::InvalidAxisOrder {
                    axis_order: axis_order.iter().map(|&a| a as i64).collect(),
                });
            }
        }
        let dtype = indices[0].dtype;
        for v in indptr.iter().chain(&indices) {
            if v.dtype != dtype {
                return Err(Error::MismatchedIndexTypes {
                    indptr: v.dtype,
                    indices: dtype,
                });
            }
            check_index_capacity(dtype, &[v.len])?;
        }
        Ok(CsfIndex {
            indptr,
            indices,
            axis_order,
        })
    }

    /// The index type.
    pub fn index_type(&self) -> DType {
        self.indices[0].dtype
    }

    /// The indptr vectors, one per level but the last.
    pub fn indptr(&self) -> &[IndexVector<'a>] {
        &self.indptr
    }

    /// The indices vectors, one per level.
    pub fn indices(&self) -> &[IndexVector<'a>] {
        &self.indices
    }

    /// The axis of each level.
    pub fn axis_order(&self) -> &[usize] {
        &self.axis_order
    }

    fn into_owned(self) -> CsfIndex<'static> {
        CsfIndex {
            indptr: self
                .indptr
                .into_iter()
                .map(IndexVector::into_owned)
                .collect(),
            indices: self
                .indices
                .into_iter()
                .map(IndexVector::into_owned)
                .collect(),
            axis_order: self.axis_order,
        }
    }
}

/// Where the non-zero values of a sparse tensor are.
#[derive(Clone, Debug)]
pub enum SparseIndex<'a> {
    /// Coordinate list.
    Coo(CooIndex<'a>),
    /// CSR or CSC (see [`CsxIndex::axis`]).
    Csx(CsxIndex<'a>),
    /// Compressed sparse fiber.
    Csf(CsfIndex<'a>),
}

impl<'a> SparseIndex<'a> {
    /// The format.
    pub fn format(&self) -> SparseFormat {
        match self {
            SparseIndex::Coo(_) => SparseFormat::Coo,
            SparseIndex::Csx(csx) => match csx.axis {
                CompressedAxis::Row => SparseFormat::Csr,
                CompressedAxis::Column => SparseFormat::Csc,
            },
            SparseIndex::Csf(_) => SparseFormat::Csf,
        }
    }

    /// The index type.
    pub fn index_type(&self) -> DType {
        match self {
            SparseIndex::Coo(coo) => coo.dtype,
            SparseIndex::Csx(csx) => csx.indices.dtype,
            SparseIndex::Csf(csf) => csf.index_type(),
        }
    }

    /// The number of values the index places, as Arrow C++ counts it: COO rows, CSX indices,
    /// the last CSF level's indices.
    pub fn non_zero_length(&self) -> usize {
        match self {
            SparseIndex::Coo(coo) => coo.nnz,
            SparseIndex::Csx(csx) => csx.indices.len,
            SparseIndex::Csf(csf) => csf.indices.last().map_or(0, |v| v.len),
        }
    }

    fn into_owned(self) -> SparseIndex<'static> {
        match self {
            SparseIndex::Coo(i) => SparseIndex::Coo(i.into_owned()),
            SparseIndex::Csx(i) => SparseIndex::Csx(i.into_owned()),
            SparseIndex::Csf(i) => SparseIndex::Csf(i.into_owned()),
        }
    }
}

/// A sparse tensor: element type, shape, dimension names, index and non-zero values.
///
/// Every constructor checks the index against the shape (coordinates in range, `indptr`
/// starting at 0, non-decreasing and ending at the number of children, lengths consistent with
/// the number of values), so a `SparseTensor` can always be densified.
#[derive(Clone, Debug)]
pub struct SparseTensor<'a> {
    dtype: DType,
    shape: Vec<usize>,
    dim_names: Vec<String>,
    index: SparseIndex<'a>,
    data: TensorData<'a>,
}

impl<'a> SparseTensor<'a> {
    /// A sparse tensor of `dtype` and `shape` whose values (`data`, at least
    /// `index.non_zero_length()` elements) sit where `index` says; `dim_names` empty or one per
    /// dimension.
    pub fn new(
        dtype: DType,
        shape: Vec<usize>,
        index: SparseIndex<'a>,
        data: impl Into<TensorData<'a>>,
        dim_names: Vec<String>,
    ) -> Result<Self> {
        let data = data.into();
        layout::check_dim_names(dim_names.len(), shape.len())?;
        layout::dense_byte_len(&shape, dtype.byte_width())?;
        check_ndim(index.format(), shape.len())?;
        // The values' bytes first: they bound the number of values (a 0-d COO index has no
        // coordinate bytes to bound it), so the validation below takes time linear in the
        // bytes present, whatever the count declared.
        let nnz = index.non_zero_length();
        let required = nnz.checked_mul(dtype.byte_width()).ok_or(Error::Overflow {
            what: "the sparse data size",
        })?;
        if data.len() < required {
            return Err(Error::DataLength {
                required: required as u64,
                available: data.len() as u64,
            });
        }
        validate_index(&shape, &index)?;
        Ok(SparseTensor {
            dtype,
            shape,
            dim_names,
            index,
            data,
        })
    }

    /// The same tensor with dimension names: one per dimension, or none.
    pub fn with_dim_names<I, S>(mut self, names: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        layout::check_dim_names(names.len(), self.shape.len())?;
        self.dim_names = names;
        Ok(self)
    }

    /// The element type of the values.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape of the (dense) tensor.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The dimension names: empty when the tensor has none, else one per dimension.
    pub fn dim_names(&self) -> &[String] {
        &self.dim_names
    }

    /// The name of dimension `axis`, `""` when unnamed.
    pub fn dim_name(&self, axis: usize) -> &str {
        self.dim_names.get(axis).map_or("", String::as_str)
    }

    /// The sparse index.
    pub fn index(&self) -> &SparseIndex<'a> {
        &self.index
    }

    /// The index format.
    pub fn format(&self) -> SparseFormat {
        self.index.format()
    }

    /// The index type.
    pub fn index_type(&self) -> DType {
        self.index.index_type()
    }

    /// The number of stored values.
    pub fn non_zero_length(&self) -> usize {
        self.index.non_zero_length()
    }

    /// The number of elements of the dense tensor.
    pub fn size(&self) -> usize {
        // Checked at construction to fit (an empty axis makes it 0, whatever the others).
        layout::element_count(&self.shape).unwrap_or(0)
    }

    /// The values buffer (possibly longer than the values).
    pub fn data(&self) -> &TensorData<'a> {
        &self.data
    }

    /// The bytes of the stored values.
    pub fn value_bytes(&self) -> &[u8] {
        &self.data.as_bytes()[..self.non_zero_length() * self.dtype.byte_width()]
    }

    /// The stored values, zero-copy, when the data is aligned for `T`.
    pub fn values<T: Element>(&self) -> Result<&[T]> {
        self.check_dtype::<T>()?;
        let bytes = self.value_bytes();
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned {
            alignment: std::mem::align_of::<T>(),
            misalignment: bytes.as_ptr() as usize % std::mem::align_of::<T>(),
        })
    }

    /// The stored values, copied (any alignment).
    pub fn to_values<T: Element>(&self) -> Result<Vec<T>> {
        self.check_dtype::<T>()?;
        Ok(self
            .value_bytes()
            .chunks_exact(self.dtype.byte_width())
            .map(bytemuck::pod_read_unaligned)
            .collect())
    }

    /// The same tensor with `'static` data (borrowed buffers are copied once).
    pub fn into_owned(self) -> SparseTensor<'static> {
        SparseTensor {
            dtype: self.dtype,
            shape: self.shape,
            dim_names: self.dim_names,
            index: self.index.into_owned(),
            data: self.data.into_static(),
        }
    }

    fn check_dtype<T: Element>(&self) -> Result<()> {
        if T::DTYPE == self.dtype {
            Ok(())
        } else {
            Err(Error::DTypeMismatch {
                actual: self.dtype,
                requested: T::DTYPE,
            })
        }
    }

    /// Assembles a tensor whose parts were validated by the caller.
    pub(crate) fn from_validated_parts(
        dtype: DType,
        shape: Vec<usize>,
        dim_names: Vec<String>,
        index: SparseIndex<'a>,
        data: TensorData<'a>,
    ) -> Self {
        SparseTensor {
            dtype,
            shape,
            dim_names,
            index,
            data,
        }
    }
}

/// Checks an `indptr` vector: starts at 0, never decreases, ends at `children`.
fn check_indptr(indptr: &IndexVector<'_>, children: usize, what: &'static str) -> Result<()> {
    let mut previous = 0i64;
    for position in 0..indptr.len {
        let v = indptr.get(position);
        if (position == 0 && v != 0) || v < previous {
            return Err(Error::IndptrNotMonotone {
                what,
                position,
                value: v,
            });
        }
        previous = v;
    }
    if indptr.len == 0 || previous as u64 != children as u64 {
        return Err(Error::SparseLength {
            what,
            expected: children,
            found: usize::try_from(previous).unwrap_or(0),
        });
    }
    Ok(())
}

/// Checks that every value of `indices` lies in `0..bound`.
fn check_indices(indices: &IndexVector<'_>, bound: usize, what: &'static str) -> Result<()> {
    for position in 0..indices.len {
        let v = indices.get(position);
        if v < 0 || v as u64 >= bound as u64 {
            return Err(Error::SparseIndexOutOfRange {
                what,
                position,
                value: v,
                bound,
            });
        }
    }
    Ok(())
}

/// Checks an index against a shape (whose number of dimensions [`check_ndim`] accepted):
/// everything Arrow C++ checks, plus the consistency of the values (so densifying cannot go
/// out of bounds). Every loop runs over values present in the index's buffers.
fn validate_index(shape: &[usize], index: &SparseIndex<'_>) -> Result<()> {
    let ndim = shape.len();
    match index {
        SparseIndex::Coo(coo) => {
            if coo.ndim != ndim {
                return Err(Error::SparseLength {
                    what: "COO coordinates per value (the number of dimensions)",
                    expected: ndim,
                    found: coo.ndim,
                });
            }
            for row in 0..coo.nnz {
                for (axis, &bound) in shape.iter().enumerate() {
                    let v = coo.coord(row, axis);
                    if v < 0 || v as u64 >= bound as u64 {
                        return Err(Error::SparseIndexOutOfRange {
                            what: "COO coordinate",
                            position: row,
                            value: v,
                            bound,
                        });
                    }
                }
            }
        }
        SparseIndex::Csx(csx) => {
            let major = shape[csx.axis.axis()];
            let minor = shape[1 - csx.axis.axis()];
            if csx.indptr.len != major + 1 {
                return Err(Error::SparseLength {
                    what: "CSX indptr (compressed dimension + 1)",
                    expected: major + 1,
                    found: csx.indptr.len,
                });
            }
            check_indptr(&csx.indptr, csx.indices.len, "CSX indptr")?;
            check_indices(&csx.indices, minor, "CSX indices")?;
        }
        SparseIndex::Csf(csf) => {
            if ndim != csf.axis_order.len() {
                return Err(Error::SparseLength {
                    what: "CSF axis order (the number of dimensions)",
                    expected: ndim,
                    found: csf.axis_order.len(),
                });
            }
            for level in 0..ndim {
                let indices = &csf.indices[level];
                if level + 1 < ndim {
                    let indptr = &csf.indptr[level];
                    if indptr.len != indices.len + 1 {
                        return Err(Error::SparseLength {
                            what: "CSF indptr (indices of the same level + 1)",
                            expected: indices.len + 1,
                            found: indptr.len,
                        });
                    }
                    check_indptr(indptr, csf.indices[level + 1].len, "CSF indptr")?;
                }
                check_indices(indices, shape[csf.axis_order[level]], "CSF indices")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in SparseFormat::ALL {
            assert_eq!(SparseFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(SparseFormat::from_name("CSR"), Some(SparseFormat::Csr));
        assert_eq!(SparseFormat::from_name("dense"), None);
    }

    #[test]
    fn canonical_detection_matches_arrow() {
        let sorted = CooIndex::from_values(DType::Int16, &[0, 1, 0, 2, 1, 0], 2).unwrap();
        assert!(sorted.is_canonical());
        let duplicate = CooIndex::from_values(DType::Int16, &[0, 1, 0, 1], 2).unwrap();
        assert!(!duplicate.is_canonical());
        let unsorted = CooIndex::from_values(DType::Int16, &[1, 0, 0, 3], 2).unwrap();
        assert!(!unsorted.is_canonical());
        assert!(unsorted.with_canonical(true).is_canonical());
        // Zero or one row is canonical.
        assert!(
            CooIndex::from_values(DType::Int8, &[], 3)
                .unwrap()
                .is_canonical()
        );
    }

    #[test]
    fn index_types_and_capacity() {
        assert!(matches!(
            check_index_type(DType::Float32),
            Err(Error::SparseIndexType { .. })
        ));
        assert!(matches!(
            IndexVector::from_values(DType::Int8, &[128]),
            Err(Error::IndexTypeTooSmall { value: 128, .. })
        ));
        assert!(matches!(
            IndexVector::from_values(DType::Int8, &[-1]),
            Err(Error::SparseIndexOutOfRange { value: -1, .. })
        ));
        let v = IndexVector::from_values(DType::UInt16, &[0, 65535]).unwrap();
        assert_eq!(v.to_vec(), [0, 65535]);
        assert_eq!(v.get(1), 65535);
        // A column-major coordinates matrix of 3 rows: strides (w, 3w).
        let coords = IndexVector::from_values(DType::Int32, &[2, 0, 1, 1, 3, 0]).unwrap();
        let coo =
            CooIndex::with_strides(DType::Int32, coords.data().clone(), 3, 2, [4, 12]).unwrap();
        assert_eq!(coo.to_vec(), [2, 1, 0, 3, 1, 0]);
        assert!(matches!(
            CooIndex::with_strides(DType::Int32, coords.data().clone(), 3, 2, [4, 8]),
            Err(Error::NonContiguousCoords { .. })
        ));
    }

    #[test]
    fn ndim_rules_per_format() {
        for ndim in 0..4 {
            assert!(check_ndim(SparseFormat::Coo, ndim).is_ok());
            for f in [SparseFormat::Csr, SparseFormat::Csc] {
                assert_eq!(check_ndim(f, ndim).is_ok(), ndim == 2, "{f} {ndim}");
            }
            assert_eq!(check_ndim(SparseFormat::Csf, ndim).is_ok(), ndim >= 2);
        }
    }

    /// A 0-d COO index has no coordinate bytes, so only the values bound its count: a huge
    /// count is refused by their length before any validation loop (once a 2^50-step spin).
    #[test]
    fn a_declared_count_is_bounded_by_the_values_first() {
        let index =
            CooIndex::with_strides(DType::Int64, TensorData::Borrowed(&[]), 1 << 50, 0, [8, 8])
                .unwrap();
        assert!(!index.is_canonical());
        let started = std::time::Instant::now();
        let result = SparseTensor::new(
            DType::Float64,
            vec![],
            SparseIndex::Coo(index),
            arrow_buffer::Buffer::from_vec(vec![0u8; 8]),
            vec![],
        );
        assert!(matches!(
            result,
            Err(Error::DataLength { available: 8, .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn csf_index_shape_checks() {
        let v = |values: &[i64]| IndexVector::from_values(DType::Int64, values).unwrap();
        assert!(matches!(
            CsfIndex::new(vec![], vec![v(&[0])], vec![0]),
            Err(Error::SparseShape { ndim: 1, .. })
        ));
        assert!(matches!(
            CsfIndex::new(vec![v(&[0, 1])], vec![v(&[0]), v(&[0])], vec![1, 1]),
            Err(Error::InvalidAxisOrder { .. })
        ));
        let csf = CsfIndex::new(vec![v(&[0, 1])], vec![v(&[1]), v(&[2])], vec![1, 0]).unwrap();
        let st = SparseTensor::new(
            DType::UInt8,
            vec![3, 2],
            SparseIndex::Csf(csf),
            arrow_buffer::Buffer::from_vec(vec![7u8]),
            vec![],
        )
        .unwrap();
        assert_eq!(
            st.to_dense().unwrap().to_vec::<u8>().unwrap(),
            [0, 0, 0, 0, 0, 7]
        );
    }
}
