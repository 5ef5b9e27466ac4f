//! A load test on the store binary: 256 connections doing create / write / seal / get /
//! release / delete cycles for a bounded time (`PLASMA_LOAD_SECONDS`, default 8), each
//! object (up to 16 KiB) carrying a checksum of its payload, each also reading its
//! neighbour's latest object. No request may fail, no byte may be wrong; the figures are printed; at the end no
//! object and no descriptor is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::{ObjectId, ObjectSpec, Status};

use crate::cli::StoreProcess;
use crate::faults::Rng;
use crate::raw_client::*;

const CONNECTIONS: usize = 256;

fn object_id(connection: usize, seq: u64) -> ObjectId {
    let mut id = [0x10; 20];
    id[..4].copy_from_slice(&(connection as u32).to_le_bytes());
    id[4..12].copy_from_slice(&seq.to_le_bytes());
    ObjectId(id)
}

/// FNV-1a, 64 bits.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An object's bytes: the checksum of the payload, then the payload, a function of the id.
fn contents(id: &ObjectId, len: usize) -> Vec<u8> {
    let seed = checksum(&id.0);
    let payload: Vec<u8> = (0..len - 8)
        .map(|i| (seed.wrapping_add(i as u64).wrapping_mul(0x9e37_79b9)) as u8)
        .collect();
    let mut bytes = checksum(&payload).to_le_bytes().to_vec();
    bytes.extend(payload);
    bytes
}

/// Checks bytes read back: the checksum matches the payload, and the payload the id's.
fn verify(id: &ObjectId, bytes: &[u8]) -> bool {
    let (sum, payload) = bytes.split_at(8);
    u64::from_le_bytes(sum.try_into().unwrap()) == checksum(payload)
        && bytes == contents(id, bytes.len()).as_slice()
}

#[derive(Default)]
struct Tally {
    cycles: u64,
    neighbours_read: u64,
    errors: Vec<String>,
    latencies_us: Vec<u32>,
}

fn run_connection(
    store: &std::path::Path,
    me: usize,
    latest: &[AtomicU64],
    until: Instant,
) -> Tally {
    let mut c = Client::connect(store);
    c.connect_msg();
    let mut rng = Rng::new(me as u64 + 1);
    let mut tally = Tally::default();
    let neighbour = (me + 1) % CONNECTIONS;
    let mut seq = 0u64;
    while Instant::now() < until {
        let t0 = Instant::now();
        seq += 1;
        let id = object_id(me, seq);
        let bytes = contents(&id, 8 + 1 + rng.below(16 << 10) as usize);
        let spec = match c.create_full(id, bytes.len() as u64, 0, true) {
            Ok(spec) => spec,
            Err(e) => {
                tally.errors.push(format!("create: {e:?}"));
                continue;
            }
        };
        c.write(&spec, 0, &bytes);
        if c.seal(id) != Status::Ok {
            tally.errors.push("seal".into());
        }
        let got = c.get(&[id], 0)[0];
        if got == ObjectSpec::MISSING || !verify(&id, &c.read(&got)) {
            tally
                .errors
                .push(format!("own object {seq} wrong or missing"));
        }
        let theirs = latest[neighbour].load(Ordering::Acquire);
        if theirs > 0 {
            let their_id = object_id(neighbour, theirs);
            let spec = c.get(&[their_id], 0)[0];
            if spec != ObjectSpec::MISSING {
                if !verify(&their_id, &c.read(&spec)) {
                    tally
                        .errors
                        .push(format!("neighbour's object {theirs} wrong"));
                }
                tally.neighbours_read += 1;
                c.release(their_id);
            }
        }
        // One reference per client, however many creates and gets.
        c.release(id);
        latest[me].store(seq, Ordering::Release);
        // The previous one goes now that the neighbour can read this one.
        if seq > 1 {
            delete(&mut c, object_id(me, seq - 1), &mut tally);
        }
        tally.cycles += 1;
        tally.latencies_us.push(t0.elapsed().as_micros() as u32);
    }
    if seq > 0 {
        delete(&mut c, object_id(me, seq), &mut tally);
    }
    tally
}

fn delete(c: &mut Client, id: ObjectId, tally: &mut Tally) {
    match c.delete(&[id])[0] {
        // In use: a neighbour holds it; deleted when it lets go.
        Status::Ok | Status::ObjectInUse => {}
        e => tally.errors.push(format!("delete: {e:?}")),
    }
}

#[test]
fn many_connections_under_load_get_every_byte_right() {
    let seconds = std::env::var("PLASMA_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let store = StoreProcess::start_logged(&["-m", "256M", "--prefault=false"]);
    let start_fds = store.quiet_fd_count();
    let latest: Arc<Vec<AtomicU64>> =
        Arc::new((0..CONNECTIONS).map(|_| AtomicU64::new(0)).collect());
    let until = Instant::now() + Duration::from_secs(seconds);
    let t0 = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|me| {
                let latest = Arc::clone(&latest);
                let socket = store.socket.clone();
                std::thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn_scoped(scope, move || run_connection(&socket, me, &latest, until))
                    .unwrap()
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let cycles: u64 = tallies.iter().map(|t| t.cycles).sum();
    let neighbours: u64 = tallies.iter().map(|t| t.neighbours_read).sum();
    let mut latencies: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.clone())
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    let fewest = tallies.iter().map(|t| t.cycles).min().unwrap_or(0);
    eprintln!(
        "load: {CONNECTIONS} connections, {seconds} s: {cycles} cycles ({:.0}/s), {neighbours} \
         neighbour reads, cycle latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, fewest \
         cycles of one connection {fewest}",
        cycles as f64 / elapsed,
        at(0.5),
        at(0.99),
        at(1.0),
    );
    let errors: Vec<&String> = tallies.iter().flat_map(|t| &t.errors).collect();
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert!(fewest > 0, "a connection never got a cycle done");
    let fds = store.settle_fds(start_fds, Duration::from_secs(10));
    assert_eq!(fds, start_fds, "descriptors left behind");
    let mut c = Client::connect(&store.socket);
    assert!(c.list().is_empty(), "objects left behind");
}
