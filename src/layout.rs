//! Shapes and byte strides: Arrow's row- and column-major rules, bounds checks, and the
//! gather that copies a strided tensor into row-major order.
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

/// Copies the elements of a strided tensor into `dst` in row-major order.
///
/// `dst` must be exactly `element_count(shape) * byte_width` bytes. Axes whose strides make the
/// innermost elements adjacent are merged, so each copy moves the longest contiguous run the
/// layout allows, not one element. The caller has checked the strides against `src`.
pub fn gather_row_major(
    src: &[u8],
    shape: &[usize],
    strides: &[usize],
    byte_width: usize,
    dst: &mut [u8],
) {
    if dst.is_empty() {
        return;
    }
    // Merge trailing axes that are contiguous in the source into one run.
    let mut run = byte_width;
    let mut outer = shape.len();
    while outer > 0 && (shape[outer - 1] == 1 || strides[outer - 1] == run) {
        run *= shape[outer - 1];
        outer -= 1;
    }
    // Drop size-1 axes from the outer loop nest and merge outer axes that nest exactly.
    let mut dims: Vec<(usize, usize)> = Vec::with_capacity(outer);
    for i in 0..outer {
        if shape[i] == 1 {
            continue;
        }
        if let Some(last) = dims.last_mut()
            && last.1 == strides[i] * shape[i]
        {
            last.0 *= shape[i];
            last.1 = strides[i];
            continue;
        }
        dims.push((shape[i], strides[i]));
    }
    debug_assert_eq!(dst.len() % run, 0);
    match dims.as_slice() {
        [] => dst.copy_from_slice(&src[..run]),
        [(n, s)] => copy_runs_1d(src, 0, *n, *s, run, dst),
        _ => {
            // The two innermost merged axes form a plane of `rows x cols` runs; the axes
            // around it are walked with an odometer.
            let (rows, row_stride) = dims[dims.len() - 2];
            let (cols, col_stride) = dims[dims.len() - 1];
            let outer_dims = &dims[..dims.len() - 2];
            let mut index = vec![0usize; outer_dims.len()];
            let mut base = 0usize;
            let plane = Plane {
                rows,
                row_stride,
                cols,
                col_stride,
                run,
            };
            for out in dst.chunks_exact_mut(rows * cols * run) {
                plane.copy(src, base, out);
                for k in (0..outer_dims.len()).rev() {
                    index[k] += 1;
                    base += outer_dims[k].1;
                    if index[k] < outer_dims[k].0 {
                        break;
                    }
                    base -= outer_dims[k].1 * outer_dims[k].0;
                    index[k] = 0;
                }
            }
        }
    }
}

/// Two axes of a strided view: `rows x cols` runs of `run` bytes, copied into a row-major
/// destination.
struct Plane {
    rows: usize,
    row_stride: usize,
    cols: usize,
    col_stride: usize,
    run: usize,
}

impl Plane {
    /// Copies the plane whose first run is at `src[base..]` into `dst`.
    fn copy(&self, src: &[u8], base: usize, dst: &mut [u8]) {
        let row_bytes = self.cols * self.run;
        if self.col_stride <= self.row_stride {
            // Runs along a destination row are near each other in the source: row by row.
            for (r, out) in dst.chunks_exact_mut(row_bytes).enumerate() {
                let row = base + r * self.row_stride;
                copy_runs_1d(src, row, self.cols, self.col_stride, self.run, out);
            }
            return;
        }
        // A transpose-like view: the runs of one destination row lie far apart in the source
        // (often a multiple of the page size apart, so they collide in the same cache sets),
        // while one column's runs are close. Copy in tiles of a few columns by a page worth of
        // rows: within a tile each destination row gets a short contiguous segment, read from
        // a few source streams that advance sequentially from row to row, so both sides stay
        // in cache and the prefetcher follows the streams.
        match self.run {
            4 => self.copy_tiled::<4>(src, base, dst),
            8 => self.copy_tiled::<8>(src, base, dst),
            16 => self.copy_tiled::<16>(src, base, dst),
            32 => self.copy_tiled::<32>(src, base, dst),
            64 => self.copy_tiled::<64>(src, base, dst),
            _ => self.copy_tiled_dyn(src, base, dst),
        }
    }

    /// Tile size: rows spanning about a page of the source per column, and at least 8
    /// columns (source streams) or a cache line of runs.
    fn tile(&self) -> (usize, usize) {
        ((4096 / self.run).max(1), (64 / self.run).max(8))
    }

    fn copy_tiled<const RUN: usize>(&self, src: &[u8], base: usize, dst: &mut [u8]) {
        let (tile_rows, tile_cols) = self.tile();
        let row_bytes = self.cols * RUN;
        for r0 in (0..self.rows).step_by(tile_rows) {
            let r1 = (r0 + tile_rows).min(self.rows);
            for c0 in (0..self.cols).step_by(tile_cols) {
                let c1 = (c0 + tile_cols).min(self.cols);
                for r in r0..r1 {
                    let row = base + r * self.row_stride;
                    let out = &mut dst[r * row_bytes + c0 * RUN..r * row_bytes + c1 * RUN];
                    for (c, to) in (c0..c1).zip(out.chunks_exact_mut(RUN)) {
                        let at = row + c * self.col_stride;
                        let run: &[u8; RUN] = src[at..at + RUN].try_into().expect("run length");
                        to.copy_from_slice(run);
                    }
                }
            }
        }
    }

    fn copy_tiled_dyn(&self, src: &[u8], base: usize, dst: &mut [u8]) {
        let (tile_rows, tile_cols) = self.tile();
        let run = self.run;
        let row_bytes = self.cols * run;
        for r0 in (0..self.rows).step_by(tile_rows) {
            let r1 = (r0 + tile_rows).min(self.rows);
            for c0 in (0..self.cols).step_by(tile_cols) {
                for c in c0..(c0 + tile_cols).min(self.cols) {
                    let column = base + c * self.col_stride;
                    for r in r0..r1 {
                        let at = column + r * self.row_stride;
                        let to = r * row_bytes + c * run;
                        dst[to..to + run].copy_from_slice(&src[at..at + run]);
                    }
                }
            }
        }
    }
}

/// Copies `n` runs of `run` bytes, `stride` bytes apart starting at `base`, into `dst`.
#[inline]
fn copy_runs_1d(src: &[u8], base: usize, n: usize, stride: usize, run: usize, dst: &mut [u8]) {
    match run {
        1 => copy_fixed::<1>(src, base, n, stride, dst),
        2 => copy_fixed::<2>(src, base, n, stride, dst),
        4 => copy_fixed::<4>(src, base, n, stride, dst),
        8 => copy_fixed::<8>(src, base, n, stride, dst),
        16 => copy_fixed::<16>(src, base, n, stride, dst),
        32 => copy_fixed::<32>(src, base, n, stride, dst),
        64 => copy_fixed::<64>(src, base, n, stride, dst),
        _ => {
            for (j, out) in dst.chunks_exact_mut(run).enumerate() {
                let at = base + j * stride;
                out.copy_from_slice(&src[at..at + run]);
            }
        }
    }
}

/// [`copy_runs_1d`] for a run length known at compile time, so each copy is a few moves.
#[inline(always)]
fn copy_fixed<const RUN: usize>(src: &[u8], base: usize, n: usize, stride: usize, dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), n * RUN);
    for (j, out) in dst.chunks_exact_mut(RUN).enumerate() {
        let at = base + j * stride;
        let run: &[u8; RUN] = src[at..at + RUN].try_into().expect("run length");
        out.copy_from_slice(run);
    }
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

    fn gather_naive(src: &[u8], shape: &[usize], strides: &[usize], w: usize) -> Vec<u8> {
        let n = element_count(shape).unwrap();
        let mut out = Vec::with_capacity(n * w);
        for flat in 0..n {
            let mut rem = flat;
            let mut off = 0;
            for i in (0..shape.len()).rev() {
                off += (rem % shape[i]) * strides[i];
                rem /= shape[i];
            }
            out.extend_from_slice(&src[off..off + w]);
        }
        out
    }

    #[test]
    fn gather_matches_element_walk() {
        let src: Vec<u8> = (0..=250u8).cycle().take(200_000).collect();
        let cases: &[(&[usize], &[usize], usize)] = &[
            (&[4, 6], &[8, 48], 8),        // transpose
            (&[4, 3], &[96, 16], 8),       // every other column
            (&[3, 2, 4], &[16, 96, 2], 2), // transpose (1, 0, 2)
            (&[2, 3], &[64, 4], 4),        // padded rows
            (&[5], &[12], 4),              // 1-d strided
            (&[2, 1, 3], &[24, 7, 8], 8),  // size-1 axis with odd stride
            (&[4, 2, 2, 16], &[8, 1024, 512, 64], 4),
            (&[3, 4, 5], &[160, 40, 8], 8),    // contiguous
            (&[], &[], 8),                     // 0-d
            (&[40, 4, 16], &[64, 2560, 4], 4), // (4, 40, 16) transposed (1, 0, 2): tiled
            (&[3, 50, 7], &[56, 168, 8], 8),   // 3-d with a transposed inner plane
            (&[2, 300, 3], &[3, 600, 1], 1),   // 3-byte runs, tiled by the generic path
            (&[10, 2000], &[1, 10], 1),        // 2-d byte transpose
        ];
        for &(shape, strides, w) in cases {
            check_strides_in_bounds(shape, strides, w, src.len()).unwrap();
            let want = gather_naive(&src, shape, strides, w);
            let mut got = vec![0u8; want.len()];
            gather_row_major(&src, shape, strides, w, &mut got);
            assert_eq!(got, want, "shape {shape:?} strides {strides:?}");
        }
    }
}
