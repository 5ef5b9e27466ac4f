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
    let mut state = Xxh64::new(0);
    if data.len() < PARALLEL_THRESHOLD {
        state.update(data);
    } else {
        let parts = chunk_hashes(data);
        let mut bytes = [0u8; 8 * (CHUNKS + 1)];
        for (out, h) in bytes.chunks_exact_mut(8).zip(parts) {
            out.copy_from_slice(&h.to_le_bytes());
        }
        state.update(&bytes);
    }
    state.update(metadata);
    state.digest()
}

/// The 8 chunk hashes and the suffix hash of large data.
fn chunk_hashes(data: &[u8]) -> [u64; CHUNKS + 1] {
    let chunk = (data.len() / BLOCK / CHUNKS) * BLOCK;
    let mut out = [0u64; CHUNKS + 1];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, CHUNKS);
    let (chunk_out, suffix_out) = out.split_at_mut(CHUNKS);
    suffix_out[0] = xxh64(&data[CHUNKS * chunk..], 0);
    if threads == 1 {
        for (i, o) in chunk_out.iter_mut().enumerate() {
            *o = xxh64(&data[i * chunk..(i + 1) * chunk], 0);
        }
        return out;
    }
    // Each worker takes a contiguous run of chunks; this thread takes the first run.
    let per = CHUNKS.div_ceil(threads);
    std::thread::scope(|s| {
        let mut runs = chunk_out.chunks_mut(per).enumerate();
        let first = runs.next();
        for (r, outs) in runs {
            s.spawn(move || hash_run(data, chunk, r * per, outs));
        }
        if let Some((r, outs)) = first {
            hash_run(data, chunk, r * per, outs);
        }
    });
    out
}

fn hash_run(data: &[u8], chunk: usize, first: usize, outs: &mut [u64]) {
    for (k, o) in outs.iter_mut().enumerate() {
        let i = first + k;
        *o = xxh64(&data[i * chunk..(i + 1) * chunk], 0);
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
    fn small_is_plain_xxh64_of_data_then_metadata() {
        let mut joined = b"hello".to_vec();
        joined.extend_from_slice(b"md");
        assert_eq!(object_hash(b"hello", b"md"), xxh64(&joined, 0));
        assert_eq!(object_hash(b"", b""), xxh64(b"", 0));
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
