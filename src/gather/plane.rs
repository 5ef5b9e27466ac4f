//! The copy of one plane of a strided view (two axes of runs) into a row-major destination,
//! and of a single axis of runs.

use super::store::{self, Block, Out, Stores};
use super::{GatherPath, KernelChoice};

/// Copies `n` runs of `run` bytes, `stride` bytes apart from `src[base..]`, into `out`
/// (exactly `n * run` bytes).
pub(super) fn copy_runs(
    src: &[u8],
    base: usize,
    n: usize,
    stride: usize,
    run: usize,
    mut out: Out<'_>,
    stores: Stores,
) {
    debug_assert_eq!(out.len(), n * run);
    match run {
        1 => copy_fixed::<1>(src, base, n, stride, out, stores),
        2 => copy_fixed::<2>(src, base, n, stride, out, stores),
        4 => copy_fixed::<4>(src, base, n, stride, out, stores),
        8 => copy_fixed::<8>(src, base, n, stride, out, stores),
        16 => copy_fixed::<16>(src, base, n, stride, out, stores),
        32 => copy_fixed::<32>(src, base, n, stride, out, stores),
        64 => copy_fixed::<64>(src, base, n, stride, out, stores),
        _ => {
            for j in 0..n {
                let at = base + j * stride;
                out.copy_from(j * run, &src[at..at + run], stores);
            }
        }
    }
}

/// [`copy_runs`] for a run length known at compile time, so each copy is a few moves.
#[inline(always)]
fn copy_fixed<const RUN: usize>(
    src: &[u8],
    base: usize,
    n: usize,
    stride: usize,
    mut out: Out<'_>,
    stores: Stores,
) {
    for j in 0..n {
        let at = base + j * stride;
        let run: &[u8; RUN] = src[at..at + RUN].try_into().expect("run length");
        out.put(j * RUN, run, stores);
    }
}

/// Two axes of a strided view: `rows x cols` runs of `run` bytes, run `(r, c)` at `r *
/// row_stride + c * col_stride` from the plane's base, copied into a row-major destination.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plane {
    pub(super) rows: usize,
    pub(super) row_stride: usize,
    pub(super) cols: usize,
    pub(super) col_stride: usize,
    pub(super) run: usize,
}

impl Plane {
    /// Which way the plane is copied.
    pub(super) fn path(&self) -> GatherPath {
        if self.col_stride <= self.row_stride {
            GatherPath::PlaneRows
        } else if matches!(self.run, 1 | 2 | 4 | 8)
            && self.row_stride == self.run
            && self.cols >= store::BLOCK_ROW_BYTES / self.run
            && self.rows >= 16 / self.run
        {
            GatherPath::PlaneTranspose
        } else {
            GatherPath::PlaneTiles
        }
    }

    /// Copies the plane whose first run is at `src[base..]` into `out` (`rows * cols * run`
    /// bytes). `stores` is a request: streaming stores are used only where whole 16-byte
    /// pieces of the destination are written in sequence. `block` is the transpose's scratch,
    /// made on first use and kept for the gather's next planes.
    pub(super) fn copy(
        &self,
        src: &[u8],
        base: usize,
        mut out: Out<'_>,
        stores: Stores,
        kernels: KernelChoice,
        scratch: &mut Vec<TransposeBlock>,
    ) {
        let run_stores = if self.run.is_multiple_of(16) {
            stores
        } else {
            Stores::Normal
        };
        match self.path() {
            GatherPath::PlaneRows => {
                // Runs along a destination row are near each other in the source.
                let row_bytes = self.cols * self.run;
                for (r, row_out) in out.chunks_exact(row_bytes).enumerate() {
                    let row = base + r * self.row_stride;
                    copy_runs(
                        src,
                        row,
                        self.cols,
                        self.col_stride,
                        self.run,
                        row_out,
                        run_stores,
                    );
                }
            }
            GatherPath::PlaneTranspose => {
                let line_stores =
                    if (self.cols * self.run).is_multiple_of(16) && out.addr().is_multiple_of(16) {
                        stores
                    } else {
                        Stores::Normal
                    };
                match self.run {
                    1 => self.transpose::<1>(src, base, &mut out, line_stores, kernels, scratch),
                    2 => self.transpose::<2>(src, base, &mut out, line_stores, kernels, scratch),
                    4 => self.transpose::<4>(src, base, &mut out, line_stores, kernels, scratch),
                    _ => self.transpose::<8>(src, base, &mut out, line_stores, kernels, scratch),
                }
            }
            _ => match self.run {
                4 => self.copy_tiled::<4>(src, base, &mut out, run_stores),
                8 => self.copy_tiled::<8>(src, base, &mut out, run_stores),
                16 => self.copy_tiled::<16>(src, base, &mut out, run_stores),
                32 => self.copy_tiled::<32>(src, base, &mut out, run_stores),
                64 => self.copy_tiled::<64>(src, base, &mut out, run_stores),
                _ => self.copy_tiled_dyn(src, base, &mut out, run_stores),
            },
        }
    }

    /// Tile size for runs far apart in the source: (rows, columns).
    ///
    /// In a transpose-like view the runs of one destination row lie far apart in the source
    /// (often a multiple of the page size apart, so they collide in the same cache sets),
    /// while one column's runs are close. Within a tile each destination row gets a short
    /// contiguous segment (at least a cache line), read from a few source streams that
    /// advance sequentially from row to row, so both sides stay in cache and the prefetcher
    /// follows the streams. With streaming stores the destination does not need to stay in
    /// cache, so the tiles are taller (16 KiB of each source stream) and narrower (4 streams),
    /// and each stream is prefetched [`PREFETCH_AHEAD`] bytes ahead.
    fn tile(&self, stores: Stores) -> (usize, usize) {
        match stores {
            Stores::Streaming => (
                (16384 / self.row_stride.max(1)).max(1),
                (64 / self.run).max(4),
            ),
            Stores::Normal => ((4096 / self.run).max(1), (64 / self.run).max(8)),
        }
    }

    fn copy_tiled<const RUN: usize>(
        &self,
        src: &[u8],
        base: usize,
        out: &mut Out<'_>,
        stores: Stores,
    ) {
        let (tile_rows, tile_cols) = self.tile(stores);
        // Whole rows ahead in each source stream, when streaming.
        let ahead = match stores {
            Stores::Streaming => PREFETCH_AHEAD / self.row_stride.max(1) * self.row_stride,
            Stores::Normal => 0,
        };
        let row_bytes = self.cols * RUN;
        for r0 in (0..self.rows).step_by(tile_rows) {
            let r1 = (r0 + tile_rows).min(self.rows);
            for c0 in (0..self.cols).step_by(tile_cols) {
                let c1 = (c0 + tile_cols).min(self.cols);
                for r in r0..r1 {
                    let row = base + r * self.row_stride;
                    for c in c0..c1 {
                        let at = row + c * self.col_stride;
                        if ahead > 0 {
                            store::prefetch(src, at + ahead);
                        }
                        let run: &[u8; RUN] = src[at..at + RUN].try_into().expect("run length");
                        out.put(r * row_bytes + c * RUN, run, stores);
                    }
                }
            }
        }
    }

    fn copy_tiled_dyn(&self, src: &[u8], base: usize, out: &mut Out<'_>, stores: Stores) {
        let (tile_rows, tile_cols) = self.tile(stores);
        let run = self.run;
        let row_bytes = self.cols * run;
        for r0 in (0..self.rows).step_by(tile_rows) {
            let r1 = (r0 + tile_rows).min(self.rows);
            for c0 in (0..self.cols).step_by(tile_cols) {
                for c in c0..(c0 + tile_cols).min(self.cols) {
                    let column = base + c * self.col_stride;
                    for r in r0..r1 {
                        let at = column + r * self.row_stride;
                        out.copy_from(r * row_bytes + c * run, &src[at..at + run], stores);
                    }
                }
            }
        }
    }

    /// A transpose of single elements of `W` bytes whose destination columns are contiguous
    /// in the source (`row_stride == W`): blocks of [`transpose_block_rows`] x (64 / W)
    /// elements are transposed into a cache-resident [`Block`] (every source cache line read
    /// whole, SSE2 on x86-64), whose rows are then written out as whole destination cache
    /// lines. The destination rows are cut into bands of [`transpose_band_rows`]; within a
    /// band, groups of [`transpose_group_blocks`] adjacent column blocks are walked down the
    /// rows, each block reading `64 / W` sequential source streams. The rows and columns left
    /// over at the edges are copied element by element.
    fn transpose<const W: usize>(
        &self,
        src: &[u8],
        base: usize,
        out: &mut Out<'_>,
        stores: Stores,
        kernels: KernelChoice,
        scratch: &mut Vec<TransposeBlock>,
    ) {
        let block_cols = store::BLOCK_ROW_BYTES / W;
        let block_rows = transpose_block_rows(W).min(self.rows / (16 / W) * (16 / W));
        let row_bytes = self.cols * W;
        let full_cols = self.cols / block_cols * block_cols;
        if block_rows == 0 {
            self.transpose_elements::<W>(src, base, out, 0..self.rows, 0..self.cols);
            return;
        }
        let full_rows = self.rows / block_rows * block_rows;
        let band_rows = transpose_band_rows(row_bytes, block_rows);
        let group_cols = transpose_group_blocks(W) * block_cols;
        for band in (0..full_rows).step_by(band_rows) {
            let band = band..(band + band_rows).min(full_rows);
            for c0 in (0..full_cols).step_by(group_cols) {
                let blocks = group_cols.min(full_cols - c0) / block_cols;
                while scratch.len() < blocks {
                    scratch.push(Block([0u8; TRANSPOSE_BLOCK_BYTES]));
                }
                let group = &mut scratch[..blocks];
                for r0 in band.clone().step_by(block_rows) {
                    for (j, block) in group.iter_mut().enumerate() {
                        let at = base + r0 * W + (c0 + j * block_cols) * self.col_stride;
                        self.fill_block::<W>(src, at, block_rows, kernels, block);
                    }
                    // Each destination row gets the group's lines in one piece.
                    for i in 0..block_rows {
                        let row = (r0 + i) * row_bytes + c0 * W;
                        for (j, block) in group.iter().enumerate() {
                            out.put(row + j * store::BLOCK_ROW_BYTES, block.line(i), stores);
                        }
                    }
                }
            }
        }
        self.transpose_elements::<W>(src, base, out, full_rows..self.rows, 0..full_cols);
        self.transpose_elements::<W>(src, base, out, 0..self.rows, full_cols..self.cols);
    }

    /// Transposes the block of `rows` x (64 / W) elements whose first element is at `src[at..]`
    /// into `block`, prefetching the next block down the same streams.
    #[inline(always)]
    fn fill_block<const W: usize>(
        &self,
        src: &[u8],
        at: usize,
        rows: usize,
        kernels: KernelChoice,
        block: &mut TransposeBlock,
    ) {
        // The band reads `64 / W` streams, more than the hardware prefetcher follows: ask
        // for each stream's line TRANSPOSE_PREFETCH_AHEAD bytes on.
        let ahead = at + TRANSPOSE_PREFETCH_AHEAD;
        for c in 0..store::BLOCK_ROW_BYTES / W {
            store::prefetch(src, ahead + c * self.col_stride);
        }
        match kernels {
            KernelChoice::Auto => store::transpose_block::<W, TRANSPOSE_BLOCK_BYTES>(
                src,
                at,
                self.col_stride,
                rows,
                block,
            ),
            KernelChoice::Portable => store::transpose_block_portable::<W, TRANSPOSE_BLOCK_BYTES>(
                src,
                at,
                self.col_stride,
                rows,
                block,
            ),
        }
    }

    /// Copies the elements `(r, c)` for `r` in `rows`, `c` in `cols` one by one.
    fn transpose_elements<const W: usize>(
        &self,
        src: &[u8],
        base: usize,
        out: &mut Out<'_>,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) {
        let row_bytes = self.cols * W;
        for r in rows {
            for c in cols.clone() {
                let at = base + r * W + c * self.col_stride;
                let element: &[u8; W] = src[at..at + W].try_into().expect("element");
                out.put(r * row_bytes + c * W, element, Stores::Normal);
            }
        }
    }
}

/// How far down its column each source stream of a transpose is prefetched: a few blocks of
/// the narrowest elements ahead.
const TRANSPOSE_PREFETCH_AHEAD: usize = 256;

/// The most rows of a transpose block of `w`-byte elements (the block is this many destination
/// cache lines): 256 bytes of each source stream, and at least 64 rows. A block reads `64 / w`
/// source streams, each `rows * w` bytes on: the narrow elements have the most streams and
/// read each in longer stretches (measured in docs/benchmarks.md, the evening series of
/// 2026-12-04; 4- and 8-byte elements were fastest with 64).
pub(super) const fn transpose_block_rows(w: usize) -> usize {
    if 256 / w > 64 { 256 / w } else { 64 }
}

/// The destination bytes one band of a transpose spans. A band's rows are walked column block
/// by column block, and each column block writes one line into every destination row of the
/// band, so without bands a 4096 x 4096 transpose writes into all its destination pages
/// between two lines of the same page. A band keeps its pages (2,048 of 4 KiB) about as many
/// as a current x86-64 core's second-level TLB holds; 4 MiB and no bands were measured too
/// (docs/benchmarks.md, the series of 2026-12-04, night).
const TRANSPOSE_BAND_BYTES: usize = 8 << 20;

/// The destination rows of one transpose band: [`TRANSPOSE_BAND_BYTES`] of rows of `row_bytes`,
/// a whole number of blocks of `block_rows`, at least one.
pub(super) fn transpose_band_rows(row_bytes: usize, block_rows: usize) -> usize {
    (TRANSPOSE_BAND_BYTES / row_bytes.max(1) / block_rows).max(1) * block_rows
}

/// How many adjacent column blocks of `w`-byte elements a transpose fills before writing their
/// rows out: two for bytes, so each destination row gets 128 bytes in one piece (scattered
/// 64-byte lines are written at about half the speed of 128-byte pieces), one for wider
/// elements (two were slower for 4-byte elements; measured in docs/benchmarks.md, the series
/// of 2026-12-04, night).
const fn transpose_group_blocks(w: usize) -> usize {
    if w == 1 { 2 } else { 1 }
}

/// The bytes of the largest transpose block (the 1-byte elements').
const TRANSPOSE_BLOCK_BYTES: usize = transpose_block_rows(1) * store::BLOCK_ROW_BYTES;

/// A transpose's scratch block, big enough for every element width.
pub(super) type TransposeBlock = Block<TRANSPOSE_BLOCK_BYTES>;

/// How far ahead of the copy each source stream of a tiled plane is prefetched, when
/// streaming.
const PREFETCH_AHEAD: usize = 2048;
