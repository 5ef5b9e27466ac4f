//! Every sink beside its baseline, in one run (issue 15): a float32 tensor of 1 MiB, 64 MiB
//! and 256 MiB, contiguous and as the 3-D transpose `(64, N, 16)` -> `(N, 64, 16)` (byte
//! strides `[64, N * 64, 4]`, 64-byte runs), written by `write_tensor` into
//!
//! * `vec`: a `Vec<u8>` with the capacity already there (`clear` per iteration);
//! * `memory`: a preallocated `MemorySink` (`clear` per iteration);
//! * `plasma`: a `PlasmaSink` into our `plasma-store` (create, copy with the seal digest,
//!   seal; the delete after each put is not timed), when the store binary is found;
//! * `file_create`: `FileSink::create` + `write_tensor` + `finish` (fsync);
//! * `file_append`: `FileSink::append` to a file holding one small message, + `finish`;
//! * `file_atomic`: `FileSink::create_atomic` + `write_tensor` + `finish` (fsync, rename,
//!   directory fsync);
//! * `file_write`: `FileSink::create` + `write_tensor`, no `finish` (what the page cache costs).
//!
//! each right after its baseline, in the same process: `memcpy` (`copy_from_slice` of the
//! body's bytes into a preallocated, touched buffer) for the memory sinks, `write_all_sync`
//! (`File::create`, `write_all` and `sync_all` of the body's bytes) for the finished file
//! sinks, and `write_all` (`File::create` and `write_all`) for `file_write`. Each sink row
//! `<sink>/<layout>` has its own baseline row `<sink>.baseline/<layout>` measured just before
//! it, so that a ratio compares two measurements taken under the same conditions on a shared
//! machine. `benches/sinks.sh` prints the ratios.
//!
//! Files go to `SINK_BENCH_DIR` (default: the system temporary directory), so the medium is
//! whatever that is; the plasma rows need `target/release/plasma-store` (or `PLASMA_STORE`).
//! `SINK_BENCH_SAMPLES` (default 10), `SINK_BENCH_SECS` (default 3) and `SINK_BENCH_SIZES`
//! (MiB, comma-separated; default `1,64,256`) shorten a run.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main,
    measurement::WallTime,
};
use tensor_ipc::{DType, Tensor, tensor_size, write_tensor};
use tensor_ipc_file::FileSink;
use tensor_ipc_memory::MemorySink;
use tensor_ipc_plasma_client::{ObjectId, PlasmaClient, PlasmaSink};

const MIB: usize = 1 << 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sizes() -> Vec<usize> {
    std::env::var("SINK_BENCH_SIZES")
        .unwrap_or_else(|_| "1,64,256".into())
        .split(',')
        .map(|s| s.trim().parse::<usize>().expect("a size in MiB") * MIB)
        .collect()
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    group
        .sample_size(env_or("SINK_BENCH_SAMPLES", 10) as usize)
        .measurement_time(Duration::from_secs(env_or("SINK_BENCH_SECS", 3)))
        .warm_up_time(Duration::from_secs(1));
    if bytes >= 64 * MIB {
        group.sampling_mode(SamplingMode::Flat);
    }
}

/// The two tensors of `bytes` bytes: contiguous, and the transposed 3-D view of the same data.
fn tensors(bytes: usize) -> (Tensor<'static>, Tensor<'static>) {
    let n = bytes / 4 / (64 * 16);
    let values: Vec<f32> = (0..bytes / 4).map(|i| i as f32).collect();
    let base = Tensor::from_vec(values, vec![64, n, 16]).unwrap();
    let transposed = Tensor::with_layout(
        DType::Float32,
        base.data().clone(),
        vec![n, 64, 16],
        vec![64, n * 64, 4],
        Vec::new(),
    )
    .unwrap();
    assert!(!transposed.is_contiguous());
    (base, transposed)
}

fn label(bytes: usize) -> String {
    if bytes >= MIB {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{}KiB", bytes / 1024)
    }
}

/// Our plasma-store, started for the run and stopped when dropped.
struct Store {
    child: Child,
    dir: tempfile::TempDir,
}

impl Store {
    fn start() -> Option<(Store, PlasmaClient)> {
        let binary = std::env::var_os("PLASMA_STORE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/plasma-store")
            });
        if !binary.exists() {
            eprintln!(
                "sinks bench: no plasma-store at {} (cargo build --release -p \
                 tensor-ipc-plasma-store, or set PLASMA_STORE): the plasma rows are skipped",
                binary.display()
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("plasma.sock");
        let child = Command::new(&binary)
            .arg("-s")
            .arg(&socket)
            .args(["-m", "1000000000"])
            .spawn()
            .expect("start plasma-store");
        let client = PlasmaClient::connect(&socket).expect("connect to plasma-store");
        // Let the store pre-fault its segment before anything is timed.
        std::thread::sleep(Duration::from_secs(8));
        Some((Store { child, dir }, client))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

fn object_id(n: u64) -> ObjectId {
    let mut bytes = [0x5Au8; 20];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    ObjectId(bytes)
}

/// Times `iters` puts of `tensor` into fresh objects, deleting each outside the timed part.
fn plasma_puts(client: &PlasmaClient, tensor: &Tensor<'_>, iters: u64, next: &mut u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        *next += 1;
        let id = object_id(*next);
        let start = Instant::now();
        write_tensor(tensor, &mut PlasmaSink::new(client, id)).unwrap();
        total += start.elapsed();
        client.delete_one(id).unwrap();
    }
    total
}

fn memory_sinks(c: &mut Criterion, plasma: Option<&PlasmaClient>) {
    let mut next_id = 0u64;
    for bytes in sizes() {
        let (contiguous, transposed) = tensors(bytes);
        let src = contiguous.as_bytes();
        let mut dst = vec![1u8; bytes];
        let mut memcpy = |group: &mut BenchmarkGroup<'_, WallTime>, sink: &str, layout: &str| {
            group.bench_function(BenchmarkId::new(format!("{sink}.baseline"), layout), |b| {
                b.iter(|| {
                    dst.copy_from_slice(black_box(src));
                    black_box(&mut dst);
                })
            });
        };
        let mut group = c.benchmark_group(format!("sinks_memory/{}", label(bytes)));
        configure(&mut group, bytes);
        for (layout, tensor) in [("contiguous", &contiguous), ("transposed", &transposed)] {
            let size = tensor_size(tensor).unwrap();
            let mut vec = Vec::with_capacity(size);
            write_tensor(tensor, &mut vec).unwrap();
            memcpy(&mut group, "vec", layout);
            group.bench_function(BenchmarkId::new("vec", layout), |b| {
                b.iter(|| {
                    vec.clear();
                    black_box(write_tensor(black_box(tensor), &mut vec).unwrap());
                })
            });
            drop(vec);
            let mut sink = MemorySink::preallocated(size);
            memcpy(&mut group, "memory", layout);
            group.bench_function(BenchmarkId::new("memory", layout), |b| {
                b.iter(|| {
                    sink.clear();
                    black_box(write_tensor(black_box(tensor), &mut sink).unwrap());
                })
            });
            drop(sink);
            if let Some(client) = plasma {
                memcpy(&mut group, "plasma", layout);
                group.bench_function(BenchmarkId::new("plasma", layout), |b| {
                    b.iter_custom(|iters| plasma_puts(client, tensor, iters, &mut next_id))
                });
            }
        }
        group.finish();
    }
}

/// A directory for the files (removed when dropped).
fn scratch_dir() -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix("sinks-bench-");
    match std::env::var_os("SINK_BENCH_DIR") {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .unwrap()
}

fn file_sinks(c: &mut Criterion) {
    let dir = scratch_dir();
    let path = dir.path().join("out.tensor");
    let small = Tensor::from_vec(vec![1u8; 64], vec![64]).unwrap();
    let mut prefix = Vec::new();
    write_tensor(&small, &mut prefix).unwrap();
    for bytes in sizes() {
        let (contiguous, transposed) = tensors(bytes);
        let src = contiguous.as_bytes();
        let write_all = |group: &mut BenchmarkGroup<'_, WallTime>, sink: &str, layout, sync| {
            group.bench_function(BenchmarkId::new(format!("{sink}.baseline"), layout), |b| {
                b.iter(|| {
                    let mut file = File::create(&path).unwrap();
                    file.write_all(black_box(src)).unwrap();
                    if sync {
                        file.sync_all().unwrap();
                    }
                })
            });
        };
        let mut group = c.benchmark_group(format!("sinks_file/{}", label(bytes)));
        configure(&mut group, bytes);
        for (layout, tensor) in [("contiguous", &contiguous), ("transposed", &transposed)] {
            write_all(&mut group, "file_create", layout, true);
            group.bench_function(BenchmarkId::new("file_create", layout), |b| {
                b.iter(|| {
                    let mut sink = FileSink::create(&path).unwrap();
                    write_tensor(black_box(tensor), &mut sink).unwrap();
                    sink.finish().unwrap();
                })
            });
            write_all(&mut group, "file_append", layout, true);
            group.bench_function(BenchmarkId::new("file_append", layout), |b| {
                b.iter_batched(
                    || std::fs::write(&path, &prefix).unwrap(),
                    |()| {
                        let mut sink = FileSink::append(&path).unwrap();
                        write_tensor(black_box(tensor), &mut sink).unwrap();
                        sink.finish().unwrap();
                    },
                    criterion::BatchSize::PerIteration,
                )
            });
            write_all(&mut group, "file_atomic", layout, true);
            group.bench_function(BenchmarkId::new("file_atomic", layout), |b| {
                b.iter(|| {
                    let mut sink = FileSink::create_atomic(&path).unwrap();
                    write_tensor(black_box(tensor), &mut sink).unwrap();
                    sink.finish().unwrap();
                })
            });
            write_all(&mut group, "file_write", layout, false);
            group.bench_function(BenchmarkId::new("file_write", layout), |b| {
                b.iter(|| {
                    let mut sink = FileSink::create(&path).unwrap();
                    write_tensor(black_box(tensor), &mut sink).unwrap();
                })
            });
        }
        group.finish();
    }
}

fn all(c: &mut Criterion) {
    let store = if std::env::var_os("SINK_BENCH_NO_PLASMA").is_some() {
        None
    } else {
        Store::start()
    };
    memory_sinks(c, store.as_ref().map(|(_, client)| client));
    drop(store);
    file_sinks(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
