//! Dense to sparse and back, producing what Arrow C++ `SparseCOOTensor::Make`,
//! `SparseCSRMatrix::Make`, `SparseCSCMatrix::Make` and `SparseCSFTensor::Make` produce.

use std::borrow::Cow;

use arrow_buffer::Buffer;

use super::{
    CompressedAxis, CooIndex, CsfIndex, CsxIndex, IndexVector, IndexWriter, SparseFormat,
    SparseIndex, SparseTensor, check_index_capacity, check_ndim, try_vec_with_capacity,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout;
use crate::tensor::{Tensor, TensorData};

/// The bits of an element that make it non-zero: everything for integers, everything but the
/// sign for floats (so `-0.0` is zero and NaN is not, as `x != 0` in C++).
fn nonzero_mask(dtype: DType) -> u64 {
    match dtype {
        DType::Float16 => 0x7fff,
        DType::Float32 => 0x7fff_ffff,
        DType::Float64 => 0x7fff_ffff_ffff_ffff,
        _ => u64::MAX,
    }
}

/// Calls `f(position, element bytes)` for every non-zero element of `bytes`, in order.
///
/// Inlined so that `f` is inlined into the loop.
#[inline(always)]
fn scan_nonzero<F>(bytes: &[u8], dtype: DType, mut f: F) -> Result<()>
where
    F: FnMut(usize, &[u8]) -> Result<()>,
{
    macro_rules! scan {
        ($u:ty) => {{
            const W: usize = std::mem::size_of::<$u>();
            let mask = nonzero_mask(dtype) as $u;
            for (i, chunk) in bytes.chunks_exact(W).enumerate() {
                let word = <$u>::from_le_bytes(chunk.try_into().expect("chunk of W bytes"));
                if word & mask != 0 {
                    f(i, chunk)?;
                }
            }
            Ok(())
        }};
    }
    match dtype.byte_width() {
        1 => scan!(u8),
        2 => scan!(u16),
        4 => scan!(u32),
        _ => scan!(u64),
    }
}

/// COO conversion of row-major elements: each row (a run of the last axis) is scanned with the
/// coordinates of the other axes encoded once, so each non-zero costs two fixed-size copies and
/// one short one. `VW` is the element width, `IW` the index width.
fn coo_rows<const VW: usize, const IW: usize>(
    elements: &[u8],
    shape: &[usize],
    mask: u64,
    values: &mut Vec<u8>,
    coords: &mut Vec<u8>,
) {
    let ndim = shape.len();
    let inner = shape.last().copied().unwrap_or(1);
    // No element, no row: a zero axis may sit beside one so long that a row's byte length
    // overflows, so nothing below runs.
    if elements.is_empty() {
        return;
    }
    let mut outer = vec![0usize; ndim.saturating_sub(1)];
    let mut outer_bytes: Vec<u8> = Vec::with_capacity(outer.len() * IW);
    for row in elements.chunks_exact(inner * VW) {
        outer_bytes.clear();
        for &c in &outer {
            outer_bytes.extend_from_slice(&(c as u64).to_le_bytes()[..IW]);
        }
        for (j, chunk) in row.chunks_exact(VW).enumerate() {
            let mut word = [0u8; 8];
            word[..VW].copy_from_slice(chunk);
            if u64::from_le_bytes(word) & mask != 0 {
                values.extend_from_slice(chunk);
                coords.extend_from_slice(&outer_bytes);
                if ndim > 0 {
                    coords.extend_from_slice(&(j as u64).to_le_bytes()[..IW]);
                }
            }
        }
        for axis in (0..outer.len()).rev() {
            outer[axis] += 1;
            if outer[axis] < shape[axis] {
                break;
            }
            outer[axis] = 0;
        }
    }
}

/// The number of non-zero elements of `bytes` (Arrow C++ `CountNonZero`).
fn count_nonzero(bytes: &[u8], dtype: DType) -> usize {
    macro_rules! count {
        ($u:ty) => {{
            const W: usize = std::mem::size_of::<$u>();
            let mask = nonzero_mask(dtype) as $u;
            bytes
                .chunks_exact(W)
                .map(|chunk| {
                    let word = <$u>::from_le_bytes(chunk.try_into().expect("chunk of W bytes"));
                    usize::from(word & mask != 0)
                })
                .sum()
        }};
    }
    match dtype.byte_width() {
        1 => count!(u8),
        2 => count!(u16),
        4 => count!(u32),
        _ => count!(u64),
    }
}

/// The elements of `tensor` in the row-major order of its axes permuted by `order` (the last
/// axis of `order` varying fastest), borrowed when that is how they lie.
fn elements_in_order<'t>(tensor: &'t Tensor<'_>, order: &[usize]) -> Result<Cow<'t, [u8]>> {
    let identity = order.iter().enumerate().all(|(i, &a)| i == a);
    if identity && tensor.is_row_major() {
        return Ok(Cow::Borrowed(&tensor.as_bytes()[..tensor.dense_byte_len()]));
    }
    let shape: Vec<usize> = order.iter().map(|&a| tensor.shape()[a]).collect();
    let strides: Vec<usize> = order.iter().map(|&a| tensor.strides()[a]).collect();
    let mut out = vec![0u8; tensor.dense_byte_len()];
    layout::gather_row_major(
        tensor.as_bytes(),
        &shape,
        &strides,
        tensor.dtype().byte_width(),
        &mut out,
    );
    Ok(Cow::Owned(out))
}

/// The order in which a format visits the axes: row-major (COO, CSR), column-major (CSC),
/// the axes sorted by size (CSF).
fn level_order(format: SparseFormat, shape: &[usize]) -> Vec<usize> {
    match format {
        SparseFormat::Coo | SparseFormat::Csr => (0..shape.len()).collect(),
        SparseFormat::Csc => vec![1, 0],
        SparseFormat::Csf => argsort(shape),
    }
}

/// The COO index of row-major `elements` holding `nnz` non-zero values, which are appended to
/// `values`. The caller checked that every coordinate fits the index type.
fn coo_index(
    elements: &[u8],
    shape: &[usize],
    dtype: DType,
    index_type: DType,
    nnz: usize,
    values: &mut Vec<u8>,
) -> Result<SparseIndex<'static>> {
    let ndim = shape.len();
    let iw = index_type.byte_width();
    // Fits: the caller checked the whole output's size.
    let mut coords = try_vec_with_capacity(nnz * ndim * iw)?;
    let mask = nonzero_mask(dtype);
    macro_rules! rows {
        ($($vw:literal, $iw:literal);*) => {
            match (dtype.byte_width(), iw) {
                $(($vw, $iw) => coo_rows::<$vw, $iw>(elements, shape, mask, values, &mut coords),)*
                _ => unreachable!("element and index widths are 1, 2, 4 or 8"),
            }
        };
    }
    rows!(1, 1; 1, 2; 1, 4; 1, 8; 2, 1; 2, 2; 2, 4; 2, 8;
          4, 1; 4, 2; 4, 4; 4, 8; 8, 1; 8, 2; 8, 4; 8, 8);
    let coords = IndexVector::new(index_type, Buffer::from_vec(coords), nnz * ndim)?;
    let strides = layout::row_major_strides(&[nnz, ndim], iw)?;
    let coo = CooIndex::unchecked(
        index_type,
        coords.data,
        nnz,
        ndim,
        [strides[0], strides[1]],
        true,
    )?;
    Ok(SparseIndex::Coo(coo.with_canonical(true)))
}

/// The CSR or CSC index of a matrix whose `elements` are in the format's order (row-major for
/// CSR, column-major for CSC), holding `nnz` non-zero values appended to `values`.
fn csx_index(
    elements: &[u8],
    shape: &[usize],
    format: SparseFormat,
    dtype: DType,
    index_type: DType,
    nnz: usize,
    values: &mut Vec<u8>,
) -> Result<SparseIndex<'static>> {
    let axis = if format == SparseFormat::Csr {
        CompressedAxis::Row
    } else {
        CompressedAxis::Column
    };
    let (major, minor) = (shape[axis.axis()], shape[1 - axis.axis()]);
    let indptr_len = major.checked_add(1).ok_or(Error::Overflow {
        what: "the indptr length",
    })?;
    let mut indptr = IndexWriter::new(index_type, indptr_len)?;
    let mut indices = IndexWriter::new(index_type, nnz)?;
    indptr.push(0)?;
    if elements.is_empty() {
        // Every row (or column) is empty; the other axis may be too long for a row's byte
        // length to exist.
        indptr.push_repeated(0, major)?;
    } else {
        // One compressed row (or column) at a time; indptr values can exceed the shape, so
        // they are checked against the index type as they are written. A non-empty
        // tensor's rows fit in its bytes.
        let mut count = 0usize;
        for row in elements.chunks_exact(minor * dtype.byte_width()) {
            scan_nonzero(row, dtype, |j, v| {
                values.extend_from_slice(v);
                count += 1;
                indices.push(j)
            })?;
            indptr.push(count)?;
        }
    }
    Ok(SparseIndex::Csx(CsxIndex::new(
        axis,
        indptr.finish(),
        indices.finish(),
    )?))
}

/// The CSF index of `elements` in the row-major order of the axes permuted by `order`, whose
/// non-zero values are appended to `values`.
fn csf_index(
    elements: &[u8],
    shape: &[usize],
    order: Vec<usize>,
    dtype: DType,
    index_type: DType,
    values: &mut Vec<u8>,
) -> Result<SparseIndex<'static>> {
    let ndim = shape.len();
    let level_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
    let mut indptr: Vec<IndexWriter> = (0..ndim - 1)
        .map(|_| IndexWriter::new(index_type, 0))
        .collect::<Result<_>>()?;
    let mut indices: Vec<IndexWriter> = (0..ndim)
        .map(|_| IndexWriter::new(index_type, 0))
        .collect::<Result<_>>()?;
    let mut counts = vec![0usize; ndim];
    let mut coord = vec![0usize; ndim];
    let mut previous: Option<Vec<usize>> = None;
    scan_nonzero(elements, dtype, |p, v| {
        values.extend_from_slice(v);
        let mut rem = p;
        for level in (0..ndim).rev() {
            coord[level] = rem % level_shape[level];
            rem /= level_shape[level];
        }
        let mut split = false;
        for level in 0..ndim {
            split = split
                || previous
                    .as_ref()
                    .is_none_or(|prev| prev[level] != coord[level]);
            if split {
                if level + 1 < ndim {
                    indptr[level].push(counts[level + 1])?;
                }
                indices[level].push(coord[level])?;
                counts[level] += 1;
            }
        }
        match &mut previous {
            Some(prev) => prev.copy_from_slice(&coord),
            None => previous = Some(coord.clone()),
        }
        Ok(())
    })?;
    for level in 0..ndim - 1 {
        indptr[level].push(counts[level + 1])?;
    }
    Ok(SparseIndex::Csf(CsfIndex::new(
        indptr.into_iter().map(IndexWriter::finish).collect(),
        indices.into_iter().map(IndexWriter::finish).collect(),
        order,
    )?))
}

/// The stable argsort of a shape: Arrow C++'s CSF axis order.
fn argsort(shape: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..shape.len()).collect();
    order.sort_by_key(|&a| shape[a]);
    order
}

/// The largest sparse tensor a conversion makes unless told otherwise: 64 GiB of index and
/// value buffers.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 << 30;

/// How [`SparseTensor::from_dense_with`] converts: the index type and the most bytes the
/// result may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FromDenseOptions {
    /// The type of the index values (default int64, as Arrow C++ `Make` uses).
    pub index_type: DType,
    /// The most bytes the sparse tensor's index and value buffers may take together (default
    /// [`DEFAULT_MAX_OUTPUT_BYTES`]). The exact size (for CSF, the largest the tree can be for
    /// the number of non-zero values) is computed before anything is allocated; a larger
    /// result is [`Error::OutputTooLarge`]. A tensor with a zero axis beside a huge one has
    /// no element and still a huge CSR or CSC `indptr`, so a tiny input can ask for any size.
    pub max_output_bytes: u64,
}

impl Default for FromDenseOptions {
    fn default() -> Self {
        FromDenseOptions {
            index_type: DType::Int64,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl FromDenseOptions {
    /// The same options with indices of `index_type`.
    pub fn with_index_type(mut self, index_type: DType) -> Self {
        self.index_type = index_type;
        self
    }

    /// The same options with at most `bytes` of output.
    pub fn with_max_output_bytes(mut self, bytes: u64) -> Self {
        self.max_output_bytes = bytes;
        self
    }
}

/// The bytes of the index and value buffers of `format` for `nnz` values of `width` bytes in
/// a tensor of `shape`, with indices of `index_width` bytes: exact for COO, CSR and CSC, the
/// largest the tree can be for CSF (every level with `nnz` nodes). `None` on overflow.
fn sparse_buffers_len(
    format: SparseFormat,
    shape: &[usize],
    nnz: usize,
    width: usize,
    index_width: usize,
) -> Option<u64> {
    let (nnz, ndim, iw) = (nnz as u64, shape.len() as u64, index_width as u64);
    let values = nnz.checked_mul(width as u64)?;
    let index = match format {
        SparseFormat::Coo => nnz.checked_mul(ndim)?.checked_mul(iw)?,
        SparseFormat::Csr | SparseFormat::Csc => {
            let major = shape[usize::from(format == SparseFormat::Csc)] as u64;
            let indptr = major.checked_add(1)?.checked_mul(iw)?;
            indptr.checked_add(nnz.checked_mul(iw)?)?
        }
        SparseFormat::Csf => {
            let indices = nnz.checked_mul(ndim)?;
            let indptr = nnz.checked_add(1)?.checked_mul(ndim.saturating_sub(1))?;
            indices.checked_add(indptr)?.checked_mul(iw)?
        }
    };
    values.checked_add(index)
}

/// Refuses a conversion whose buffers would exceed `limit`.
fn check_output_len(
    format: SparseFormat,
    shape: &[usize],
    nnz: usize,
    width: usize,
    index_type: DType,
    limit: u64,
) -> Result<()> {
    let bytes = sparse_buffers_len(format, shape, nnz, width, index_type.byte_width());
    match bytes {
        Some(bytes) if bytes <= limit => Ok(()),
        _ => Err(Error::OutputTooLarge {
            what: match format {
                SparseFormat::Coo => "the COO tensor",
                SparseFormat::Csr => "the CSR matrix",
                SparseFormat::Csc => "the CSC matrix",
                SparseFormat::Csf => "the CSF tensor",
            },
            bytes: bytes.unwrap_or(u64::MAX),
            limit,
        }),
    }
}

impl SparseTensor<'static> {
    /// Converts a dense tensor to `format` with int64 indices, as Arrow C++
    /// `SparseCOOTensor::Make(tensor)` (and the CSR, CSC, CSF equivalents) does, within the
    /// default [`FromDenseOptions`] (at most [`DEFAULT_MAX_OUTPUT_BYTES`]).
    pub fn from_dense(tensor: &Tensor<'_>, format: SparseFormat) -> Result<Self> {
        Self::from_dense_with(tensor, format, &FromDenseOptions::default())
    }

    /// Converts a dense tensor to `format` with indices of `index_type`, within the default
    /// output bound.
    pub fn from_dense_with_index_type(
        tensor: &Tensor<'_>,
        format: SparseFormat,
        index_type: DType,
    ) -> Result<Self> {
        let options = FromDenseOptions::default().with_index_type(index_type);
        Self::from_dense_with(tensor, format, &options)
    }

    /// Converts a dense tensor to `format` as `options` say.
    ///
    /// The non-zero values are taken in row-major order (COO, CSR), column-major order (CSC),
    /// or the row-major order of the axes sorted by size (CSF, whose `axis_order` is that
    /// stable argsort of the shape). COO coordinates are a row-major matrix flagged canonical.
    /// CSR and CSC need a matrix, CSF at least two dimensions.
    ///
    /// One divergence from Arrow C++ 26: for a *column-major* input of two or more
    /// dimensions, Arrow's COO converter produces wrong coordinates (apache/arrow GH-47580);
    /// this converter gives the same result as for the row-major copy of the tensor.
    ///
    /// The non-zero values are counted first (a pass over the elements, as Arrow C++ does),
    /// then the output's size is checked against [`FromDenseOptions::max_output_bytes`], and
    /// only then is it allocated, once.
    pub fn from_dense_with(
        tensor: &Tensor<'_>,
        format: SparseFormat,
        options: &FromDenseOptions,
    ) -> Result<Self> {
        let index_type = options.index_type;
        check_index_capacity(index_type, tensor.shape())?;
        check_ndim(format, tensor.ndim())?;
        let dtype = tensor.dtype();
        let width = dtype.byte_width();
        let shape = tensor.shape();
        let limit = options.max_output_bytes;
        // What does not depend on the values (a CSR or CSC indptr) is checked before the
        // elements are even put in order, the rest once they are counted.
        check_output_len(format, shape, 0, width, index_type, limit)?;
        let order = level_order(format, shape);
        let elements = elements_in_order(tensor, &order)?;
        // Count first, as Arrow C++ does, so that the buffers are allocated once.
        let nnz = count_nonzero(&elements, dtype);
        check_output_len(format, shape, nnz, width, index_type, limit)?;
        let mut values = try_vec_with_capacity(nnz * width)?;
        let index = match format {
            SparseFormat::Coo => coo_index(&elements, shape, dtype, index_type, nnz, &mut values)?,
            SparseFormat::Csr | SparseFormat::Csc => csx_index(
                &elements,
                shape,
                format,
                dtype,
                index_type,
                nnz,
                &mut values,
            )?,
            SparseFormat::Csf => {
                csf_index(&elements, shape, order, dtype, index_type, &mut values)?
            }
        };
        Ok(SparseTensor::from_validated_parts(
            dtype,
            shape.to_vec(),
            tensor.dim_names().to_vec(),
            index,
            TensorData::Shared(Buffer::from_vec(values)),
        ))
    }
}

impl SparseTensor<'_> {
    /// The dense, row-major tensor (zeros where no value is stored), with the same dimension
    /// names, as Arrow C++ `SparseTensor::ToTensor` gives it. COO coordinates are read through
    /// their strides, so a column-major coordinates matrix densifies correctly (Arrow C++ 26
    /// reads it as row-major). Duplicate COO coordinates keep the last value.
    ///
    /// The dense tensor is allocated fallibly: a shape too large for memory is
    /// [`Error::AllocationFailed`], not an abort.
    pub fn to_dense(&self) -> Result<Tensor<'static>> {
        let width = self.dtype().byte_width();
        let shape = self.shape();
        let len = layout::dense_byte_len(shape, width)?;
        let mut out: Vec<u8> = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Error::AllocationFailed { bytes: len as u64 })?;
        out.resize(len, 0);
        // Element (not byte) row-major strides.
        let strides = layout::row_major_strides(shape, 1)?;
        let values = self.value_bytes();
        let mut put = |element: usize, k: usize| {
            out[element * width..(element + 1) * width]
                .copy_from_slice(&values[k * width..(k + 1) * width]);
        };
        // The index was validated against the shape on construction: every offset below is
        // inside the tensor.
        match self.index() {
            SparseIndex::Coo(coo) => {
                for k in 0..coo.non_zero_length() {
                    let element = (0..coo.ndim())
                        .map(|axis| coo.coord(k, axis) as usize * strides[axis])
                        .sum();
                    put(element, k);
                }
            }
            SparseIndex::Csx(csx) => {
                let ncols = shape[1];
                let indptr = csx.indptr().to_vec();
                let indices = csx.indices();
                for (i, w) in indptr.windows(2).enumerate() {
                    for k in w[0] as usize..w[1] as usize {
                        let j = indices.get(k) as usize;
                        let (r, c) = match csx.axis() {
                            CompressedAxis::Row => (i, j),
                            CompressedAxis::Column => (j, i),
                        };
                        put(r * ncols + c, k);
                    }
                }
            }
            SparseIndex::Csf(csf) => {
                let order = csf.axis_order();
                // The element offset of every node, level by level.
                let mut offsets: Vec<usize> = csf.indices()[0]
                    .to_vec()
                    .iter()
                    .map(|&i| i as usize * strides[order[0]])
                    .collect();
                for level in 1..order.len() {
                    let indptr = csf.indptr()[level - 1].to_vec();
                    let indices = &csf.indices()[level];
                    let mut next = vec![0usize; indices.len()];
                    for (parent, w) in indptr.windows(2).enumerate() {
                        let (start, stop) = (w[0] as usize, w[1] as usize);
                        for (child, slot) in next[start..stop].iter_mut().enumerate() {
                            *slot = offsets[parent]
                                + indices.get(start + child) as usize * strides[order[level]];
                        }
                    }
                    offsets = next;
                }
                for (k, &element) in offsets.iter().enumerate() {
                    put(element, k);
                }
            }
        }
        Tensor::from_buffer(self.dtype(), Buffer::from_vec(out), shape.to_vec())?
            .with_dim_names(self.dim_names().to_vec())
    }
}
