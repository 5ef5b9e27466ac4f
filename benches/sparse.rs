//! Sparse conversion benchmarks (issue 5): dense to COO and dense to CSR (int64 indices, as
//! Arrow C++ `SparseCOOTensor::Make` / `SparseCSRMatrix::Make` default to) of a 4096 x 4096
//! float32 matrix with 10% non-zeros. `benches/sparse_compare.sh` runs this and the Arrow C++
//! side (`tests/cpp/sparse_vectors.cc bench`) and prints both medians.
//!
//! Environment knobs: `SPARSE_BENCH_SAMPLES` (default 10), `SPARSE_BENCH_SECS` (default 5).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tensor_ipc::{SparseFormat, SparseTensor, Tensor};

const N: usize = 4096;
const DENSITY: f64 = 0.10;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A seeded 4096 x 4096 f32 matrix with `DENSITY` of its elements non-zero.
fn matrix() -> Tensor<'static> {
    let mut state = 0x2026_1125_u64;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let values: Vec<f32> = (0..N * N)
        .map(|_| {
            if next() < DENSITY {
                (next() + 0.5) as f32
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(values, vec![N, N]).expect("valid tensor")
}

fn dense_to_sparse(c: &mut Criterion) {
    let dense = matrix();
    let mut group = c.benchmark_group("dense_to_sparse_4096x4096_f32_10pct");
    group
        .sample_size(env_or("SPARSE_BENCH_SAMPLES", 10) as usize)
        .measurement_time(Duration::from_secs(env_or("SPARSE_BENCH_SECS", 5)));
    for (id, format) in [("coo", SparseFormat::Coo), ("csr", SparseFormat::Csr)] {
        group.bench_function(id, |b| {
            b.iter(|| SparseTensor::from_dense(black_box(&dense), format).expect("converts"))
        });
    }
    group.finish();
}

criterion_group!(benches, dense_to_sparse);
criterion_main!(benches);
