//! Many clients of every kind on one small store at once: Rust clients (which clean up after
//! themselves) beside raw clients that hang up in every state, and a garbage sender.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use tensor_ipc_plasma_client::{ClientOptions, ObjectId, PlasmaClient};
use tensor_ipc_plasma_protocol::Status;

use crate::raw_client::{Client, assert_alive, header, id, store};

/// Several clients do random work on a small store, sharing a small id space (so creates
/// collide): three with the Rust client, which cleans up after itself, and three raw clients
/// that hang up in every state (objects unsealed, objects got and never released,
/// subscriptions open); meanwhile another thread keeps sending garbage. Afterwards nothing is
/// left referenced, and once everything is evicted the empty store holds an object of exactly
/// its capacity, so no allocation leaked.
#[test]
fn chaos_leaves_no_reference_and_no_allocation_behind() {
    const CAPACITY: u64 = 8 << 20;
    let s = store(CAPACITY);
    let socket = s.path();
    let deadline = Instant::now() + Duration::from_millis(2500);
    let workers: Vec<_> = (0..6u64)
        .map(|worker| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (worker + 1);
                let mut next = move |n: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % n
                };
                let mut ops = 0u64;
                while Instant::now() < deadline && worker >= 3 {
                    // A raw client that leaves abruptly: whatever it created unsealed, got
                    // or subscribed to is left for the store's disconnect cleanup.
                    let mut raw = Client::connect(&socket);
                    let _subscription = (next(4) == 0).then(|| raw.subscribe());
                    for _ in 0..next(40) {
                        ops += 1;
                        let id = ObjectId([next(24) as u8; 20]);
                        match next(6) {
                            0 | 1 => {
                                let size = 1 + next(512 << 10);
                                if let Ok(spec) = raw.create_full(id, size, 1, true) {
                                    raw.write(&spec, 0, &vec![worker as u8; size as usize]);
                                    if next(2) == 0 {
                                        raw.seal(id);
                                    }
                                }
                            }
                            2 | 3 => {
                                raw.get(&[id], i64::try_from(next(3)).unwrap());
                            }
                            4 => {
                                raw.delete(&[id]);
                            }
                            _ => {
                                raw.evict(next(1 << 20));
                            }
                        }
                    }
                }
                while Instant::now() < deadline {
                    let options = ClientOptions {
                        request_timeout: Duration::from_secs(10),
                        ..Default::default()
                    };
                    let client = PlasmaClient::connect_with(&socket, options).unwrap();
                    let _subscription = (next(4) == 0).then(|| client.subscribe().unwrap());
                    let mut held = Vec::new();
                    let mut unsealed = Vec::new();
                    for _ in 0..next(40) {
                        ops += 1;
                        let id = ObjectId([next(24) as u8; 20]);
                        match next(7) {
                            0 | 1 => {
                                let size = 1 + next(512 << 10) as usize;
                                if let Ok(mut object) = client.create(id, size, b"m") {
                                    object.data_mut().fill(worker as u8);
                                    match next(3) {
                                        0 => unsealed.push(object),
                                        1 => drop(object.abort()),
                                        _ => drop(object.seal()),
                                    }
                                }
                            }
                            2 | 3 => {
                                if let Ok(Some(object)) =
                                    client.get_one(id, Some(Duration::from_millis(next(3))))
                                {
                                    let size = object.data.len();
                                    assert!(object.data.as_slice().iter().all(|&b| b < 6));
                                    assert!(size >= 1, "sealed objects have data here");
                                    held.push(object);
                                }
                            }
                            4 => {
                                let _ = client.delete_one(id);
                            }
                            5 => drop(held.pop()),
                            _ => {
                                let _ = client.evict(next(1 << 20));
                            }
                        }
                    }
                    // Leave with whatever is still held or unsealed: the client goes
                    // first, its buffers and unsealed objects after it.
                    drop(client);
                    drop((held, unsealed));
                }
                ops
            })
        })
        .collect();
    let garbage = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            let mut n = 0u8;
            while Instant::now() < deadline {
                if let Ok(mut stream) = UnixStream::connect(&socket) {
                    let mut bytes = header(0, i64::from(n % 40), 64);
                    bytes.extend((0..64).map(|i| i ^ n));
                    let _ = stream.write_all(&bytes[..(n as usize * 7) % bytes.len() + 1]);
                }
                n = n.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    garbage.join().unwrap();
    assert!(ops > 100, "only {ops} operations");
    eprintln!("chaos: {ops} operations");

    let handle = s.handle.as_ref().unwrap();
    let t0 = Instant::now();
    while handle.client_count() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "clients linger");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = s.client();
    let list = c.list();
    assert!(
        list.iter().all(|o| o.ref_count == 0 && o.digest.len() == 8),
        "only sealed, unreferenced objects may remain: {list:?}"
    );
    c.evict(u64::MAX);
    assert!(c.list().is_empty());
    // The whole capacity is free again.
    let spec = c.create(id(0x77), CAPACITY);
    assert_eq!(spec.data_size, CAPACITY);
    assert_eq!(c.seal(id(0x77)), Status::Ok);
    c.release(id(0x77));
    assert_eq!(c.delete(&[id(0x77)]), vec![Status::Ok]);
    assert_alive(&s);
}
