//! Fault injection: client processes killed with SIGKILL at random points (after a create,
//! in the middle of writing an object, in a blocking Get, subscribed, holding objects from
//! Gets, in the middle of a frame), a few hundred of them, against the store binary. After
//! that no reference, no unsealed object, no allocation and no descriptor is left: the
//! store's descriptor count is back to where it started and an object of the full capacity
//! fits.
//!
//! The clients are this test binary run again (`fault_client_process`, ignored unless
//! `PLASMA_FAULT_CLIENT` names a socket). `PLASMA_FAULT_DEATHS` (default 300) sets how many
//! die against each of the two stores (a thread per client, and the event loop's workers);
//! `PLASMA_FAULT_SEED` replays a run (each run prints its seed).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{Message, ObjectId, Status};

use crate::cli::StoreProcess;
use crate::raw_client::*;

/// A small deterministic generator (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What a killed client was doing.
const MODES: [&str; 7] = [
    "after-create",
    "mid-write",
    "blocking-get",
    "subscribed",
    "holding-gets",
    "mid-frame",
    "mixed",
];

fn random_id(rng: &mut Rng) -> ObjectId {
    ObjectId(std::array::from_fn(|_| rng.next() as u8))
}

/// The client process: does what `mode` says until it is killed.
#[test]
#[ignore = "a client process of faults::clients_killed_at_random_points_leave_nothing_behind"]
fn fault_client_process() {
    let Ok(socket) = std::env::var("PLASMA_FAULT_CLIENT") else {
        return;
    };
    let mode = std::env::var("PLASMA_FAULT_MODE").unwrap();
    let seed: u64 = std::env::var("PLASMA_FAULT_SEED").unwrap().parse().unwrap();
    let mut rng = Rng::new(seed);
    let mut c = Client::connect(std::path::Path::new(&socket));
    c.connect_msg();
    loop {
        let mode = if mode == "mixed" {
            MODES[rng.below(MODES.len() as u64 - 1) as usize]
        } else {
            mode.as_str()
        };
        victim_step(&mut c, mode, &mut rng);
    }
}

/// One step of a client that is about to be killed.
fn victim_step(c: &mut Client, mode: &str, rng: &mut Rng) {
    let id = random_id(rng);
    match mode {
        "after-create" => {
            let _ = c.create_full(id, 1 + rng.below(1 << 20), rng.below(64), true);
            std::thread::sleep(Duration::from_millis(rng.below(20)));
        }
        "mid-write" => {
            if let Ok(spec) = c.create_full(id, 4 << 20, 0, true) {
                for chunk in 0..64u64 {
                    c.write(&spec, chunk << 16, &[chunk as u8; 1 << 16]);
                    std::thread::sleep(Duration::from_micros(rng.below(500)));
                }
                c.seal(id);
                c.release(id);
            }
        }
        "blocking-get" => {
            let _ = c.get(&[id], -1);
        }
        "subscribed" => {
            let sub = c.subscribe();
            for _ in 0..50 {
                c.request(&CreateAndSealRequest {
                    object_id: random_id(rng),
                    evict_if_full: true,
                    data: vec![3; 100],
                    metadata: vec![],
                    digest: DIGEST.to_vec(),
                });
            }
            std::mem::forget(sub);
        }
        "holding-gets" => {
            if let Ok(spec) = c.create_full(id, 1 + rng.below(256 << 10), 0, true) {
                c.write(&spec, 0, b"held");
                c.seal(id);
                c.get(&[id], 0);
                c.get(&[id, random_id(rng)], 0);
            }
        }
        "mid-frame" => {
            let frame = ListRequest.encode_frame();
            let cut = 1 + rng.below(frame.len() as u64 - 1) as usize;
            let _ = c.stream.write_all(&frame[..cut]);
            std::thread::sleep(Duration::from_secs(10));
        }
        _ => unreachable!("mode {mode}"),
    }
}

fn spawn_victim(socket: &std::path::Path, mode: &str, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "faults::fault_client_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env("PLASMA_FAULT_CLIENT", socket)
        .env("PLASMA_FAULT_MODE", mode)
        .env("PLASMA_FAULT_SEED", seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kills `deaths` clients of the store at random points, four alive at a time, checking
/// every so often that a fresh client is served; then checks that nothing is left.
fn kill_clients(store: &StoreProcess, capacity: u64, deaths: u64, rng: &mut Rng) {
    let start_fds = store.quiet_fd_count();
    let mut alive: Vec<(Child, Instant)> = Vec::new();
    let mut died = 0u64;
    let t0 = Instant::now();
    while died < deaths {
        while alive.len() < 4 {
            let mode = MODES[rng.below(MODES.len() as u64) as usize];
            let child = spawn_victim(&store.socket, mode, rng.next());
            let lifetime = Duration::from_millis(5 + rng.below(150));
            alive.push((child, Instant::now() + lifetime));
        }
        let now = Instant::now();
        let mut i = 0;
        while i < alive.len() {
            if alive[i].1 <= now {
                let (mut child, _) = alive.swap_remove(i);
                let _ = child.kill();
                let _ = child.wait();
                died += 1;
                if died.is_multiple_of(50) {
                    let mut witness = Client::connect(&store.socket);
                    assert_eq!(witness.connect_msg(), capacity as i64);
                }
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for (mut child, _) in alive {
        let _ = child.kill();
        let _ = child.wait();
    }
    eprintln!(
        "fault injection: {died} clients killed in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let fds = store.settle_fds(start_fds, Duration::from_secs(20));
    assert_eq!(fds, start_fds, "descriptors left behind");
    let mut c = Client::connect(&store.socket);
    let objects = c.list();
    assert!(
        objects.iter().all(|o| o.ref_count == 0),
        "references left: {:?}",
        objects
            .iter()
            .filter(|o| o.ref_count > 0)
            .collect::<Vec<_>>()
    );
    assert!(
        objects.iter().all(|o| !o.digest.is_empty()),
        "unsealed objects left"
    );
    // No allocation is left: every remaining object is unused, so an object of the full
    // capacity fits (evicting them all).
    let whole = ObjectId([0xfe; 20]);
    c.create_full(whole, capacity, 0, true)
        .expect("the full capacity fits");
    assert_eq!(c.seal(whole), Status::Ok);
    c.release(whole);
    assert_eq!(c.delete(&[whole]), vec![Status::Ok]);
    drop(c);
    assert_eq!(
        store.settle_fds(start_fds, Duration::from_secs(10)),
        start_fds
    );
}

#[test]
fn clients_killed_at_random_points_leave_nothing_behind() {
    let seed = env_number(
        "PLASMA_FAULT_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    eprintln!("fault injection: PLASMA_FAULT_SEED={seed}");
    let deaths = env_number("PLASMA_FAULT_DEATHS", 300);
    let mut rng = Rng::new(seed);
    let capacity = 64u64 << 20;
    for dedicated in ["8", "0"] {
        let store = StoreProcess::start_logged(&[
            "-m",
            "64M",
            "--prefault=false",
            "--dedicated-clients",
            dedicated,
        ]);
        kill_clients(&store, capacity, deaths / 2, &mut rng);
    }
}
