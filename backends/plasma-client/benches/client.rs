//! Measurements of the Rust Plasma client against a running store (driven by
//! `benches/plasma-client.sh`, which starts the stores and runs the Arrow 11
//! C++ client beside it).
//!
//! ```text
//! cargo bench -p tensor-ipc-plasma-client --bench client -- SOCKET cycles N SIZE
//! cargo bench -p tensor-ipc-plasma-client --bench client -- SOCKET put BYTES REPS
//! cargo bench -p tensor-ipc-plasma-client --bench client -- SOCKET get REPS BYTES...
//! cargo bench -p tensor-ipc-plasma-client --bench client -- - memcpy BYTES REPS
//! ```
//! Each prints one `key=value` line. `REPLY_POLL_US=N` sets the client's reply polling
//! (`ClientOptions::reply_poll`, default 50 µs; 0 turns it off).

use std::time::{Duration, Instant};

use tensor_ipc::{Tensor, read_tensor, tensor_size, write_tensor};
use tensor_ipc_plasma_client::ObjectId;
use tensor_ipc_plasma_client::{PlasmaClient, PlasmaSink, PlasmaSource};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 2 {
        eprintln!(
            "usage: client SOCKET (cycles N SIZE | put BYTES REPS | get REPS BYTES... | memcpy BYTES REPS)"
        );
        return;
    }
    let num = |i: usize| -> usize { args[i].parse().expect("a number") };
    match args[1].as_str() {
        "cycles" => cycles(&connect(&args[0]), num(2), num(3)),
        "put" => put(&connect(&args[0]), num(2), num(3)),
        "get" => {
            let client = connect(&args[0]);
            let reps = num(2);
            for i in 3..args.len() {
                get(&client, num(i), reps);
            }
        }
        "memcpy" => memcpy(num(2), num(3)),
        "phases" => put_phases(&connect(&args[0]), num(2), num(3)),
        "hash" => hash_speed(num(2), num(3)),
        "ops" => ops(&connect(&args[0]), num(2), num(3)),
        other => eprintln!("unknown mode {other}"),
    }
}

/// Connects with the default options, or with `REPLY_POLL_US` microseconds of reply polling
/// when that variable is set (0 turns polling off).
fn connect(socket: &str) -> PlasmaClient {
    let mut options = tensor_ipc_plasma_client::ClientOptions::default();
    if let Some(us) = std::env::var("REPLY_POLL_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.reply_poll = Duration::from_micros(us);
    }
    PlasmaClient::connect_with(socket, options).expect("connect")
}

fn id(n: u64, tag: u8) -> ObjectId {
    let mut b = [tag; 20];
    b[..8].copy_from_slice(&n.to_le_bytes());
    b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    ObjectId(b)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// N x (create SIZE, write, seal, get, read, drop, delete): 4 round trips
/// and 2 one-way releases, as the C++ client's cycle.
fn cycles(client: &PlasmaClient, n: usize, size: usize) {
    let payload = vec![7u8; size];
    let start = Instant::now();
    for i in 0..n {
        let id = id(i as u64, 1);
        let mut obj = client.create(id, size, b"").expect("create");
        obj.data_mut().copy_from_slice(&payload);
        obj.seal().expect("seal");
        let got = client.get_one(id, None).expect("get").expect("sealed");
        std::hint::black_box(got.data.as_slice().first());
        drop(got);
        client.delete_one(id).expect("delete");
    }
    let secs = start.elapsed().as_secs_f64();
    println!("cycles_per_s={:.0}", n as f64 / secs);
}

/// A float32 tensor of BYTES bytes through PlasmaSink (create, write, seal
/// with digest), REPS times with fresh ids.
fn put(client: &PlasmaClient, bytes: usize, reps: usize) {
    let tensor = Tensor::from_vec(vec![2.0f32; bytes / 4], vec![bytes / 4]).expect("tensor");
    let size = tensor_size(&tensor).expect("size");
    let mut times = Vec::new();
    for r in 0..reps {
        let id = id(r as u64, 2);
        let t = Instant::now();
        write_tensor(&tensor, &mut PlasmaSink::new(client, id)).expect("put");
        times.push(t.elapsed());
        client.delete_one(id).expect("delete");
    }
    let first = times[0];
    let med = median(times);
    println!(
        "put_ms={:.2} gbps={:.3} first_ms={:.2}",
        med.as_secs_f64() * 1e3,
        size as f64 / med.as_secs_f64() / 1e9,
        first.as_secs_f64() * 1e3
    );
}

/// Get + read_tensor (zero-copy) of a tensor of BYTES bytes, median of REPS.
fn get(client: &PlasmaClient, bytes: usize, reps: usize) {
    let tensor = Tensor::from_vec(vec![1.0f32; bytes / 4], vec![bytes / 4]).expect("tensor");
    let oid = id(bytes as u64, 3);
    write_tensor(&tensor, &mut PlasmaSink::new(client, oid)).expect("put");
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let back =
            read_tensor(&mut PlasmaSource::get(client, oid, None).expect("get")).expect("read");
        std::hint::black_box(back.shape());
        drop(back);
        times.push(t.elapsed());
    }
    client.delete_one(oid).expect("delete");
    println!(
        "get_bytes={bytes} get_us={:.1}",
        median(times).as_secs_f64() * 1e6
    );
}

/// Warm single-thread copy of BYTES bytes, the reference for `put`.
fn memcpy(bytes: usize, reps: usize) {
    let src = vec![2u8; bytes];
    let mut dst = vec![0u8; bytes];
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&dst);
        times.push(t.elapsed());
    }
    let med = median(times);
    println!(
        "memcpy_ms={:.2} gbps={:.3}",
        med.as_secs_f64() * 1e3,
        bytes as f64 / med.as_secs_f64() / 1e9
    );
}

/// Per-operation medians of the cycle (diagnostics).
#[allow(dead_code)]
pub fn ops(client: &PlasmaClient, n: usize, size: usize) {
    let payload = vec![7u8; size];
    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for i in 0..n {
        let id = id(i as u64, 9);
        let s = Instant::now();
        let mut obj = client.create(id, size, b"").expect("create");
        t[0].push(s.elapsed());
        obj.data_mut().copy_from_slice(&payload);
        let s = Instant::now();
        obj.seal().expect("seal");
        t[1].push(s.elapsed());
        let s = Instant::now();
        let got = client.get_one(id, None).expect("get").expect("sealed");
        t[2].push(s.elapsed());
        let s = Instant::now();
        drop(got);
        t[3].push(s.elapsed());
        let s = Instant::now();
        client.delete_one(id).expect("delete");
        t[4].push(s.elapsed());
    }
    let names = ["create", "seal", "get", "drop", "delete"];
    for (name, v) in names.iter().zip(t) {
        print!("{name}_us={:.1} ", median(v).as_secs_f64() * 1e6);
    }
    println!();
}

/// Phases of a raw put of BYTES (diagnostics): create, copy, digest, seal.
#[allow(dead_code)]
pub fn put_phases(client: &PlasmaClient, bytes: usize, reps: usize) {
    let src = vec![3u8; bytes];
    for r in 0..reps {
        let id = id(r as u64, 10);
        let t0 = Instant::now();
        let mut obj = client.create(id, bytes, b"").expect("create");
        let t1 = Instant::now();
        obj.data_mut().copy_from_slice(&src);
        let t2 = Instant::now();
        std::hint::black_box(obj.digest());
        let t3 = Instant::now();
        obj.seal().expect("seal");
        let t4 = Instant::now();
        client.delete_one(id).expect("delete");
        println!(
            "create_ms={:.2} copy_ms={:.2} digest_ms={:.2} seal_ms={:.2}",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            (t3 - t2).as_secs_f64() * 1e3,
            (t4 - t3).as_secs_f64() * 1e3
        );
    }
}

/// Digest throughput on BYTES of heap memory (diagnostics).
#[allow(dead_code)]
pub fn hash_speed(bytes: usize, reps: usize) {
    let src = vec![3u8; bytes];
    let mut t = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..reps {
        let s = Instant::now();
        std::hint::black_box(xxhash_rust::xxh64::xxh64(&src, 0));
        t[0].push(s.elapsed());
        let s = Instant::now();
        let mut st = xxhash_rust::xxh64::Xxh64::new(0);
        st.update(&src);
        std::hint::black_box(st.digest());
        t[1].push(s.elapsed());
        let s = Instant::now();
        std::hint::black_box(tensor_ipc_plasma_client::object_hash(&src, b""));
        t[2].push(s.elapsed());
    }
    let [a, b, c] = t.map(|v| bytes as f64 / median(v).as_secs_f64() / 1e9);
    println!("oneshot_gbps={a:.2} streaming_gbps={b:.2} object_hash_gbps={c:.2}");
}
