//! The store's resource limits, on the binary: the one memory budget of all subscribers'
//! notification queues, and running out of file descriptors.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{Message, ObjectId, Status};

use crate::cli::StoreProcess;
use crate::raw_client::*;

fn numbered(n: u32) -> ObjectId {
    let mut id = [0x5b; 20];
    id[..4].copy_from_slice(&n.to_le_bytes());
    ObjectId(id)
}

/// Twenty subscribers that never read cost the store at most the notification budget, not
/// a copy of every notification each (before the budget: about 170 MB for these 60,000
/// notifications); the slowest are dropped, with a log line, and a subscriber that reads
/// gets every notification.
#[test]
fn idle_subscribers_share_one_bounded_budget() {
    const OBJECTS: u32 = 60_000;
    let store = StoreProcess::start_logged(&[
        "-m",
        "64M",
        "--prefault=false",
        "--notification-memory",
        "4M",
    ]);
    let mut producer = Client::connect(&store.socket);
    producer.connect_msg();
    let mut reading_client = Client::connect(&store.socket);
    let mut reader = reading_client.subscribe();
    reading_client.connect_msg();
    let mut idle: Vec<(Client, UnixStream)> = (0..20)
        .map(|_| {
            let mut c = Client::connect(&store.socket);
            let sub = c.subscribe();
            // Served after the Subscribe: the subscription is in place.
            c.connect_msg();
            (c, sub)
        })
        .collect();
    let rss_before = store.rss();
    let counting = std::thread::spawn(move || {
        let mut seen = 0u32;
        while seen < OBJECTS {
            seen += next_notification(&mut reader).len() as u32;
        }
        seen
    });
    for n in 0..OBJECTS {
        let reply = producer.request(&CreateAndSealRequest {
            object_id: numbered(n),
            evict_if_full: true,
            data: vec![1; 8],
            metadata: vec![],
            digest: DIGEST.to_vec(),
        });
        assert_eq!(reply.error, Status::Ok);
    }
    assert_eq!(counting.join().unwrap(), OBJECTS);
    let grown = store.rss().saturating_sub(rss_before);
    assert!(
        grown < 48 << 20,
        "the store grew by {} MB with 20 idle subscribers",
        grown >> 20
    );
    // The idle subscribers were dropped: after what their socket buffers hold, end of file.
    for (_, sub) in &mut idle {
        let mut rest = Vec::new();
        sub.read_to_end(&mut rest)
            .expect("a dropped subscription's socket is closed");
    }
    let log = store.log();
    assert!(
        log.contains("dropping the subscription of client") && log.contains("slowest reader"),
        "{log}"
    );
    // The store serves on.
    assert_eq!(producer.connect_msg(), 64 << 20);
}

/// When the process has no descriptor left for a new connection, the client is closed at
/// once (the store keeps a spare descriptor for that) with a log line, instead of waiting in
/// the backlog with no answer; once clients go, new ones are served again.
#[test]
fn out_of_descriptors_new_clients_are_refused_at_once() {
    let store = StoreProcess::start_logged(&["-m", "1M"]);
    let base = store.quiet_fd_count() as u64;
    let limit = rustix::process::Rlimit {
        current: Some(base + 16),
        maximum: Some(base + 16),
    };
    rustix::process::prlimit(Some(store.pid()), rustix::process::Resource::Nofile, limit).unwrap();
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let mut c = Client::connect(&store.socket);
        c.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let t0 = Instant::now();
        match answered(&mut c) {
            false => {
                assert!(
                    t0.elapsed() < Duration::from_secs(2),
                    "a refused client waited {:?}",
                    t0.elapsed()
                );
                refused += 1;
            }
            true => served.push(c),
        }
    }
    assert!(
        served.len() >= 8 && refused >= 10,
        "{} served, {refused} refused",
        served.len()
    );
    assert!(
        store
            .log()
            .contains("refusing a client: out of file descriptors"),
        "{}",
        store.log()
    );
    drop(served);
    let t0 = Instant::now();
    loop {
        if answered(&mut Client::connect(&store.socket)) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never served again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the store answers a Connect on this connection (false: it closed it).
fn answered(c: &mut Client) -> bool {
    use std::io::Write;
    if c.stream.write_all(&ConnectRequest.encode_frame()).is_err() {
        return false;
    }
    let mut header = [0u8; 24];
    matches!(c.stream.read(&mut header), Ok(n) if n > 0)
}
