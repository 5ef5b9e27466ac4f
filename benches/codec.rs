//! Codec benchmarks for issue 2, each row beside its baseline in one run:
//!
//! * `write_contiguous/{tensor_ipc,memcpy}/{1MiB,64MiB,256MiB}`: an f32 tensor written into a
//!   preallocated [`MemorySink`] (`clear` then `write_tensor` per iteration) against
//!   `copy_from_slice` of the same bytes into a preallocated destination.
//! * `write_transposed/{tensor_ipc,memcpy}/256MiB`: a 256 MiB f32 buffer viewed as `(64, N, 16)`
//!   row-major and transposed to `(N, 64, 16)` (byte strides `[64, N*64, 4]`), gathered by
//!   `write_tensor` into a preallocated sink, against a 256 MiB memcpy.
//! * `read_memory/{1KiB,1MiB,64MiB,1GiB}`: `read_tensor` from a fresh clone of a
//!   [`BufferSource`] (the clone, an `Arc` increment, is made outside the timed region).
//! * `read_mmap/{...}`: `read_tensor` from a fresh clone of an opened, mapped [`FileSource`]
//!   (open and mapping outside the timed region).
//! * `open_read_mmap/{...}`: `FileSource::open` (open + fstat + mmap) then `read_tensor`, timed
//!   together; dropping the tensor (munmap) is outside the timed region.
//!
//! The read rows take well under a microsecond, and this machine is shared (2 cores, other
//! builds running): a criterion sample of many iterations is almost always cut by a scheduler
//! time slice. So the read rows time chunks of [`READ_CHUNK`] iterations (about 0.1-2 ms each)
//! and report, per criterion sample, the median chunk's time per iteration: robust to
//! preemption, otherwise the same quantity. Per-iteration setup (the clone of the source) and
//! the drop of the tensors read stay outside the timed chunks, as with `iter_batched`.
//!
//! Throughput is reported in bytes of tensor body, so `tensor_ipc` and `memcpy` rows compare
//! directly. `benches/run.sh` collects the medians with the pyarrow side into one table.
//!
//! Environment knobs (for quick runs): `CODEC_BENCH_SAMPLES` (default 10) and
//! `CODEC_BENCH_SECS` (measurement seconds per benchmark, default 3).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use tensor_ipc::{DType, Tensor, TensorData, read_tensor, tensor_size, write_tensor};
use tensor_ipc_file::FileSource;
use tensor_ipc_memory::{BufferSource, MemorySink};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

fn label(bytes: usize) -> String {
    match bytes {
        b if b >= GIB && b % GIB == 0 => format!("{}GiB", b / GIB),
        b if b >= MIB && b % MIB == 0 => format!("{}MiB", b / MIB),
        b if b >= KIB && b % KIB == 0 => format!("{}KiB", b / KIB),
        b => format!("{b}B"),
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(env_or("CODEC_BENCH_SAMPLES", 10) as usize)
        .measurement_time(Duration::from_secs(env_or("CODEC_BENCH_SECS", 3)))
        .warm_up_time(Duration::from_secs(1));
}

/// `n` f32 values, every page written (so neither side pays first-touch page faults).
fn f32_values(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32).collect()
}

/// A destination for the memcpy baseline, every page touched.
fn touched(len: usize) -> Vec<u8> {
    vec![1u8; len]
}

fn write_contiguous(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_contiguous");
    configure(&mut group);
    for bytes in [MIB, 64 * MIB, 256 * MIB] {
        if bytes >= 64 * MIB {
            group.sampling_mode(SamplingMode::Flat);
        }
        let tensor = Tensor::from_vec(f32_values(bytes / 4), vec![bytes / 4]).unwrap();
        let size = tensor_size(&tensor).unwrap();
        let mut sink = MemorySink::preallocated(size);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(BenchmarkId::new("tensor_ipc", label(bytes)), |b| {
            b.iter(|| {
                sink.clear();
                black_box(write_tensor(black_box(&tensor), &mut sink).unwrap());
            })
        });
        drop(sink);
        let src = tensor.as_bytes();
        let mut dst = touched(bytes);
        group.bench_function(BenchmarkId::new("memcpy", label(bytes)), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(src));
                black_box(&mut dst);
            })
        });
    }
    group.finish();
}

fn write_transposed(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_transposed");
    configure(&mut group);
    group.sampling_mode(SamplingMode::Flat);
    let bytes = 256 * MIB;
    let n = bytes / 4 / (64 * 16);
    let base = Tensor::from_vec(f32_values(bytes / 4), vec![64, n, 16]).unwrap();
    assert_eq!(base.strides(), &[n * 64, 64, 4]);
    // transpose(1, 0, 2): shape (N, 64, 16) over the same memory.
    let view = Tensor::with_layout(
        DType::Float32,
        base.data().clone(),
        vec![n, 64, 16],
        vec![64, n * 64, 4],
        Vec::new(),
    )
    .unwrap();
    assert!(!view.is_contiguous());
    let size = tensor_size(&view).unwrap();
    let mut sink = MemorySink::preallocated(size);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(BenchmarkId::new("tensor_ipc", label(bytes)), |b| {
        b.iter(|| {
            sink.clear();
            black_box(write_tensor(black_box(&view), &mut sink).unwrap());
        })
    });
    drop(sink);
    let src = base.as_bytes();
    let mut dst = touched(bytes);
    group.bench_function(BenchmarkId::new("memcpy", label(bytes)), |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&mut dst);
        })
    });
    group.finish();
}

/// A `(1, 4096, 4096)` tensor of `dtype` whose two inner axes are transposed (strides
/// `[4096 * 4096 * w, w, 4096 * w]`: neither row- nor column-major), over row-major data.
fn transposed_2d(dtype: DType) -> (Tensor<'static>, Vec<u8>) {
    const N: usize = 4096;
    let w = dtype.byte_width();
    let bytes: Vec<u8> = (0..N * N * w).map(|i| (i % 251) as u8).collect();
    let view = Tensor::with_layout(
        dtype,
        TensorData::Shared(tensor_ipc::Buffer::from_vec(bytes.clone())),
        vec![1, N, N],
        vec![N * N * w, w, N * w],
        Vec::new(),
    )
    .unwrap();
    assert!(!view.is_contiguous());
    (view, bytes)
}

fn write_transposed_2d(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_transposed_2d");
    configure(&mut group);
    group.sampling_mode(SamplingMode::Flat);
    for dtype in [DType::UInt8, DType::UInt16, DType::Float32, DType::Float64] {
        let (view, src) = transposed_2d(dtype);
        let name = format!("{}x4096x4096", dtype.name());
        let mut sink = MemorySink::preallocated(tensor_size(&view).unwrap());
        group.throughput(Throughput::Bytes(src.len() as u64));
        group.bench_function(BenchmarkId::new("tensor_ipc", &name), |b| {
            b.iter(|| {
                sink.clear();
                black_box(write_tensor(black_box(&view), &mut sink).unwrap());
            })
        });
        drop(sink);
        let mut dst = touched(src.len());
        group.bench_function(BenchmarkId::new("memcpy", &name), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    group.finish();
}

/// The message of an f32 tensor of `bytes` bytes. The tensor's data is a zeroed allocation
/// (`calloc`: the pages are not touched until read), so 1 GiB costs one copy to set up.
fn message_of(bytes: usize) -> Vec<u8> {
    let zeros = vec![0u8; bytes];
    let tensor = Tensor::new(
        DType::Float32,
        TensorData::Borrowed(&zeros),
        vec![bytes / 4],
    )
    .unwrap();
    let mut message = Vec::with_capacity(tensor_size(&tensor).unwrap());
    write_tensor(&tensor, &mut message).unwrap();
    message
}

/// Iterations per timed chunk in the read rows.
const READ_CHUNK: usize = 256;

/// Times `iters` calls of `routine` on inputs from `setup`, in chunks of [`READ_CHUNK`]; returns
/// `iters` times the median chunk's time per call. Inputs are made before, outputs dropped
/// after, each chunk's timed loop.
fn chunked_median<I, O>(
    iters: u64,
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> Duration {
    let mut per_call = Vec::new();
    let mut inputs = Vec::with_capacity(READ_CHUNK);
    let mut outputs = Vec::with_capacity(READ_CHUNK);
    let mut left = iters as usize;
    while left > 0 {
        let k = left.min(READ_CHUNK);
        inputs.extend((0..k).map(|_| setup()));
        let start = Instant::now();
        for input in inputs.drain(..) {
            outputs.push(routine(black_box(input)));
        }
        let elapsed = start.elapsed();
        black_box(&outputs);
        outputs.clear();
        per_call.push(elapsed.as_secs_f64() / k as f64);
        left -= k;
    }
    per_call.sort_by(f64::total_cmp);
    Duration::from_secs_f64(per_call[per_call.len() / 2] * iters as f64)
}

/// A private directory for the mmap'd files, removed when dropped (in the system temporary
/// directory: other builds may clean `target/tmp` while the bench runs).
fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("codec-bench-")
        .tempdir()
        .unwrap()
}

fn read(c: &mut Criterion) {
    let sizes = [KIB, MIB, 64 * MIB, GIB];
    let dir = scratch_dir();
    let mut memory = Vec::new();
    let mut files = Vec::new();
    for bytes in sizes {
        let message = message_of(bytes);
        let path = dir.path().join(format!("f32-{}.arrow", label(bytes)));
        std::fs::write(&path, &message).unwrap();
        files.push(path);
        memory.push(BufferSource::new(tensor_ipc::Buffer::from_vec(message)));
    }

    let mut group = c.benchmark_group("read_memory");
    configure(&mut group);
    for (bytes, source) in sizes.iter().zip(&memory) {
        group.bench_function(label(*bytes), |b| {
            b.iter_custom(|iters| {
                chunked_median(
                    iters,
                    || source.clone(),
                    |mut s| read_tensor(&mut s).unwrap(),
                )
            })
        });
    }
    group.finish();
    drop(memory);

    let mut group = c.benchmark_group("read_mmap");
    configure(&mut group);
    for (bytes, path) in sizes.iter().zip(&files) {
        let source = FileSource::open(path).unwrap();
        // Fault in the header page once, as a reader that keeps its mapping would have.
        assert_eq!(read_tensor(&mut source.clone()).unwrap().len() * 4, *bytes);
        group.bench_function(label(*bytes), |b| {
            b.iter_custom(|iters| {
                chunked_median(
                    iters,
                    || source.clone(),
                    |mut s| read_tensor(&mut s).unwrap(),
                )
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("open_read_mmap");
    configure(&mut group);
    for (bytes, path) in sizes.iter().zip(&files) {
        group.bench_function(label(*bytes), |b| {
            b.iter_custom(|iters| {
                chunked_median(
                    iters,
                    || (),
                    |()| {
                        let mut source = FileSource::open(black_box(path)).unwrap();
                        read_tensor(&mut source).unwrap()
                    },
                )
            })
        });
    }
    group.finish();
    drop(files);
    drop(dir);
}

criterion_group!(
    benches,
    write_contiguous,
    write_transposed,
    write_transposed_2d,
    read
);
criterion_main!(benches);
