//! The dense tensor: element type, shape, byte strides, dimension names and data.

use std::fmt;

use arrow_buffer::Buffer;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::gather::Gather;
use crate::layout;

/// The bytes behind a tensor: borrowed from the caller, or a shared, reference-counted
/// [`Buffer`] whose owner keeps the memory alive (a `Vec`, an mmap, a Plasma object, ...).
#[derive(Clone)]
pub enum TensorData<'a> {
    /// Bytes borrowed for `'a`; nothing is copied.
    Borrowed(&'a [u8]),
    /// A shared buffer; cloning it shares the memory.
    Shared(Buffer),
}

impl<'a> TensorData<'a> {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            TensorData::Borrowed(bytes) => bytes,
            TensorData::Shared(buffer) => buffer.as_slice(),
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same bytes with a `'static` lifetime: a shared buffer as it is, borrowed bytes
    /// copied once into a new (64-byte aligned) buffer.
    pub fn into_static(self) -> TensorData<'static> {
        TensorData::Shared(self.into_buffer())
    }

    /// The bytes as a [`Buffer`] (copied once if borrowed).
    pub fn into_buffer(self) -> Buffer {
        match self {
            TensorData::Borrowed(bytes) => Buffer::from_slice_ref(bytes),
            TensorData::Shared(buffer) => buffer,
        }
    }

    /// A sub-range of these bytes, sharing the memory.
    ///
    /// # Panics
    /// If `offset + len` exceeds the length.
    pub fn slice(&self, offset: usize, len: usize) -> TensorData<'a> {
        match self {
            TensorData::Borrowed(bytes) => TensorData::Borrowed(&bytes[offset..offset + len]),
            TensorData::Shared(buffer) => TensorData::Shared(buffer.slice_with_length(offset, len)),
        }
    }

    /// These bytes if their address is a multiple of `alignment`; otherwise, a copy into
    /// aligned memory, or [`Error::Misaligned`] when `strict`.
    pub(crate) fn aligned(self, alignment: usize, strict: bool) -> Result<TensorData<'a>> {
        let misalignment = self.as_bytes().as_ptr() as usize % alignment;
        if misalignment == 0 {
            Ok(self)
        } else if strict {
            Err(Error::Misaligned {
                alignment,
                misalignment,
            })
        } else {
            Ok(TensorData::Shared(Buffer::from_slice_ref(self.as_bytes())))
        }
    }
}

impl fmt::Debug for TensorData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            TensorData::Borrowed(_) => "Borrowed",
            TensorData::Shared(_) => "Shared",
        };
        write!(
            f,
            "{kind}({} bytes at {:p})",
            self.len(),
            self.as_bytes().as_ptr()
        )
    }
}

impl From<Buffer> for TensorData<'static> {
    fn from(buffer: Buffer) -> Self {
        TensorData::Shared(buffer)
    }
}

impl<'a> From<&'a [u8]> for TensorData<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        TensorData::Borrowed(bytes)
    }
}

/// A dense tensor, as Arrow C++ `arrow::Tensor` models it.
///
/// The data is never copied on construction: a tensor built from a `Vec` takes the vector's
/// allocation, one built from a slice borrows it, and one read from a source shares the
/// source's memory. Strides are byte strides and may be any non-negative values that keep every
/// element inside the data.
///
/// ```
/// use tensor_ipc::Tensor;
/// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], vec![2, 3])?;
/// assert_eq!(t.strides(), &[12, 4]);
/// assert!(t.is_row_major());
/// assert_eq!(t.get::<f32>(&[1, 2])?, 6.0);
/// # Ok::<(), tensor_ipc::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Tensor<'a> {
    dtype: DType,
    shape: Vec<usize>,
    strides: Vec<usize>,
    dim_names: Vec<String>,
    data: TensorData<'a>,
}

impl<'a> Tensor<'a> {
    /// A row-major tensor over `data`, which must hold at least `shape`'s elements.
    pub fn new(dtype: DType, data: impl Into<TensorData<'a>>, shape: Vec<usize>) -> Result<Self> {
        let strides = layout::row_major_strides(&shape, dtype.byte_width())?;
        Self::with_layout(dtype, data.into(), shape, strides, Vec::new())
    }

    /// A tensor with explicit byte strides and dimension names (empty for none), checked as
    /// Arrow C++ `Tensor::Make` checks them.
    pub fn with_layout(
        dtype: DType,
        data: TensorData<'a>,
        shape: Vec<usize>,
        strides: Vec<usize>,
        dim_names: Vec<String>,
    ) -> Result<Self> {
        layout::check_strides_in_bounds(&shape, &strides, dtype.byte_width(), data.len())?;
        layout::check_dim_names(dim_names.len(), shape.len())?;
        // Checks that the element count and byte size fit, for later arithmetic.
        layout::dense_byte_len(&shape, dtype.byte_width())?;
        Ok(Tensor {
            dtype,
            shape,
            strides,
            dim_names,
            data,
        })
    }

    /// A row-major tensor borrowing a typed slice (no copy; Arrow C++ `Buffer::Wrap`).
    pub fn from_slice<T: Element>(values: &'a [T], shape: Vec<usize>) -> Result<Self> {
        Self::new(T::DTYPE, bytemuck::cast_slice::<T, u8>(values), shape)
    }

    /// The same tensor with these byte strides, checked against the data.
    pub fn with_strides(self, strides: Vec<usize>) -> Result<Self> {
        Self::with_layout(self.dtype, self.data, self.shape, strides, self.dim_names)
    }

    /// The same data read as column-major (Fortran order): strides become column-major.
    pub fn into_column_major(self) -> Result<Self> {
        let strides = layout::column_major_strides(&self.shape, self.dtype.byte_width())?;
        self.with_strides(strides)
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

    /// Assembles a tensor whose layout the caller has already validated.
    pub(crate) fn from_validated_parts(
        dtype: DType,
        shape: Vec<usize>,
        strides: Vec<usize>,
        dim_names: Vec<String>,
        data: TensorData<'a>,
    ) -> Self {
        Tensor {
            dtype,
            shape,
            strides,
            dim_names,
            data,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The byte stride of each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// The dimension names: empty when the tensor has none, else one per dimension.
    pub fn dim_names(&self) -> &[String] {
        &self.dim_names
    }

    /// The name of dimension `axis`, `""` when unnamed.
    pub fn dim_name(&self, axis: usize) -> &str {
        self.dim_names.get(axis).map_or("", String::as_str)
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a 0-d tensor).
    pub fn len(&self) -> usize {
        // Checked at construction.
        layout::element_count(&self.shape).unwrap_or(usize::MAX)
    }

    /// Whether the tensor has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the elements when densely packed: `len() * dtype().byte_width()`.
    pub fn dense_byte_len(&self) -> usize {
        self.len() * self.dtype.byte_width()
    }

    /// The data the strides index into.
    pub fn data(&self) -> &TensorData<'a> {
        &self.data
    }

    /// The raw data bytes (the whole region the strides index into).
    pub fn as_bytes(&self) -> &[u8] {
        self.data.as_bytes()
    }

    /// The data as a shared [`Buffer`], when the tensor owns it that way.
    pub fn buffer(&self) -> Option<&Buffer> {
        match &self.data {
            TensorData::Shared(buffer) => Some(buffer),
            TensorData::Borrowed(_) => None,
        }
    }

    /// Whether the strides are Arrow's row-major strides for the shape.
    pub fn is_row_major(&self) -> bool {
        layout::is_row_major(&self.shape, &self.strides, self.dtype.byte_width())
    }

    /// Whether the strides are Arrow's column-major strides for the shape.
    pub fn is_column_major(&self) -> bool {
        layout::is_column_major(&self.shape, &self.strides, self.dtype.byte_width())
    }

    /// Row-major or column-major, as Arrow C++ `Tensor::is_contiguous` defines it.
    pub fn is_contiguous(&self) -> bool {
        self.is_row_major() || self.is_column_major()
    }

    /// The elements in memory order, for a contiguous tensor whose data is aligned for `T`.
    pub fn values<T: Element>(&self) -> Result<&[T]> {
        self.check_dtype::<T>()?;
        if !self.is_contiguous() {
            return Err(Error::NotContiguous {
                strides: self.strides.clone(),
            });
        }
        let bytes = &self.as_bytes()[..self.dense_byte_len()];
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned {
            alignment: std::mem::align_of::<T>(),
            misalignment: bytes.as_ptr() as usize % std::mem::align_of::<T>(),
        })
    }

    /// The element at a multi-dimensional index (any strides, any alignment).
    pub fn get<T: Element>(&self, index: &[usize]) -> Result<T> {
        self.check_dtype::<T>()?;
        if index.len() != self.ndim() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return Err(Error::IndexOutOfBounds {
                index: index.to_vec(),
                shape: self.shape.clone(),
            });
        }
        let offset: usize = index.iter().zip(&self.strides).map(|(i, s)| i * s).sum();
        let width = self.dtype.byte_width();
        Ok(bytemuck::pod_read_unaligned(
            &self.as_bytes()[offset..offset + width],
        ))
    }

    /// The elements in logical row-major (C) order, whatever the strides.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.check_dtype::<T>()?;
        let bytes = self.to_row_major_bytes()?;
        Ok(bytes
            .chunks_exact(self.dtype.byte_width())
            .map(bytemuck::pod_read_unaligned)
            .collect())
    }

    /// The element bytes in logical row-major (C) order, gathered from any strides.
    ///
    /// [`Error::AllocationFailed`] when the memory cannot be had: a tensor read from a few
    /// bytes may describe petabytes (zero strides broadcast one element), so the size is not
    /// trusted.
    pub fn to_row_major_bytes(&self) -> Result<Vec<u8>> {
        let len = self.dense_byte_len();
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Error::AllocationFailed { bytes: len as u64 })?;
        self.row_major_gather().append_to(&mut out)?;
        Ok(out)
    }

    /// The copy of the elements into row-major order, to run into a destination of the
    /// caller's choice (the writer hands it to a sink for a non-contiguous body).
    pub fn row_major_gather(&self) -> Gather<'_> {
        Gather::new(
            self.as_bytes(),
            &self.shape,
            &self.strides,
            self.dtype.byte_width(),
        )
        .expect("a tensor's layout was checked when it was made")
    }

    /// The same tensor with `'static` data (borrowed data is copied once).
    pub fn into_owned(self) -> Tensor<'static> {
        Tensor {
            dtype: self.dtype,
            shape: self.shape,
            strides: self.strides,
            dim_names: self.dim_names,
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
}

impl Tensor<'static> {
    /// A row-major tensor that takes ownership of a `Vec` (no copy).
    pub fn from_vec<T: Element>(values: Vec<T>, shape: Vec<usize>) -> Result<Self> {
        Self::new(T::DTYPE, Buffer::from_vec(values), shape)
    }

    /// A row-major tensor over a shared [`Buffer`] (no copy).
    pub fn from_buffer(dtype: DType, buffer: Buffer, shape: Vec<usize>) -> Result<Self> {
        Self::new(dtype, buffer, shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn construction_is_zero_copy() {
        let values: Vec<i32> = (0..6).collect();
        let ptr = values.as_ptr() as *const u8;
        let t = Tensor::from_vec(values, vec![2, 3]).unwrap();
        assert_eq!(t.as_bytes().as_ptr(), ptr);
        let slice = [1u16, 2, 3, 4];
        let b = Tensor::from_slice(&slice, vec![4]).unwrap();
        assert_eq!(b.as_bytes().as_ptr(), slice.as_ptr() as *const u8);
    }

    #[test]
    fn layouts_and_typed_access() {
        let t = Tensor::from_vec((0..12).collect::<Vec<i64>>(), vec![3, 4]).unwrap();
        assert!(t.is_row_major() && !t.is_column_major());
        let f = t.clone().into_column_major().unwrap();
        assert!(f.is_column_major() && f.is_contiguous());
        assert_eq!(f.get::<i64>(&[1, 0]).unwrap(), 1);
        assert_eq!(f.get::<i64>(&[0, 1]).unwrap(), 3);
        assert_eq!(f.to_vec::<i64>().unwrap()[..4], [0, 3, 6, 9]);
        // Every other column: strides (32, 16) over a 3x2 view.
        let s = Tensor::with_layout(
            DType::Int64,
            t.data().clone(),
            vec![3, 2],
            vec![32, 16],
            vec![],
        )
        .unwrap();
        assert!(!s.is_contiguous());
        assert_eq!(s.to_vec::<i64>().unwrap(), [0, 2, 4, 6, 8, 10]);
        assert!(matches!(
            s.values::<i64>(),
            Err(Error::NotContiguous { .. })
        ));
        assert!(matches!(
            t.values::<f64>(),
            Err(Error::DTypeMismatch { .. })
        ));
        assert!(matches!(
            t.get::<i64>(&[3, 0]),
            Err(Error::IndexOutOfBounds { .. })
        ));
    }

    #[test]
    fn half_floats() {
        let v: Vec<f16> = [0.5f32, -1.0, 2.0]
            .iter()
            .map(|&x| f16::from_f32(x))
            .collect();
        let t = Tensor::from_vec(v.clone(), vec![3]).unwrap();
        assert_eq!(t.dtype(), DType::Float16);
        assert_eq!(t.values::<f16>().unwrap(), v.as_slice());
    }

    #[test]
    fn invalid_layouts_are_errors() {
        let t = || Tensor::from_vec(vec![0u8; 6], vec![2, 3]).unwrap();
        assert!(matches!(
            Tensor::from_vec(vec![0u8; 5], vec![2, 3]),
            Err(Error::StridesOverrun { .. })
        ));
        assert!(matches!(
            t().with_strides(vec![3]),
            Err(Error::StridesLengthMismatch { .. })
        ));
        assert!(matches!(
            t().with_strides(vec![4, 1]),
            Err(Error::StridesOverrun { .. })
        ));
        assert!(matches!(
            t().with_dim_names(["x"]),
            Err(Error::DimNamesMismatch { names: 1, ndim: 2 })
        ));
        let named = t().with_dim_names(["r", "c"]).unwrap();
        assert_eq!(named.dim_name(1), "c");
    }

    #[test]
    fn misaligned_data_is_copied_or_refused() {
        let buffer = Buffer::from_vec((0..16u32).collect::<Vec<_>>());
        let odd = TensorData::Shared(buffer.slice_with_length(1, 8));
        assert!(matches!(
            odd.clone().aligned(4, true),
            Err(Error::Misaligned {
                alignment: 4,
                misalignment: 1
            })
        ));
        let fixed = odd.clone().aligned(4, false).unwrap();
        assert_eq!(fixed.as_bytes(), odd.as_bytes());
        assert_eq!(fixed.as_bytes().as_ptr() as usize % 64, 0);
    }
}
