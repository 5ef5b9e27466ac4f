//! Dense to sparse and back, producing what Arrow C++ `SparseCOOTensor::Make`,
//! `SparseCSRMatrix::Make`, `SparseCSCMatrix::Make` and `SparseCSFTensor::Make` produce.

use std::borrow::Cow;

use arrow_buffer::Buffer;

use super::{
    CompressedAxis, CooIndex, CsfIndex, CsxIndex, IndexVector, IndexWriter, SparseFormat,
    SparseIndex, SparseTensor, check_index_capacity, try_vec_with_capacity,
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

/// The stable argsort of a shape: Arrow C++'s CSF axis order.
fn argsort(shape: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..shape.len()).collect();
    order.sort_by_key(|&a| shape[a]);
    order
}

impl SparseTensor<'static> {
    /// Converts a dense tensor to `format` with int64 indices, as Arrow C++
    /// `SparseCOOTensor::Make(tensor)` (and the CSR, CSC, CSF equivalents) does.
    pub fn from_dense(tensor: &Tensor<'_>, format: SparseFormat) -> Result<Self> {
        Self::from_dense_with_index_type(tensor, format, DType::Int64)
    }

    /// Converts a dense tensor to `format` with indices of `index_type`.
    ///
    /// The non-zero values are taken in row-major order (COO, CSR), column-major order (CSC),
    /// or the row-major order of the axes sorted by size (CSF, whose `axis_order` is that
    /// stable argsort of the shape). COO coordinates are a row-major matrix flagged canonical.
    /// CSR and CSC need a matrix, CSF at least two dimensions.
    ///
    /// One divergence from Arrow C++ 26: for a *column-major* input of two or more
    /// dimensions, Arrow's COO converter produces wrong coordinates (apache/arrow GH-47580);
    /// this converter gives the same result as for the row-major copy of the tensor.
    pub fn from_dense_with_index_type(
        tensor: &Tensor<'_>,
        format: SparseFormat,
        index_type: DType,
    ) -> Result<Self> {
        check_index_capacity(index_type, tensor.shape())?;
        let ndim = tensor.ndim();
        match format {
            SparseFormat::Coo => {}
            SparseFormat::Csr | SparseFormat::Csc if ndim != 2 => {
                return Err(Error::SparseShape {
                    reason: "a CSR/CSC matrix needs two dimensions",
                    ndim,
                });
            }
            SparseFormat::Csf if ndim < 2 => {
                return Err(Error::SparseShape {
                    reason: "a CSF tensor needs at least two dimensions",
                    ndim,
                });
            }
            _ => {}
        }
        let dtype = tensor.dtype();
        let width = dtype.byte_width();
        let shape = tensor.shape();
        let mut values: Vec<u8> = Vec::new();
        let index = match format {
            SparseFormat::Coo => {
                let order: Vec<usize> = (0..ndim).collect();
                let elements = elements_in_order(tensor, &order)?;
                // Count first, as Arrow C++ does, so that the buffers are allocated once. The
                // shape check above guarantees every coordinate fits the index type.
                let nnz = count_nonzero(&elements, dtype);
                let coords_len = nnz
                    .checked_mul(ndim)
                    .and_then(|n| n.checked_mul(index_type.byte_width()))
                    .ok_or(Error::Overflow {
                        what: "the COO coordinates size",
                    })?;
                let mut coords = try_vec_with_capacity(coords_len)?;
                values = try_vec_with_capacity(nnz * width)?;
                let mask = nonzero_mask(dtype);
                macro_rules! rows {
                    ($($vw:literal, $iw:literal);*) => {
                        match (width, index_type.byte_width()) {
                            $(($vw, $iw) => coo_rows::<$vw, $iw>(
                                &elements, shape, mask, &mut values, &mut coords,
                            ),)*
                            _ => unreachable!("element and index widths are 1, 2, 4 or 8"),
                        }
                    };
                }
                rows!(1, 1; 1, 2; 1, 4; 1, 8; 2, 1; 2, 2; 2, 4; 2, 8;
                      4, 1; 4, 2; 4, 4; 4, 8; 8, 1; 8, 2; 8, 4; 8, 8);
                let coords = IndexVector::new(index_type, Buffer::from_vec(coords), nnz * ndim)?;
                let strides = layout::row_major_strides(&[nnz, ndim], index_type.byte_width())?;
                SparseIndex::Coo(
                    CooIndex::unchecked(
                        index_type,
                        coords.data,
                        nnz,
                        ndim,
                        [strides[0], strides[1]],
                        true,
                    )?
                    .with_canonical(true),
                )
            }
            SparseFormat::Csr | SparseFormat::Csc => {
                let axis = if format == SparseFormat::Csr {
                    CompressedAxis::Row
                } else {
                    CompressedAxis::Column
                };
                let order = if axis == CompressedAxis::Row {
                    [0, 1]
                } else {
                    [1, 0]
                };
                let (major, minor) = (shape[order[0]], shape[order[1]]);
                let elements = elements_in_order(tensor, &order)?;
                let indptr_len = major.checked_add(1).ok_or(Error::Overflow {
                    what: "the indptr length",
                })?;
                let mut indptr = IndexWriter::new(index_type, indptr_len)?;
                let mut indices = IndexWriter::new(index_type, 0)?;
                indptr.push(0)?;
                if elements.is_empty() {
                    // Every row (or column) is empty; the other axis may be too long for a
                    // row's byte length to exist.
                    indptr.push_repeated(0, major)?;
                } else {
                    // One compressed row (or column) at a time; indptr values can exceed the
                    // shape, so they are checked against the index type as they are written.
                    // A non-empty tensor's rows fit in its bytes.
                    let mut count = 0usize;
                    for row in elements.chunks_exact(minor * width) {
                        scan_nonzero(row, dtype, |j, v| {
                            values.extend_from_slice(v);
                            count += 1;
                            indices.push(j)
                        })?;
                        indptr.push(count)?;
                    }
                }
                SparseIndex::Csx(CsxIndex::new(axis, indptr.finish(), indices.finish())?)
            }
            SparseFormat::Csf => {
                let order = argsort(shape);
                let level_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
                let elements = elements_in_order(tensor, &order)?;
                let mut indptr: Vec<IndexWriter> = (0..ndim - 1)
                    .map(|_| IndexWriter::new(index_type, 0))
                    .collect::<Result<_>>()?;
                let mut indices: Vec<IndexWriter> = (0..ndim)
                    .map(|_| IndexWriter::new(index_type, 0))
                    .collect::<Result<_>>()?;
                let mut counts = vec![0usize; ndim];
                let mut coord = vec![0usize; ndim];
                let mut previous: Option<Vec<usize>> = None;
                scan_nonzero(&elements, dtype, |p, v| {
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
                SparseIndex::Csf(CsfIndex::new(
                    indptr.into_iter().map(IndexWriter::finish).collect(),
                    indices.into_iter().map(IndexWriter::finish).collect(),
                    order,
                )?)
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
