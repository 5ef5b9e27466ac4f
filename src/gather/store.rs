//! How the gather stores bytes: the destination type [`Out`], plain and streaming
//! (non-temporal) copies, and the SSE2 block transposes. This is the core crate's only
//! hand-written `unsafe`; every block says why it holds.
//!
//! * [`Out`] is a destination that may start uninitialised (a `Vec`'s spare capacity) and is
//!   only ever written with initialised bytes, so it can as well be made from a `&mut [u8]`.
//! * Streaming stores (`_mm_stream_si128`, SSE2, part of the x86-64 baseline) write whole
//!   16-byte pieces without reading the destination's cache lines first; [`fence`] orders them
//!   before anything the caller does next. Elsewhere, and where the address does not allow
//!   them, the same bytes are written with normal stores.
//! * [`transpose_block`] transposes a block of 1-, 2-, 4- or 8-byte elements with SSE2
//!   unpack instructions (a portable loop on other architectures).

use std::mem::MaybeUninit;

use super::{Gather, GatherOptions};

/// Fills `dst` (exactly the gather's length) with `gather`'s bytes and returns it
/// initialised.
pub(crate) fn fill_uninit<'d>(gather: &Gather<'_>, dst: &'d mut [MaybeUninit<u8>]) -> &'d mut [u8] {
    assert_eq!(
        dst.len(),
        gather.len(),
        "gather destination of the wrong size"
    );
    gather.fill(Out::uninit(dst), GatherOptions::default());
    // SAFETY: `Gather::fill` writes every byte of its destination (every path copies each
    // output byte exactly once, from initialised source bytes; the property tests check each
    // path over destinations of stale bytes), so all `dst.len()` bytes are initialised;
    // `MaybeUninit<u8>` has the layout of `u8`.
    unsafe { &mut *(dst as *mut [MaybeUninit<u8>] as *mut [u8]) }
}

/// Appends `gather`'s bytes to `vec`, whose spare capacity must hold them.
pub(crate) fn append(gather: &Gather<'_>, vec: &mut Vec<u8>) {
    let len = gather.len();
    let start = vec.len();
    fill_uninit(gather, &mut vec.spare_capacity_mut()[..len]);
    // SAFETY: `fill_uninit` initialised the `len` bytes after the old length, which are within
    // the capacity (the slice above would have panicked otherwise).
    unsafe { vec.set_len(start + len) };
}

/// How a copy writes its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stores {
    /// Normal stores, through the cache.
    Normal,
    /// Streaming (non-temporal) stores for every aligned 16-byte piece, on x86-64.
    Streaming,
}

/// Views initialised bytes as possibly-uninitialised ones, to copy them into an [`Out`].
#[inline(always)]
fn as_uninit(bytes: &[u8]) -> &[MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and through a shared reference the
    // bytes cannot be de-initialised.
    unsafe { &*(bytes as *const [u8] as *const [MaybeUninit<u8>]) }
}

/// A destination of the gather: bytes that may be uninitialised, written only with
/// initialised bytes (so a `&mut [u8]` stays initialised through it).
pub(crate) struct Out<'a>(&'a mut [MaybeUninit<u8>]);

impl<'a> Out<'a> {
    /// A destination over initialised bytes.
    pub(crate) fn new(bytes: &'a mut [u8]) -> Self {
        // SAFETY: same layout; `Out` only ever writes initialised bytes (every write below
        // copies from a `&[u8]` or stores an SSE2 register loaded from one), so the bytes are
        // still initialised when the borrow ends.
        Out(unsafe { &mut *(bytes as *mut [u8] as *mut [MaybeUninit<u8>]) })
    }

    /// A destination over possibly uninitialised bytes.
    pub(crate) fn uninit(bytes: &'a mut [MaybeUninit<u8>]) -> Self {
        Out(bytes)
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The address of its first byte.
    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Splits it into consecutive destinations of `size` bytes (the length must be a
    /// multiple of `size`).
    pub(crate) fn chunks_exact(self, size: usize) -> impl Iterator<Item = Out<'a>> {
        debug_assert_eq!(self.0.len() % size, 0);
        self.0.chunks_exact_mut(size).map(Out)
    }

    /// Writes `src` at `at`.
    #[inline(always)]
    pub(crate) fn copy_from(&mut self, at: usize, src: &[u8], stores: Stores) {
        let dst = &mut self.0[at..at + src.len()];
        match stores {
            Stores::Normal => dst.copy_from_slice(as_uninit(src)),
            Stores::Streaming => stream_copy(dst, src),
        }
    }

    /// Writes the `N` bytes of `src` at `at`.
    #[inline(always)]
    pub(crate) fn put<const N: usize>(&mut self, at: usize, src: &[u8; N], stores: Stores) {
        let dst: &mut [MaybeUninit<u8>; N] = (&mut self.0[at..at + N]).try_into().expect("N bytes");
        if N.is_multiple_of(16)
            && stores == Stores::Streaming
            && (dst.as_ptr() as usize).is_multiple_of(16)
        {
            stream_aligned(dst, src);
        } else {
            dst.copy_from_slice(as_uninit(src));
        }
    }
}

/// Copies `N` bytes (a multiple of 16) into a 16-byte aligned `dst` with streaming stores on
/// x86-64 (normal stores elsewhere).
#[inline(always)]
fn stream_aligned<const N: usize>(dst: &mut [MaybeUninit<u8>; N], src: &[u8; N]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        assert!(N.is_multiple_of(16) && (dst.as_ptr() as usize).is_multiple_of(16));
        for i in (0..N).step_by(16) {
            // SAFETY: `i + 16 <= N`, so 16 bytes at offset `i` are inside both arrays; `dst`
            // is 16-byte aligned (asserted) and so is `dst + i`, as `_mm_stream_si128`
            // requires; the load is unaligned.
            unsafe {
                let value = _mm_loadu_si128(src.as_ptr().add(i).cast::<__m128i>());
                _mm_stream_si128(dst.as_mut_ptr().add(i).cast::<__m128i>(), value);
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    dst.copy_from_slice(as_uninit(src));
}

/// Copies `src` into `dst` (same length), with streaming stores for the 16-byte aligned
/// pieces of `dst` on x86-64 and normal stores for the rest.
#[inline(always)]
fn stream_copy(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "stream_copy of unequal lengths");
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let head = (dst.as_ptr() as usize).wrapping_neg() % 16;
        let head = head.min(dst.len());
        let body = (dst.len() - head) / 16 * 16;
        let (first, rest) = dst.split_at_mut(head);
        let (middle, last) = rest.split_at_mut(body);
        first.copy_from_slice(as_uninit(&src[..head]));
        let from = &src[head..head + body];
        for (to, piece) in middle.chunks_exact_mut(16).zip(from.chunks_exact(16)) {
            // SAFETY: `piece` is 16 readable bytes (unaligned loads are allowed); `to` is 16
            // writable bytes whose address is a multiple of 16 (`middle` starts at the first
            // 16-byte boundary of `dst` and is cut in 16-byte pieces), as `_mm_stream_si128`
            // requires; both are in bounds by construction of the chunks.
            unsafe {
                let value = _mm_loadu_si128(piece.as_ptr().cast::<__m128i>());
                _mm_stream_si128(to.as_mut_ptr().cast::<__m128i>(), value);
            }
        }
        last.copy_from_slice(as_uninit(&src[head + body..]));
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    dst.copy_from_slice(as_uninit(src));
}

/// Orders the streaming stores made so far before any later store (a no-op after normal
/// stores, and on other architectures).
pub(crate) fn fence(stores: Stores) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if stores == Stores::Streaming {
        // SAFETY: `sfence` has no preconditions; SSE is enabled (this code is compiled only
        // with `target_feature = "sse2"`, part of the x86-64 baseline).
        unsafe { std::arch::x86_64::_mm_sfence() };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let _ = stores;
}

/// Asks for the cache line holding `src[at]` to be loaded soon (a hint; nothing if `at` is
/// outside `src`, or on other architectures).
#[inline(always)]
pub(crate) fn prefetch(src: &[u8], at: usize) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if at < src.len() {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `src[at]` is in bounds; a prefetch only hints the cache and never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(src.as_ptr().add(at).cast::<i8>()) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let _ = (src, at);
}

/// Bytes of one row of a transpose block: one cache line of the destination.
pub(crate) const BLOCK_ROW_BYTES: usize = 64;

/// The block [`transpose_block`] writes: `rows` rows of [`BLOCK_ROW_BYTES`], 64-byte aligned.
#[repr(C, align(64))]
pub(crate) struct Block<const BYTES: usize>(pub(crate) [u8; BYTES]);

impl<const BYTES: usize> Block<BYTES> {
    /// Row `i` of the block: one destination cache line.
    #[inline(always)]
    pub(crate) fn line(&self, i: usize) -> &[u8; BLOCK_ROW_BYTES] {
        self.0[i * BLOCK_ROW_BYTES..][..BLOCK_ROW_BYTES]
            .try_into()
            .expect("a line")
    }
}

/// Transposes `rows x (64 / W)` elements of `W` bytes into `block`: element `(r, c)` is read
/// at `src[at + r * W + c * col_stride..][..W]` (a column of the block is contiguous in the
/// source) and written at `block[r * 64 + c * W..][..W]` (a row of the block is one
/// destination cache line). `rows` must be a multiple of `16 / W` and fit in the block.
///
/// # Panics
/// If the elements read are not inside `src`, or the rows do not fit.
#[inline(always)]
pub(crate) fn transpose_block<const W: usize, const BYTES: usize>(
    src: &[u8],
    at: usize,
    col_stride: usize,
    rows: usize,
    block: &mut Block<BYTES>,
) {
    const { assert!(W == 1 || W == 2 || W == 4 || W == 8) };
    let cols = BLOCK_ROW_BYTES / W;
    assert!(rows * BLOCK_ROW_BYTES <= BYTES && rows.is_multiple_of(16 / W));
    let last = (cols - 1)
        .checked_mul(col_stride)
        .and_then(|o| o.checked_add(at))
        .and_then(|o| o.checked_add(rows * W));
    assert!(
        last.is_some_and(|end| end <= src.len()),
        "transpose block outside the source"
    );
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let (streams, tile_rows) = (sse2::tile_streams(W), 16 / W);
        for c in (0..cols).step_by(streams) {
            for r in (0..rows).step_by(tile_rows) {
                // SAFETY: the reads are `streams` pieces of 16 bytes (`tile_rows` elements)
                // at `at + r * W + (c + j) * col_stride` for j < streams, with c + j < cols
                // and r + tile_rows <= rows, so each ends at most at `at + (cols - 1) *
                // col_stride + rows * W`, checked above to be within `src`; the writes are
                // `tile_rows` pieces of `streams * W` bytes at `(r + i) * 64 + c * W` with
                // r + i < rows and (c + streams) * W <= 64, within the block (checked
                // above). Unaligned loads and stores are used.
                unsafe {
                    sse2::transpose_tile::<W>(
                        src.as_ptr().add(at + r * W + c * col_stride),
                        col_stride,
                        block.0.as_mut_ptr().add(r * BLOCK_ROW_BYTES + c * W),
                        BLOCK_ROW_BYTES,
                    );
                }
            }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    transpose_block_portable::<W, BYTES>(src, at, col_stride, rows, block);
}

/// [`transpose_block`] element by element, without SIMD: the other architectures' path, and
/// the reference the SSE2 kernels are tested against.
pub(crate) fn transpose_block_portable<const W: usize, const BYTES: usize>(
    src: &[u8],
    at: usize,
    col_stride: usize,
    rows: usize,
    block: &mut Block<BYTES>,
) {
    let cols = BLOCK_ROW_BYTES / W;
    for c in 0..cols {
        let column = &src[at + c * col_stride..][..rows * W];
        for (r, element) in column.chunks_exact(W).enumerate() {
            block.0[r * BLOCK_ROW_BYTES + c * W..][..W].copy_from_slice(element);
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::*;

    /// Interleaves the low (`HIGH = false`) or high halves of `a` and `b` in elements of `W`
    /// bytes.
    #[inline(always)]
    fn unpack<const W: usize, const HIGH: bool>(a: __m128i, b: __m128i) -> __m128i {
        // SAFETY: register-only SSE2 instructions; SSE2 is enabled (the module is compiled
        // only with `target_feature = "sse2"`).
        unsafe {
            match (W, HIGH) {
                (1, false) => _mm_unpacklo_epi8(a, b),
                (1, true) => _mm_unpackhi_epi8(a, b),
                (2, false) => _mm_unpacklo_epi16(a, b),
                (2, true) => _mm_unpackhi_epi16(a, b),
                (4, false) => _mm_unpacklo_epi32(a, b),
                (4, true) => _mm_unpackhi_epi32(a, b),
                (_, false) => _mm_unpacklo_epi64(a, b),
                (_, true) => _mm_unpackhi_epi64(a, b),
            }
        }
    }

    /// [`unpack`] with the half chosen at run time (a constant after inlining).
    #[inline(always)]
    fn unpack_half<const W: usize>(a: __m128i, b: __m128i, high: bool) -> __m128i {
        if high {
            unpack::<W, true>(a, b)
        } else {
            unpack::<W, false>(a, b)
        }
    }

    /// The source streams (vectors) one tile of `w`-byte elements reads: `16 / w`, but 8 for
    /// bytes. The streams are often a multiple of 4 KiB apart, so their lines share one L1
    /// set, and 16 lines would not stay cached (12 ways) while each line's four 16-byte pieces
    /// are read in turn; 8 do.
    pub(super) const fn tile_streams(w: usize) -> usize {
        if w == 1 { 8 } else { 16 / w }
    }

    /// Transposes a tile of `W`-byte elements: [`tile_streams`] vectors of `16 / W` elements,
    /// vector `j` loaded from `src + j * src_stride`, into `16 / W` rows of `tile_streams`
    /// elements, row `i` stored at `dst + i * dst_stride`.
    ///
    /// # Safety
    /// `src + j * src_stride` must be valid for reading 16 bytes for every `j <
    /// tile_streams(W)`, and `dst + i * dst_stride` for writing `tile_streams(W) * W` bytes for
    /// every `i < 16 / W`.
    #[inline(always)]
    pub(super) unsafe fn transpose_tile<const W: usize>(
        src: *const u8,
        src_stride: usize,
        dst: *mut u8,
        dst_stride: usize,
    ) {
        // SAFETY: the caller's guarantee, which is each kernel's requirement for this `W`.
        unsafe {
            if W == 1 {
                transpose_bytes_8x16(src, src_stride, dst, dst_stride);
            } else {
                transpose_square::<W>(src, src_stride, dst, dst_stride);
            }
        }
    }

    /// Transposes 8 vectors of 16 bytes into 16 rows of 8 bytes: loads vector `j` from `src +
    /// j * src_stride`, stores byte `i` of every vector, in order, at `dst + i * dst_stride`.
    ///
    /// Three rounds interleave bytes, then pairs, then quads; each final vector holds two
    /// output rows (the low half row `2m`, the high half row `2m + 1`).
    ///
    /// # Safety
    /// `src + j * src_stride` must be valid for reading 16 bytes for every `j < 8`, and `dst +
    /// i * dst_stride` for writing 8 bytes for every `i < 16`.
    #[inline(always)]
    unsafe fn transpose_bytes_8x16(
        src: *const u8,
        src_stride: usize,
        dst: *mut u8,
        dst_stride: usize,
    ) {
        // SAFETY: the caller guarantees 16 readable bytes at `src + j * src_stride`.
        let a: [__m128i; 8] = std::array::from_fn(|j| unsafe {
            _mm_loadu_si128(src.add(j * src_stride).cast::<__m128i>())
        });
        // Pairs of streams (2i, 2i + 1): elements 0-7, then 8-15.
        let b: [__m128i; 8] =
            std::array::from_fn(|n| unpack_half::<1>(a[n / 2 * 2], a[n / 2 * 2 + 1], n % 2 == 1));
        // Quads of streams (0-3, then 4-7): elements in fours.
        let c: [__m128i; 8] = std::array::from_fn(|n| {
            let first = n / 4 * 4 + n % 4 / 2;
            unpack_half::<2>(b[first], b[first + 2], n % 2 == 1)
        });
        for m in 0..4 {
            for (high, rows) in [(false, 4 * m), (true, 4 * m + 2)] {
                let d = unpack_half::<4>(c[m], c[4 + m], high);
                // SAFETY: the caller guarantees 8 writable bytes at `dst + i * dst_stride`
                // for i < 16, and `rows + 1 < 16`; SSE2 is enabled.
                unsafe {
                    _mm_storel_epi64(dst.add(rows * dst_stride).cast::<__m128i>(), d);
                    _mm_storeh_pd(
                        dst.add((rows + 1) * dst_stride).cast::<f64>(),
                        _mm_castsi128_pd(d),
                    );
                }
            }
        }
    }

    /// Transposes a `k x k` square of `W`-byte elements, `k = 16 / W`: loads vector `j` (k
    /// elements) from `src + j * src_stride`, stores row `i` of the transpose at `dst + i *
    /// dst_stride`.
    ///
    /// Each round interleaves vector `i` with vector `i + k/2` (`out[2i]` the low halves,
    /// `out[2i+1]` the high halves); after log2(k) rounds vector `i` holds element `i` of every
    /// input vector, in order.
    ///
    /// # Safety
    /// `src + j * src_stride` must be valid for reading 16 bytes and `dst + i * dst_stride`
    /// for writing 16 bytes, for every `j, i < k`.
    #[inline(always)]
    unsafe fn transpose_square<const W: usize>(
        src: *const u8,
        src_stride: usize,
        dst: *mut u8,
        dst_stride: usize,
    ) {
        let k = 16 / W;
        // SAFETY: a register-only SSE2 instruction, and
        // SSE2 is enabled.
        let zero = unsafe { _mm_setzero_si128() };
        let mut v = [zero; 16];
        for (j, slot) in v.iter_mut().take(k).enumerate() {
            // SAFETY: the caller guarantees 16 readable bytes at `src + j * src_stride`.
            *slot = unsafe { _mm_loadu_si128(src.add(j * src_stride).cast::<__m128i>()) };
        }
        let mut rounds = k.trailing_zeros();
        while rounds > 0 {
            let mut next = [zero; 16];
            for i in 0..k / 2 {
                next[2 * i] = unpack::<W, false>(v[i], v[i + k / 2]);
                next[2 * i + 1] = unpack::<W, true>(v[i], v[i + k / 2]);
            }
            v = next;
            rounds -= 1;
        }
        for (i, row) in v.iter().take(k).enumerate() {
            // SAFETY: the caller guarantees 16 writable bytes at `dst + i * dst_stride`.
            unsafe { _mm_storeu_si128(dst.add(i * dst_stride).cast::<__m128i>(), *row) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_transpose<const W: usize>() {
        let col_stride = 300;
        let src: Vec<u8> = (0..64 * col_stride + 1000)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for rows in [16 / W, 32 / W, 64 / W] {
            for at in [0, 1, 5] {
                let mut fast = Block([0u8; 4096]);
                let mut slow = Block([0xEEu8; 4096]);
                transpose_block::<W, 4096>(&src, at, col_stride, rows, &mut fast);
                transpose_block_portable::<W, 4096>(&src, at, col_stride, rows, &mut slow);
                let n = rows * BLOCK_ROW_BYTES;
                assert_eq!(fast.0[..n], slow.0[..n], "W {W} rows {rows} at {at}");
                // And the portable loop is the transpose.
                for r in 0..rows {
                    for c in 0..BLOCK_ROW_BYTES / W {
                        let from = &src[at + r * W + c * col_stride..][..W];
                        assert_eq!(&slow.0[r * 64 + c * W..][..W], from);
                    }
                }
            }
        }
    }

    #[test]
    fn block_transposes_match_the_element_walk() {
        check_transpose::<1>();
        check_transpose::<2>();
        check_transpose::<4>();
        check_transpose::<8>();
    }

    #[test]
    #[should_panic(expected = "outside the source")]
    fn block_transpose_checks_the_source_bounds() {
        let src = vec![0u8; 1000];
        let mut block = Block([0u8; 1024]);
        transpose_block::<4, 1024>(&src, 0, 100, 4, &mut block);
    }

    #[test]
    fn streaming_copies_write_the_same_bytes_at_any_alignment() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 13) as u8).collect();
        for start in 0..20 {
            for len in [0, 1, 15, 16, 17, 64, 100, 250] {
                let mut dst = vec![0u8; 300];
                Out::new(&mut dst).copy_from(start, &src[..len], Stores::Streaming);
                fence(Stores::Streaming);
                assert_eq!(&dst[start..start + len], &src[..len]);
                assert!(dst[..start].iter().all(|&b| b == 0));
                assert!(dst[start + len..].iter().all(|&b| b == 0));
            }
        }
        let mut dst = vec![0u8; 100];
        let run: &[u8; 32] = src[..32].try_into().unwrap();
        Out::new(&mut dst).put(3, run, Stores::Streaming);
        assert_eq!(&dst[3..35], &src[..32]);
    }
}
