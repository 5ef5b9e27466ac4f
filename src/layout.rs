//! Shapes and byte strides: Arrow's row- and column-major rules and bounds checks (the copy of
//! a strided tensor into row-major order lives in [`gather`](crate::gather)).
//!
//! All arithmetic on sizes is checked: shapes and strides may come from hostile input.

use crate::error::{Error, Result};

/// The number of elements of a shape (1 for a 0-d tensor), or an overflow error.
pub fn element_count(shape: &[usize]) -> Result<usize> {
    // An empty axis makes the tensor empty however large the other axes are.
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(Error::Overflow {
            what: "the element count",
        })
}

/// The number of bytes of a densely packed tensor of this shape.
pub fn dense_byte_len(shape: &[usize], byte_width: usize) -> Result<usize> {
    element_count(shape)?
        .checked_mul(byte_width)
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or(Error::Overflow {
            what: "the tensor byte size",
        })
}

/// Checks that there are no dimension names, or one per dimension.
pub fn check_dim_names(names: usize, ndim: usize) -> Result<()> {
    if names != 0 && names != ndim {
        return Err(Error::DimNamesMismatch { names, ndim });
    }
    Ok(())
}

/// Row-major (C order) byte strides exactly as Arrow C++ `ComputeRowMajorStrides` gives them.
///
/// Arrow's rule for empty tensors: if any axis is zero, every stride is the element width.
pub fn row_major_strides(shape: &[usize], byte_width: usize) -> Result<Vec<usize>> {
    packed_strides(
        shape,
        byte_width,
        (0..shape.len()).rev(),
        "the row-major strides",
    )
}

/// Column-major (Fortran order) byte strides exactly as Arrow C++ `ComputeColumnMajorStrides`.
pub fn column_major_strides(shape: &[usize], byte_width: usize) -> Result<Vec<usize>> {
    packed_strides(
        shape,
        byte_width,
        0..shape.len(),
        "the column-major strides",
    )
}

/// Densely packed strides, the axes visited from the fastest-varying one (`axes`), with
/// Arrow's rule for empty tensors.
fn packed_strides(
    shape: &[usize],
    byte_width: usize,
    axes: impl Iterator<Item = usize>,
    what: &'static str,
) -> Result<Vec<usize>> {
    if shape.contains(&0) {
        return Ok(vec![byte_width; shape.len()]);
    }
    let mut strides = vec![0usize; shape.len()];
    let mut acc = byte_width;
    for axis in axes {
        strides[axis] = acc;
        acc = acc
            .checked_mul(shape[axis])
            .filter(|&n| i64::try_from(n).is_ok())
            .ok_or(Error::Overflow { what })?;
    }
    Ok(strides)
}

/// Whether `strides` are exactly Arrow's row-major strides for `shape`.
pub fn is_row_major(shape: &[usize], strides: &[usize], byte_width: usize) -> bool {
    row_major_strides(shape, byte_width).is_ok_and(|s| s == strides)
}

/// Whether `strides` are exactly Arrow's column-major strides for `shape`.
pub fn is_column_major(shape: &[usize], strides: &[usize], byte_width: usize) -> bool {
    column_major_strides(shape, byte_width).is_ok_and(|s| s == strides)
}

/// Whether a layout is contiguous as NumPy defines it, in C order (or, with `fortran`,
/// Fortran order): Arrow's row- (column-) major strides, except that the strides of size-1
/// axes do not matter and an empty tensor is both. The first `dense_byte_len` bytes of such a
/// tensor are its elements in that order.
pub fn is_numpy_contiguous(
    shape: &[usize],
    strides: &[usize],
    byte_width: usize,
    fortran: bool,
) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = byte_width;
    let mut matches = |axis: usize| {
        if shape[axis] == 1 {
            return true;
        }
        let ok = strides.get(axis) == Some(&expected);
        expected = expected.saturating_mul(shape[axis]);
        ok
    };
    if fortran {
        (0..shape.len()).all(&mut matches)
    } else {
        (0..shape.len()).rev().all(&mut matches)
    }
}

/// Checks that a strided tensor stays inside `data_len` bytes, as Arrow C++
/// `CheckTensorStridesValidity` does (the check is skipped for an empty buffer of an empty
/// tensor).
pub fn check_strides_in_bounds(
    shape: &[usize],
    strides: &[usize],
    byte_width: usize,
    data_len: usize,
) -> Result<()> {
    if strides.len() != shape.len() {
        return Err(Error::StridesLengthMismatch {
            shape_len: shape.len(),
            strides_len: strides.len(),
        });
    }
    if data_len == 0 && shape.contains(&0) {
        return Ok(());
    }
    let mut largest: u128 = 0;
    for (&d, &s) in shape.iter().zip(strides) {
        if d == 0 {
            continue;
        }
        largest += (d as u128 - 1) * s as u128;
        if largest > i64::MAX as u128 {
            return Err(Error::Overflow {
                what: "the offset computed from shape and strides",
            });
        }
    }
    let required = largest + byte_width as u128;
    if required > data_len as u128 {
        return Err(Error::StridesOverrun {
            required,
            available: data_len as u64,
        });
    }
    Ok(())
}

/// Copies the elements of a strided tensor into `dst` in row-major order (see
/// [`Gather`](crate::gather::Gather), which this wraps, for how).
///
/// # Panics
/// If the strides reach outside `src` (the caller has checked them with
/// [`check_strides_in_bounds`]) or `dst` is not exactly `element_count(shape) * byte_width`
/// bytes.
pub fn gather_row_major(
    src: &[u8],
    shape: &[usize],
    strides: &[usize],
    byte_width: usize,
    dst: &mut [u8],
) {
    crate::gather::Gather::new(src, shape, strides, byte_width)
        .and_then(|gather| gather.write_to(dst))
        .expect("gather_row_major: strides checked against src, dst of the dense length");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_contiguity_ignores_size_one_axes() {
        // (2, 1, 3) float32: the size-1 axis may have any stride.
        assert!(is_numpy_contiguous(&[2, 1, 3], &[12, 999, 4], 4, false));
        assert!(!is_numpy_contiguous(&[2, 1, 3], &[12, 999, 4], 4, true));
        assert!(is_numpy_contiguous(&[2, 3], &[4, 8], 4, true));
        assert!(!is_numpy_contiguous(&[2, 3], &[4, 8], 4, false));
        // A transposed view is neither; an empty tensor is both; a 1-d run is both.
        assert!(!is_numpy_contiguous(&[3, 2], &[4, 12], 4, false));
        assert!(is_numpy_contiguous(&[0, 5], &[1, 1], 4, false));
        assert!(is_numpy_contiguous(&[0, 5], &[1, 1], 4, true));
        assert!(
            is_numpy_contiguous(&[7], &[2], 2, true) && is_numpy_contiguous(&[7], &[2], 2, false)
        );
        // Strides of the wrong rank never match.
        assert!(!is_numpy_contiguous(&[2, 3], &[12], 4, false));
    }

    #[test]
    fn arrow_row_and_column_major_rules() {
        assert_eq!(row_major_strides(&[2, 3], 4).unwrap(), [12, 4]);
        assert_eq!(column_major_strides(&[3, 4], 4).unwrap(), [4, 12]);
        assert_eq!(row_major_strides(&[], 8).unwrap(), Vec::<usize>::new());
        // Arrow: any zero-size axis gives [w; ndim].
        assert_eq!(row_major_strides(&[0, 3], 4).unwrap(), [4, 4]);
        assert_eq!(column_major_strides(&[2, 0, 3], 4).unwrap(), [4, 4, 4]);
        assert_eq!(column_major_strides(&[2, 3, 4], 8).unwrap(), [8, 16, 48]);
        assert!(row_major_strides(&[usize::MAX, 2], 8).is_err());
    }

    #[test]
    fn bounds_check_matches_arrow() {
        check_strides_in_bounds(&[2, 3], &[12, 4], 4, 24).unwrap();
        assert!(matches!(
            check_strides_in_bounds(&[2, 3], &[12, 4], 4, 23),
            Err(Error::StridesOverrun { required: 24, .. })
        ));
        // Empty tensor over an empty buffer: skipped.
        check_strides_in_bounds(&[0, 3], &[4, 4], 4, 0).unwrap();
        // 0-d needs one element.
        assert!(check_strides_in_bounds(&[], &[], 8, 0).is_err());
        assert!(matches!(
            check_strides_in_bounds(&[2], &[4, 4], 4, 8),
            Err(Error::StridesLengthMismatch { .. })
        ));
        assert!(matches!(
            check_strides_in_bounds(&[3, 2], &[usize::MAX / 2, 1], 1, 8),
            Err(Error::Overflow { .. })
        ));
    }
}
