//! The gather: the copy of a strided tensor's elements into row-major order, which the writer
//! makes of a non-contiguous body. A [`Gather`] describes one; sinks receive it through
//! [`TensorSink::write_gather`](crate::TensorSink::write_gather) and write it where their
//! medium wants it (into a reserved region, a `Vec`'s spare capacity, a file through a small
//! staging buffer: see [`Gather::chunks`]).
//!
//! # How it copies
//! Trailing axes that are contiguous in the source merge into *runs* (the longest byte ranges
//! the layout allows), outer axes that nest exactly merge too, and the two innermost remaining
//! axes form a *plane* of `rows x cols` runs, copied for every index of the axes around it:
//!
//! * row by row, when the runs of a destination row are near each other in the source;
//! * in tiles of a few source streams by a page of rows, when they are far apart (a transpose
//!   of runs, such as `(64, N, 16)` -> `(N, 64, 16)`);
//! * as a blocked transpose, when the runs are single elements of 1, 2, 4 or 8 bytes and a
//!   destination column is contiguous in the source (a 2-D transpose): blocks of up to 256
//!   destination cache lines are transposed in a cache-resident buffer (SSE2 on x86-64) and
//!   written out a whole line at a time (two lines of each row at a time for bytes), in
//!   bands of destination rows that keep the pages written within the TLB.
//!
//! Destinations of at least [`STREAMING_MIN_LEN`] bytes are written with streaming
//! (non-temporal) stores on x86-64 wherever whole, aligned 16-byte pieces are written in
//! sequence (runs that are multiples of 16 bytes, the transpose's lines): the destination is
//! then not read before it is overwritten, so the copy costs two passes over memory, as a
//! `memcpy` does, instead of three. Everything else uses normal stores, with the same bytes.
//! Every path writes every destination byte exactly once; the property tests compare each one
//! with an element-by-element walk.

mod plane;
mod store;

use std::fmt;
use std::mem::MaybeUninit;

use crate::error::{Error, Result};
use crate::layout;
use plane::Plane;
use store::{Out, Stores};

/// Destinations at least this large are written with streaming stores where the layout
/// allows (smaller ones are likely to be read again soon, from the cache).
pub const STREAMING_MIN_LEN: usize = 4 << 20;

/// The copy of a strided view of bytes into row-major order: `shape` elements of
/// `byte_width` bytes, element `(i, j, ...)` at `i * strides[0] + j * strides[1] + ...` in the
/// source, written densely in row-major order.
///
/// ```
/// use tensor_ipc::gather::Gather;
///
/// // A 2x3 matrix of bytes, transposed: a 3x2 view with strides [1, 3].
/// let src = [1u8, 2, 3, 4, 5, 6];
/// let gather = Gather::new(&src, &[3, 2], &[1, 3], 1)?;
/// let mut out = Vec::new();
/// gather.append_to(&mut out)?;
/// assert_eq!(out, [1, 4, 2, 5, 3, 6]);
/// # Ok::<(), tensor_ipc::Error>(())
/// ```
#[derive(Clone)]
pub struct Gather<'a> {
    src: &'a [u8],
    shape: Vec<usize>,
    strides: Vec<usize>,
    byte_width: usize,
    len: usize,
}

impl fmt::Debug for Gather<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("shape", &self.shape)
            .field("strides", &self.strides)
            .field("byte_width", &self.byte_width)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Test and benchmark knobs: which stores and kernels a gather may use. The default is what
/// the writer uses.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatherOptions {
    /// Normal or streaming stores.
    pub stores: StoreChoice,
    /// SIMD or portable transpose kernels.
    pub kernels: KernelChoice,
}

/// Which stores a gather uses (see [`GatherOptions`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreChoice {
    /// Streaming stores for destinations of at least [`STREAMING_MIN_LEN`] bytes.
    #[default]
    Auto,
    /// Normal stores only.
    Normal,
    /// Streaming stores wherever the layout allows them, whatever the size.
    Streaming,
}

/// Which transpose kernels a gather uses (see [`GatherOptions`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelChoice {
    /// SSE2 on x86-64, the portable loop elsewhere.
    #[default]
    Auto,
    /// The portable loop everywhere.
    Portable,
}

/// The way a gather copies (see the [module documentation](self)).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherPath {
    /// Nothing to copy.
    Empty,
    /// The elements form one contiguous run.
    OneRun,
    /// One axis of runs.
    Runs,
    /// Planes copied row by row.
    PlaneRows,
    /// Planes copied in tiles of runs.
    PlaneTiles,
    /// Planes copied as blocked transposes of single elements.
    PlaneTranspose,
}

impl<'a> Gather<'a> {
    /// The gather of the view `shape` / `strides` (bytes) of `byte_width`-byte elements over
    /// `src`, checked as a tensor's layout is: [`Error::StridesOverrun`] if an element lies
    /// outside `src`, [`Error::Overflow`] if the sizes overflow.
    pub fn new(
        src: &'a [u8],
        shape: &[usize],
        strides: &[usize],
        byte_width: usize,
    ) -> Result<Self> {
        layout::check_strides_in_bounds(shape, strides, byte_width, src.len())?;
        let len = layout::dense_byte_len(shape, byte_width)?;
        Ok(Gather {
            src,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            byte_width,
            len,
        })
    }

    /// Bytes the gather writes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the elements into `dst`, which must be exactly [`len`](Self::len) bytes
    /// ([`Error::DataLength`] otherwise).
    pub fn write_to(&self, dst: &mut [u8]) -> Result<()> {
        self.check_len(dst.len())?;
        self.fill(Out::new(dst), GatherOptions::default());
        Ok(())
    }

    /// Writes the elements into possibly uninitialised memory (such as a `Vec`'s spare
    /// capacity) of exactly [`len`](Self::len) bytes, and returns it initialised.
    pub fn write_to_uninit<'d>(&self, dst: &'d mut [MaybeUninit<u8>]) -> Result<&'d mut [u8]> {
        self.check_len(dst.len())?;
        Ok(store::fill_uninit(self, dst))
    }

    /// Appends the elements to `vec`, writing its spare capacity directly (no zero-filling
    /// first). [`Error::AllocationFailed`] if the vector cannot grow.
    pub fn append_to(&self, vec: &mut Vec<u8>) -> Result<()> {
        vec.try_reserve(self.len)
            .map_err(|_| Error::AllocationFailed {
                bytes: self.len as u64,
            })?;
        store::append(self, vec);
        Ok(())
    }

    /// The gather cut into pieces of at most `max_bytes` each (or one element, if larger),
    /// in order: their outputs, one after another, are this gather's. A sink that writes
    /// through a small staging buffer gathers one piece at a time into it.
    pub fn chunks(&self, max_bytes: usize) -> GatherChunks<'_, 'a> {
        GatherChunks::new(self, max_bytes)
    }

    /// [`write_to`](Self::write_to) with explicit stores and kernels, for tests and
    /// benchmarks.
    #[doc(hidden)]
    pub fn write_to_with(&self, dst: &mut [u8], options: GatherOptions) -> Result<()> {
        self.check_len(dst.len())?;
        self.fill(Out::new(dst), options);
        Ok(())
    }

    /// The way this gather copies, for tests.
    #[doc(hidden)]
    pub fn path(&self) -> GatherPath {
        if self.len == 0 {
            return GatherPath::Empty;
        }
        let plan = Plan::new(self);
        match plan.dims.as_slice() {
            [] => GatherPath::OneRun,
            [_] => GatherPath::Runs,
            _ => plan.plane().path(),
        }
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len != self.len {
            return Err(Error::SinkState(
                "the gather's destination is not exactly its length",
            ));
        }
        Ok(())
    }

    /// Writes every byte of `out` (exactly `len` bytes).
    fn fill(&self, out: Out<'_>, options: GatherOptions) {
        assert_eq!(out.len(), self.len, "gather destination of the wrong size");
        if self.len == 0 {
            return;
        }
        let stores = match options.stores {
            StoreChoice::Auto if self.len >= STREAMING_MIN_LEN => Stores::Streaming,
            StoreChoice::Streaming => Stores::Streaming,
            _ => Stores::Normal,
        };
        let plan = Plan::new(self);
        let run = plan.run;
        let run_stores = if run.is_multiple_of(16) {
            stores
        } else {
            Stores::Normal
        };
        let mut out = out;
        match plan.dims.as_slice() {
            [] => out.copy_from(0, &self.src[..run], Stores::Normal),
            &[(n, stride)] => plane::copy_runs(self.src, 0, n, stride, run, out, run_stores),
            dims => {
                let plane = plan.plane();
                let outer = &dims[..dims.len() - 2];
                let mut index = vec![0usize; outer.len()];
                let mut base = 0usize;
                // The transpose's scratch blocks for all the planes, made only if used.
                let mut scratch = Vec::new();
                for plane_out in out.chunks_exact(plane.rows * plane.cols * run) {
                    plane.copy(
                        self.src,
                        base,
                        plane_out,
                        stores,
                        options.kernels,
                        &mut scratch,
                    );
                    for k in (0..outer.len()).rev() {
                        index[k] += 1;
                        base += outer[k].1;
                        if index[k] < outer[k].0 {
                            break;
                        }
                        base -= outer[k].1 * outer[k].0;
                        index[k] = 0;
                    }
                }
            }
        }
        store::fence(stores);
    }
}

/// A gather with its axes simplified: runs of `run` contiguous source bytes, and the outer
/// axes (size, byte stride) that remain, size-1 axes dropped and exactly nesting ones merged.
struct Plan {
    run: usize,
    dims: Vec<(usize, usize)>,
}

impl Plan {
    fn new(gather: &Gather<'_>) -> Self {
        let (shape, strides) = (&gather.shape, &gather.strides);
        // Merge trailing axes that are contiguous in the source into one run.
        let mut run = gather.byte_width;
        let mut outer = shape.len();
        while outer > 0 && (shape[outer - 1] == 1 || strides[outer - 1] == run) {
            run *= shape[outer - 1];
            outer -= 1;
        }
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
        Plan { run, dims }
    }

    /// The two innermost axes (there must be at least two).
    fn plane(&self) -> Plane {
        let n = self.dims.len();
        let (rows, row_stride) = self.dims[n - 2];
        let (cols, col_stride) = self.dims[n - 1];
        Plane {
            rows,
            row_stride,
            cols,
            col_stride,
            run: self.run,
        }
    }
}

/// The iterator of [`Gather::chunks`]: sub-views along one axis (`axis`), `per` indices of it
/// at a time, for every index of the axes before it.
#[derive(Debug)]
pub struct GatherChunks<'g, 'a> {
    gather: &'g Gather<'a>,
    /// The axis cut into pieces; `None` when the whole gather is one piece.
    axis: Option<usize>,
    per: usize,
    /// The index of the axes before `axis`, and the next index along it.
    outer: Vec<usize>,
    at: usize,
    done: bool,
}

impl<'g, 'a> GatherChunks<'g, 'a> {
    fn new(gather: &'g Gather<'a>, max_bytes: usize) -> Self {
        let ndim = gather.shape.len();
        let mut chunks = GatherChunks {
            gather,
            axis: None,
            per: 1,
            outer: Vec::new(),
            at: 0,
            done: gather.is_empty(),
        };
        if gather.len <= max_bytes || ndim == 0 {
            return chunks;
        }
        // The outermost axis one index of which (the axes after it) fits in `max_bytes`, or
        // the last axis.
        let mut axis = ndim - 1;
        let mut block = gather.byte_width;
        while axis > 0 && block * gather.shape[axis] <= max_bytes {
            block *= gather.shape[axis];
            axis -= 1;
        }
        chunks.axis = Some(axis);
        chunks.per = (max_bytes / block.max(1)).clamp(1, gather.shape[axis]);
        chunks.outer = vec![0; axis];
        chunks
    }
}

impl<'a> Iterator for GatherChunks<'_, 'a> {
    type Item = Gather<'a>;

    fn next(&mut self) -> Option<Gather<'a>> {
        if self.done {
            return None;
        }
        let g = self.gather;
        let Some(axis) = self.axis else {
            self.done = true;
            return Some(g.clone());
        };
        let n = self.per.min(g.shape[axis] - self.at);
        let base: usize = self
            .outer
            .iter()
            .zip(&g.strides)
            .map(|(i, s)| i * s)
            .sum::<usize>()
            + self.at * g.strides[axis];
        let mut shape = Vec::with_capacity(g.shape.len() - axis);
        shape.push(n);
        shape.extend_from_slice(&g.shape[axis + 1..]);
        let strides = g.strides[axis..].to_vec();
        let len = n * g.shape[axis + 1..].iter().product::<usize>() * g.byte_width;
        // Advance: along the axis, then the odometer of the axes before it.
        self.at += n;
        if self.at == g.shape[axis] {
            self.at = 0;
            self.done = true;
            for k in (0..axis).rev() {
                self.outer[k] += 1;
                if self.outer[k] < g.shape[k] {
                    self.done = false;
                    break;
                }
                self.outer[k] = 0;
            }
        }
        // In bounds: every element of the piece is an element of the checked whole.
        Some(Gather {
            src: &g.src[base..],
            shape,
            strides,
            byte_width: g.byte_width,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather_naive(src: &[u8], shape: &[usize], strides: &[usize], w: usize) -> Vec<u8> {
        let n = layout::element_count(shape).unwrap();
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

    const ALL_OPTIONS: [GatherOptions; 4] = [
        GatherOptions {
            stores: StoreChoice::Auto,
            kernels: KernelChoice::Auto,
        },
        GatherOptions {
            stores: StoreChoice::Normal,
            kernels: KernelChoice::Portable,
        },
        GatherOptions {
            stores: StoreChoice::Streaming,
            kernels: KernelChoice::Auto,
        },
        GatherOptions {
            stores: StoreChoice::Streaming,
            kernels: KernelChoice::Portable,
        },
    ];

    #[test]
    fn every_path_matches_the_element_walk() {
        let src: Vec<u8> = (0..=250u8).cycle().take(300_000).collect();
        let cases: &[(&[usize], &[usize], usize, GatherPath)] = &[
            (&[4, 6], &[8, 48], 8, GatherPath::PlaneTiles), // transpose, too narrow to block
            (&[4, 3], &[96, 16], 8, GatherPath::PlaneRows), // every other column
            (&[3, 2, 4], &[16, 96, 2], 2, GatherPath::PlaneTiles),
            (&[2, 3], &[64, 4], 4, GatherPath::Runs), // padded rows
            (&[5], &[12], 4, GatherPath::Runs),
            (&[2, 1, 3], &[24, 7, 8], 8, GatherPath::OneRun),
            (
                &[4, 2, 2, 16],
                &[8, 1024, 512, 64],
                4,
                GatherPath::PlaneRows,
            ),
            (&[3, 4, 5], &[160, 40, 8], 8, GatherPath::OneRun),
            (&[], &[], 8, GatherPath::OneRun),
            (&[0, 3], &[4, 4], 4, GatherPath::Empty),
            (&[40, 4, 16], &[64, 2560, 4], 4, GatherPath::PlaneTiles),
            (&[3, 50, 7], &[56, 168, 8], 8, GatherPath::PlaneTiles),
            (&[2, 300, 3], &[3, 600, 1], 1, GatherPath::PlaneTiles),
            (&[10, 2000], &[1, 10], 1, GatherPath::PlaneTiles), // too few rows to block
            (&[6, 4, 5], &[20, 1, 4], 1, GatherPath::PlaneTiles),
            (&[3, 40, 2], &[9_000, 200, 64], 16, GatherPath::PlaneRows), // 16-byte runs
            // 2-D transposes of 1/2/4/8-byte elements, with ragged edges, inside 3-D views.
            (
                &[2, 100, 70],
                &[140_000, 1, 100],
                1,
                GatherPath::PlaneTranspose,
            ),
            (&[2, 33, 40], &[5_000, 2, 70], 2, GatherPath::PlaneTranspose),
            (
                &[3, 130, 35],
                &[30_000, 4, 600],
                4,
                GatherPath::PlaneTranspose,
            ),
            (&[1, 64, 16], &[1, 4, 256], 4, GatherPath::PlaneTranspose),
            (&[70, 9], &[8, 600], 8, GatherPath::PlaneTranspose),
            (
                &[2, 70, 9],
                &[60_000, 8, 600],
                8,
                GatherPath::PlaneTranspose,
            ),
        ];
        for &(shape, strides, w, path) in cases {
            let want = gather_naive(&src, shape, strides, w);
            let gather = Gather::new(&src, shape, strides, w).unwrap();
            assert_eq!(gather.path(), path, "shape {shape:?} strides {strides:?}");
            assert_eq!(gather.len(), want.len());
            for options in ALL_OPTIONS {
                for stale in [0x00, 0xFF] {
                    let mut got = vec![stale; want.len()];
                    gather.write_to_with(&mut got, options).unwrap();
                    assert_eq!(got, want, "{shape:?} {strides:?} {options:?}");
                }
            }
            let mut appended = vec![7u8];
            gather.append_to(&mut appended).unwrap();
            assert_eq!(appended[1..], want[..]);
            for max in [1, 7, 64, 1000, usize::MAX] {
                let mut pieces = Vec::new();
                for piece in gather.chunks(max) {
                    assert!(
                        piece.len() <= max.max(w),
                        "piece of {} > {max}",
                        piece.len()
                    );
                    piece.append_to(&mut pieces).unwrap();
                }
                assert_eq!(pieces, want, "{shape:?} {strides:?} in pieces of {max}");
            }
        }
    }

    /// A transpose of `rows x cols` elements of `W` bytes, element `(r, c)` at `r * W + c *
    /// col_stride`, large enough to be cut into two bands of rows (with rows and columns
    /// left over at the edges), equals the element-by-element transpose.
    fn check_banded_transpose<const W: usize>(rows: usize, cols: usize) {
        let col_stride = rows * W + 24;
        let src: Vec<u8> = (0..=250u8).cycle().take(cols * col_stride).collect();
        let block_rows = plane::transpose_block_rows(W);
        let band_rows = plane::transpose_band_rows(cols * W, block_rows);
        assert!(
            rows / block_rows * block_rows > band_rows,
            "{rows} rows make one band"
        );
        let gather = Gather::new(&src, &[rows, cols], &[W, col_stride], W).unwrap();
        assert_eq!(gather.path(), GatherPath::PlaneTranspose);
        let mut want = Vec::with_capacity(rows * cols * W);
        for r in 0..rows {
            for c in 0..cols {
                want.extend_from_slice(&src[r * W + c * col_stride..][..W]);
            }
        }
        for options in [ALL_OPTIONS[0], ALL_OPTIONS[1]] {
            let mut got = vec![0xFF; want.len()];
            gather.write_to_with(&mut got, options).unwrap();
            assert!(got == want, "{rows}x{cols} of {W} bytes, {options:?}");
        }
    }

    #[test]
    fn transposes_of_two_bands_match_the_element_walk() {
        // 33 column blocks of bytes: 16 groups of two, and one alone.
        check_banded_transpose::<1>(4_096 + 77, 2_048 + 64 + 5);
        check_banded_transpose::<8>(1_100, 1_024 + 6);
    }

    #[test]
    fn wrong_destination_sizes_and_bad_views_are_errors() {
        let src = [0u8; 16];
        let gather = Gather::new(&src, &[4], &[4], 1).unwrap();
        assert!(matches!(
            gather.write_to(&mut [0u8; 3]),
            Err(Error::SinkState(_))
        ));
        assert!(
            gather
                .write_to_uninit(&mut [MaybeUninit::new(0); 5])
                .is_err()
        );
        assert!(matches!(
            Gather::new(&src, &[5], &[4], 1),
            Err(Error::StridesOverrun { .. })
        ));
        assert!(matches!(
            Gather::new(&src, &[usize::MAX, 2], &[0, 0], 8),
            Err(Error::Overflow { .. })
        ));
    }

    #[test]
    fn chunks_of_an_empty_gather_are_none() {
        let gather = Gather::new(&[], &[0, 5], &[4, 4], 4).unwrap();
        assert_eq!(gather.chunks(10).count(), 0);
        let scalar = [1u8, 2, 3, 4];
        let gather = Gather::new(&scalar, &[], &[], 4).unwrap();
        assert_eq!(gather.chunks(1).map(|g| g.len()).collect::<Vec<_>>(), [4]);
    }
}
