//! The seal digest, computed exactly as the Arrow 11 C++ client computes it.
//!
//! XXH64 with seed 0 over the data then the metadata. Data of 1 MiB or more
//! is split into 8 chunks of `(data_len / 64 / 8) * 64` bytes plus a suffix;
//! each part is hashed on its own (the chunks in parallel) and the 9 `u64`
//! results, as 72 little-endian bytes, are hashed in place of the data.

use xxhash_rust::xxh64::Xxh64;

/// Data sizes from this one up use the chunked scheme.
pub const PARALLEL_THRESHOLD: usize = 1 << 20;

const CHUNKS: usize = 8;
const BLOCK: usize = 64;

/// The 8-byte digest (little-endian `u64`) of an object's data and metadata.
pub fn object_digest(data: &[u8], metadata: &[u8]) -> [u8; 8] {
    object_hash(data, metadata).to_le_bytes()
}

/// The digest as a `u64`, the value `PlasmaClient::Hash` returns in C++.
pub fn object_hash(data: &[u8], metadata: &[u8]) -> u64 {
    if data.len() < PARALLEL_THRESHOLD {
        let mut state = Xxh64::new(0);
        state.update(data);
        state.update(metadata);
        return state.digest();
    }
    let bounds = part_bounds(data.len());
    let mut hashes = [0u64; PARTS];
    // Threads pay for themselves only on large data.
    let threads = if data.len() < THREADED_THRESHOLD {
        1
    } else {
        available_threads()
    };
    let jobs = part_runs(threads, &mut hashes)
        .into_iter()
        .map(|(parts, outs)| (parts, outs, ()));
    on_threads(jobs, |(parts, outs, ())| {
        for (k, out) in parts.zip(outs) {
            *out = xxh64(&data[bounds[k]..bounds[k + 1]], 0);
        }
    });
    combine(&hashes, metadata)
}

/// Data sizes from this one up are hashed (and copied) on several threads.
const THREADED_THRESHOLD: usize = 8 << 20;

/// Copies `parts`, one after another, into `dst` (whose length must be the sum of theirs) and
/// returns [`object_hash`]`(dst, metadata)`, computed on the bytes as they are copied (one
/// pass: each 32-byte stripe loaded once, stored, and folded into the hash), instead of
/// reading `dst` again afterwards. Large data is
/// copied and hashed on up to 8 threads, one run of the digest's chunks each.
///
/// # Panics
/// If the parts' lengths do not add up to `dst.len()` (callers check first).
pub(crate) fn copy_and_hash(dst: &mut [u8], parts: &[&[u8]], metadata: &[u8]) -> u64 {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    assert_eq!(total, dst.len(), "parts must fill the destination exactly");
    if dst.len() < PARALLEL_THRESHOLD {
        let mut state = CopyingXxh64::new();
        copy_range(parts, 0, dst, |dst, src| state.copy(dst, src));
        state.update(metadata);
        return state.digest();
    }
    let bounds = part_bounds(dst.len());
    let threads = if dst.len() < THREADED_THRESHOLD {
        1
    } else {
        available_threads()
    };
    let mut hashes = [0u64; PARTS];
    // Each run of parts gets its own stretch of `dst` to fill.
    let mut rest = dst;
    let jobs: Vec<_> = part_runs(threads, &mut hashes)
        .into_iter()
        .map(|(run, outs)| {
            let (mine, tail) =
                std::mem::take(&mut rest).split_at_mut(bounds[run.end] - bounds[run.start]);
            rest = tail;
            (run, outs, mine)
        })
        .collect();
    on_threads(jobs, |(run, outs, mut mine)| {
        for (k, out) in run.zip(outs) {
            let (part, tail) = std::mem::take(&mut mine).split_at_mut(bounds[k + 1] - bounds[k]);
            mine = tail;
            let mut state = CopyingXxh64::new();
            copy_range(parts, bounds[k], part, |dst, src| state.copy(dst, src));
            *out = state.digest();
        }
    });
    combine(&hashes, metadata)
}

/// Parts of the chunked scheme: 8 chunks, then the suffix.
const PARTS: usize = CHUNKS + 1;

/// Part `k` of `len` bytes of large data covers `bounds[k]..bounds[k + 1]`: 8 chunks of
/// `(len / 64 / 8) * 64` bytes, then the suffix.
fn part_bounds(len: usize) -> [usize; PARTS + 1] {
    let chunk = (len / BLOCK / CHUNKS) * BLOCK;
    std::array::from_fn(|k| if k == PARTS { len } else { k * chunk })
}

/// Threads for hashing: the available parallelism, at most one per chunk.
fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, CHUNKS)
}

/// Splits the parts into consecutive runs, one per thread (the last run ends with the
/// suffix), each with its slots of `hashes`.
fn part_runs(
    threads: usize,
    hashes: &mut [u64; PARTS],
) -> Vec<(std::ops::Range<usize>, &mut [u64])> {
    let per = CHUNKS.div_ceil(threads.max(1));
    let mut runs = Vec::with_capacity(threads);
    let (mut rest, mut first) = (&mut hashes[..], 0);
    while first < PARTS {
        let last = if first + per >= CHUNKS {
            PARTS
        } else {
            first + per
        };
        let (outs, tail) = std::mem::take(&mut rest).split_at_mut(last - first);
        rest = tail;
        runs.push((first..last, outs));
        first = last;
    }
    runs
}

/// Runs `work` on every job: the first on this thread, the others on scoped threads.
fn on_threads<T: Send>(jobs: impl IntoIterator<Item = T>, work: impl Fn(T) + Sync) {
    std::thread::scope(|s| {
        let mut jobs = jobs.into_iter();
        let mine = jobs.next();
        for job in jobs {
            let work = &work;
            s.spawn(move || work(job));
        }
        if let Some(job) = mine {
            work(job);
        }
    });
}

/// The digest of large data: XXH64 of the 9 part hashes (72 little-endian bytes), then
/// the metadata.
fn combine(hashes: &[u64; PARTS], metadata: &[u8]) -> u64 {
    let mut bytes = [0u8; 8 * PARTS];
    for (out, h) in bytes.chunks_exact_mut(8).zip(hashes) {
        out.copy_from_slice(&h.to_le_bytes());
    }
    let mut state = Xxh64::new(0);
    state.update(&bytes);
    state.update(metadata);
    state.digest()
}

/// Copies bytes `start..start + dst.len()` of the concatenation of `parts` into `dst` by
/// handing each source slice, in order, to `copy` with the stretch of `dst` it fills.
fn copy_range(
    parts: &[&[u8]],
    start: usize,
    dst: &mut [u8],
    mut copy: impl FnMut(&mut [u8], &[u8]),
) {
    let mut skip = start;
    let mut at = 0;
    for part in parts {
        if at == dst.len() {
            break;
        }
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        let src = &part[skip..part.len().min(skip + dst.len() - at)];
        skip = 0;
        copy(&mut dst[at..at + src.len()], src);
        at += src.len();
    }
}

const PRIME1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME5: u64 = 0x27D4_EB2F_1656_67C5;

/// XXH64's stripe: 32 bytes, one 8-byte lane per accumulator.
const STRIPE: usize = 32;

/// A streaming XXH64 (seed 0) that also copies what it hashes: [`copy`](Self::copy) loads
/// each 32-byte stripe of the source once, stores it to the destination and folds it into
/// the four accumulators, so the copy's memory traffic and the hash's arithmetic overlap in
/// one pass. Equal to `xxhash_rust::xxh64::xxh64` of everything fed (tested).
struct CopyingXxh64 {
    acc: [u64; 4],
    total: u64,
    pending: [u8; STRIPE],
    pending_len: usize,
}

fn xxh64_round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(PRIME2))
        .rotate_left(31)
        .wrapping_mul(PRIME1)
}

fn lane(bytes: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

impl CopyingXxh64 {
    fn new() -> Self {
        CopyingXxh64 {
            acc: [
                PRIME1.wrapping_add(PRIME2),
                PRIME2,
                0,
                0u64.wrapping_sub(PRIME1),
            ],
            total: 0,
            pending: [0; STRIPE],
            pending_len: 0,
        }
    }

    fn stripe(&mut self, bytes: &[u8]) {
        for (i, acc) in self.acc.iter_mut().enumerate() {
            *acc = xxh64_round(*acc, lane(bytes, i));
        }
    }

    /// Copies `src` into `dst` (of the same length) and hashes it.
    fn copy(&mut self, dst: &mut [u8], src: &[u8]) {
        let (dst, src) = self.fill_pending(dst, src);
        if src.is_empty() {
            return; // a partial stripe may still be pending
        }
        let whole = src.len() / STRIPE * STRIPE;
        for (out, stripe) in dst[..whole]
            .chunks_exact_mut(STRIPE)
            .zip(src[..whole].chunks_exact(STRIPE))
        {
            let lanes: [u64; 4] = std::array::from_fn(|i| lane(stripe, i));
            for (i, (acc, &l)) in self.acc.iter_mut().zip(&lanes).enumerate() {
                out[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
                *acc = xxh64_round(*acc, l);
            }
        }
        dst[whole..].copy_from_slice(&src[whole..]);
        self.pending[..src.len() - whole].copy_from_slice(&src[whole..]);
        self.pending_len = src.len() - whole;
    }

    /// Hashes `src` without copying it.
    fn update(&mut self, src: &[u8]) {
        let mut scratch = [0u8; STRIPE];
        for piece in src.chunks(STRIPE) {
            self.copy(&mut scratch[..piece.len()], piece);
        }
    }

    /// Counts `src` and completes a pending partial stripe from its start (copying those
    /// bytes to `dst`); returns what is left of both (nothing while the stripe stays partial).
    fn fill_pending<'d, 's>(
        &mut self,
        dst: &'d mut [u8],
        src: &'s [u8],
    ) -> (&'d mut [u8], &'s [u8]) {
        assert_eq!(dst.len(), src.len(), "a copy fills its destination exactly");
        self.total = self.total.wrapping_add(src.len() as u64);
        if self.pending_len == 0 {
            return (dst, src);
        }
        let n = (STRIPE - self.pending_len).min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.pending[self.pending_len..self.pending_len + n].copy_from_slice(&src[..n]);
        self.pending_len += n;
        if self.pending_len == STRIPE {
            let pending = self.pending;
            self.stripe(&pending);
            self.pending_len = 0;
        }
        (&mut dst[n..], &src[n..])
    }

    /// The hash of everything fed.
    fn digest(&self) -> u64 {
        let [v1, v2, v3, v4] = self.acc;
        let mut h = if self.total >= STRIPE as u64 {
            let mut h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            for v in self.acc {
                h = (h ^ xxh64_round(0, v))
                    .wrapping_mul(PRIME1)
                    .wrapping_add(PRIME4);
            }
            h
        } else {
            PRIME5 // the seed (0) + PRIME5
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.pending[..self.pending_len];
        while rest.len() >= 8 {
            h ^= xxh64_round(0, lane(rest, 0));
            h = h.rotate_left(27).wrapping_mul(PRIME1).wrapping_add(PRIME4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            let word = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
            h ^= u64::from(word).wrapping_mul(PRIME1);
            h = h.rotate_left(23).wrapping_mul(PRIME2).wrapping_add(PRIME3);
            rest = &rest[4..];
        }
        for &byte in rest {
            h ^= u64::from(byte).wrapping_mul(PRIME5);
            h = h.rotate_left(11).wrapping_mul(PRIME1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(PRIME2);
        h ^= h >> 29;
        h = h.wrapping_mul(PRIME3);
        h ^ (h >> 32)
    }
}

/// One-shot XXH64 of a chunk. The crate's streaming state is used on
/// purpose: here it runs about 1.5x faster than its one-shot function.
fn xxh64(data: &[u8], seed: u64) -> u64 {
    let mut state = Xxh64::new(seed);
    state.update(data);
    state.digest()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_shot_matches_the_reference_implementation() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in (0..200).chain([255, 256, 1000, 4099, 5000]) {
            for seed in [0, 1, u64::MAX] {
                assert_eq!(
                    xxh64(&data[..len], seed),
                    xxhash_rust::xxh64::xxh64(&data[..len], seed),
                    "len {len} seed {seed}"
                );
            }
        }
    }

    use super::*;

    #[test]
    fn the_copying_hasher_is_xxh64_for_any_split() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 131 + 17) as u8).collect();
        for len in (0..100).chain([127, 128, 1000, 2999, 3000]) {
            let src = &data[..len];
            for step in [1, 3, 7, 31, 32, 33, 64, 1000, 4096] {
                let mut state = CopyingXxh64::new();
                let mut dst = vec![0u8; len];
                for (d, s) in dst.chunks_mut(step).zip(src.chunks(step)) {
                    state.copy(d, s);
                }
                assert_eq!(dst, src, "copy, len {len} step {step}");
                let expected = xxhash_rust::xxh64::xxh64(src, 0);
                assert_eq!(state.digest(), expected, "len {len} step {step}");
                let mut hashed = CopyingXxh64::new();
                hashed.update(&src[..len / 2]);
                hashed.update(&src[len / 2..]);
                assert_eq!(hashed.digest(), expected, "update, len {len}");
            }
        }
    }

    #[test]
    fn small_is_plain_xxh64_of_data_then_metadata() {
        let mut joined = b"hello".to_vec();
        joined.extend_from_slice(b"md");
        assert_eq!(object_hash(b"hello", b"md"), xxh64(&joined, 0));
        assert_eq!(object_hash(b"", b""), xxh64(b"", 0));
    }

    #[test]
    fn copy_and_hash_equals_copy_then_hash() {
        let data: Vec<u8> = (0..9_000_017u32).map(|i| (i * 13 + 5) as u8).collect();
        // Sizes around both thresholds, and odd splits into parts (including empty ones).
        for len in [
            0,
            1,
            777,
            PARALLEL_THRESHOLD - 1,
            PARALLEL_THRESHOLD,
            3_000_017,
            9_000_017,
        ] {
            let src = &data[..len];
            let cuts = [0, len / 3, len / 3, len / 2 + 5, len];
            let parts: Vec<&[u8]> = cuts
                .windows(2)
                .map(|w| &src[w[0].min(len)..w[1].min(len).max(w[0].min(len))])
                .collect();
            let mut dst = vec![0xAAu8; len];
            let got = copy_and_hash(&mut dst, &parts, b"meta");
            assert_eq!(dst, src, "copy of {len} bytes");
            assert_eq!(got, object_hash(src, b"meta"), "hash of {len} bytes");
        }
    }

    #[test]
    #[should_panic(expected = "parts must fill")]
    fn copy_and_hash_rejects_a_short_part_list() {
        copy_and_hash(&mut [0u8; 4], &[b"abc"], b"");
    }

    #[test]
    fn large_uses_nine_part_scheme() {
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 + 3) as u8).collect();
        let chunk = (data.len() / 64 / 8) * 64;
        let mut bytes = Vec::new();
        for i in 0..8 {
            bytes.extend_from_slice(&xxh64(&data[i * chunk..(i + 1) * chunk], 0).to_le_bytes());
        }
        bytes.extend_from_slice(&xxh64(&data[8 * chunk..], 0).to_le_bytes());
        bytes.extend_from_slice(b"meta");
        assert_eq!(object_hash(&data, b"meta"), xxh64(&bytes, 0));
    }
}
