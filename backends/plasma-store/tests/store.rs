//! Integration tests: a raw protocol client written here drives a store
//! started in-process through every message type, fd passing, the object
//! lifecycle, eviction, notifications, disconnect cleanup and each
//! robustness case (after which another client must still be served).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::fdpass::send_fd;
use tensor_ipc_plasma_protocol::frame::encode_frame;
use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{Message, ObjectId, ObjectInfo, Status};

use crate::cli::StoreProcess;
use crate::raw_client::*;

#[test]
fn connect_reports_capacity() {
    let s = store(1_000_000);
    assert_eq!(s.client().connect_msg(), 1_000_000);
    let quiet = store_with(2_000_000, |b| b.busy_poll(Duration::ZERO));
    assert_eq!(quiet.client().connect_msg(), 2_000_000);
    assert_alive(&quiet);
    // An absurd polling period is capped, not a panic in a connection thread.
    let eager = store_with(3_000_000, |b| b.busy_poll(Duration::MAX));
    assert_eq!(eager.client().connect_msg(), 3_000_000);
    assert_alive(&eager);
}

/// Requests written back to back in one go (and a Subscribe whose fd follows at once) are
/// all served, in order, whatever the store's read buffering makes of them.
#[test]
fn pipelined_requests_are_served_in_order() {
    let s = store(1 << 20);
    let mut a = s.client();
    let mut bytes = ContainsRequest { object_id: id(1) }.encode_frame();
    bytes.extend(
        CreateAndSealRequest {
            object_id: id(1),
            evict_if_full: true,
            data: b"piped".to_vec(),
            metadata: vec![],
            digest: DIGEST.to_vec(),
        }
        .encode_frame(),
    );
    bytes.extend(ContainsRequest { object_id: id(1) }.encode_frame());
    bytes.extend(SubscribeRequest.encode_frame());
    a.stream.write_all(&bytes).unwrap();
    let (mut sub, theirs) = UnixStream::pair().unwrap();
    send_fd(a.stream.as_fd(), theirs.as_fd()).unwrap();
    drop(theirs);
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    a.send(&ListRequest);
    assert!(matches!(
        a.recv(),
        ContainsReply {
            has_object: false,
            ..
        }
    ));
    assert!(matches!(a.recv(), CreateAndSealReply { error: Status::Ok }));
    assert!(matches!(
        a.recv(),
        ContainsReply {
            has_object: true,
            ..
        }
    ));
    assert_eq!(a.recv::<ListReply>().objects.len(), 1);
    // The subscription (its fd taken from the read-ahead or the socket) replays the object.
    assert_eq!(next_notification(&mut sub)[0].object_id, id(1));
    assert_alive(&s);
}

/// Busy-polling stops soon after the last request: a connected but idle client
/// costs the store no CPU. (The store runs as its own process so that only its CPU time is
/// counted.)
#[test]
fn an_idle_connection_costs_no_cpu() {
    let store = StoreProcess::start(&["-m", "1M", "--busy-poll", "20000"], Stdio::null());
    let mut a = Client::connect(&store.socket);
    a.connect_msg();
    // 20 ms of polling after the reply, then sleep: at most a few ticks.
    let before = store.cpu_ticks();
    std::thread::sleep(Duration::from_millis(800));
    let used = store.cpu_ticks() - before;
    assert_eq!(a.connect_msg(), 1 << 20);
    assert!(used <= 10, "{used} ticks of CPU in 800 ms of idleness");
}

/// With more clients connected than cores, no connection polls: the clients fill the
/// cores themselves. One client's requests 25 ms apart, each followed by 20 ms of polling,
/// would keep a core 80 % busy.
#[test]
fn more_clients_than_cores_turn_the_polling_off() {
    let store = StoreProcess::start(&["-m", "1M", "--busy-poll", "20000"], Stdio::null());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut others: Vec<Client> = (0..cores).map(|_| Client::connect(&store.socket)).collect();
    for other in &mut others {
        other.connect_msg();
    }
    let mut a = Client::connect(&store.socket);
    a.connect_msg();
    let before = store.cpu_ticks();
    for _ in 0..40 {
        assert_eq!(a.connect_msg(), 1 << 20);
        std::thread::sleep(Duration::from_millis(25));
    }
    let used = store.cpu_ticks() - before;
    assert!(used <= 25, "{used} ticks of CPU for 40 requests in 1 s");
}

/// With more clients than cores (no core idle), each client's thread keeps to the one CPU
/// its client last ran on; `--no-follow-clients` leaves every thread on the store's mask.
#[test]
fn with_the_cores_full_each_clients_thread_keeps_to_its_clients_cpu() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return; // One CPU: every thread is on it either way.
    }
    for (flags, follows) in [(&[][..], true), (&["--no-follow-clients"][..], false)] {
        let store = StoreProcess::start(&[&["-m", "1M"], flags].concat(), Stdio::null());
        let mut clients: Vec<Client> = (0..=cores)
            .map(|_| Client::connect(&store.socket))
            .collect();
        // Each thread looks at the client count before it waits for the next request.
        for _ in 0..2 {
            for client in &mut clients {
                assert_eq!(client.connect_msg(), 1 << 20);
            }
        }
        let lists = store.client_threads_cpus();
        assert_eq!(lists.len(), cores + 1, "{lists:?}");
        // This process is every client: a single CPU, the same for all (or unpinned).
        let single = |l: &String| l.parse::<usize>().is_ok();
        if follows {
            assert!(lists.iter().all(single), "{lists:?}");
        } else {
            assert!(!lists.iter().any(single), "{lists:?}");
        }
    }
}

/// Only the wait for a new request polls: a client trickling one frame a byte at a
/// time cannot keep the store polling (and burning a core) between its bytes.
#[test]
fn a_trickling_client_cannot_keep_the_store_polling() {
    let store = StoreProcess::start(&["-m", "1M", "--busy-poll", "5000"], Stdio::null());
    let mut a = Client::connect(&store.socket);
    a.connect_msg();
    let mut frame = header(0, 24, 1 << 20);
    frame.extend(std::iter::repeat_n(0u8, 4000));
    let before = store.cpu_ticks();
    let t0 = Instant::now();
    for byte in frame.chunks(1) {
        a.stream.write_all(byte).unwrap();
        std::thread::sleep(Duration::from_micros(500));
        if t0.elapsed() > Duration::from_millis(1500) {
            break;
        }
    }
    let used = store.cpu_ticks() - before;
    // Polling 5 ms after each byte would keep a core busy: about 150 ticks.
    assert!(used <= 40, "{used} ticks of CPU for a trickled frame");
    assert_eq!(Client::connect(&store.socket).connect_msg(), 1 << 20);
}

/// A descriptor pushed along with an ordinary request is dropped: the one that
/// follows a later Subscribe is the subscription's.
#[test]
fn a_stray_fd_does_not_become_the_subscription() {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    use std::io::IoSlice;
    use std::mem::MaybeUninit;
    let s = store(1 << 20);
    let mut a = s.client();
    let (mut stray, stray_theirs) = UnixStream::pair().unwrap();
    let frame = ContainsRequest { object_id: id(1) }.encode_frame();
    let fds = [stray_theirs.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    sendmsg(
        &a.stream,
        &[IoSlice::new(&frame)],
        &mut control,
        SendFlags::empty(),
    )
    .unwrap();
    drop(stray_theirs);
    assert!(matches!(a.recv(), ContainsReply { .. }));
    let mut sub = a.subscribe();
    let mut b = s.client();
    b.put(id(2), b"seen");
    assert_eq!(next_notification(&mut sub)[0].object_id, id(2));
    stray
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        stray.read(&mut buf).unwrap_or(0),
        0,
        "nothing went to the stray fd"
    );
    assert_alive(&s);
}

#[test]
fn socket_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let s = store(1 << 20);
    let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let g = store_with(1 << 20, |b| b.group_access(true));
    let mode = std::fs::metadata(g.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn create_seal_get_across_clients_with_fd_passing() {
    let s = store(10_000_000);
    let mut a = s.client();
    let mut b = s.client();
    let spec = a.create_full(id(1), 16, 4, true).unwrap();
    a.write(&spec, 0, b"0123456789abcdefMETA");
    assert_eq!(a.seal(id(1)), Status::Ok);
    // Second create on the same connection: no fd follows (a stray fd byte
    // would corrupt the next reply).
    let spec2 = a.create(id(2), 100);
    assert_eq!(spec2.segment_index, spec.segment_index);
    assert!(
        spec2.data_offset >= spec.data_offset + 64 || spec2.data_offset + 128 <= spec.data_offset
    );
    assert!(!a.contains(id(2)), "unsealed objects are not contained");
    assert!(a.contains(id(1)));
    // b receives the fd with its first get, and not again.
    let got = b.get(&[id(1), id(9), id(1)], 0);
    assert_eq!(got[0], spec);
    assert_eq!(got[2], spec);
    assert_eq!(got[1].data_size, u64::MAX);
    assert_eq!(b.read(&got[0]), b"0123456789abcdefMETA");
    let again = b.get(&[id(1)], 0);
    assert_eq!(again[0], spec);
    assert!(b.contains(id(1)));
    // An unsealed object is not returned by Get.
    assert_eq!(b.get(&[id(2)], 0)[0].data_size, u64::MAX);
    // A third connection gets the fd again.
    let mut c = s.client();
    let spec_c = c.get(&[id(1)], 0)[0];
    assert_eq!(c.read(&spec_c), b"0123456789abcdefMETA");
}

#[test]
fn create_errors() {
    let s = store(1000);
    let mut a = s.client();
    a.create(id(1), 10);
    assert_eq!(a.create_full(id(1), 10, 0, true), Err(Status::ObjectExists));
    assert_eq!(
        a.create_full(id(2), 2000, 0, true),
        Err(Status::OutOfMemory)
    );
    assert_eq!(
        a.create_full(id(3), u64::MAX, 10, true),
        Err(Status::OutOfMemory)
    );
    let reply = a.request(&CreateRequest {
        object_id: id(4),
        evict_if_full: true,
        data_size: 1,
        metadata_size: 0,
        device_num: 1,
    });
    assert!(matches!(
        reply,
        CreateReply {
            error: Status::OutOfMemory,
            ..
        }
    ));
    // The failed ids were not created and can be retried.
    assert!(a.create_full(id(2), 500, 0, true).is_ok());
    // Exactly the capacity fits an empty store.
    let t = store(1_000_000);
    let mut b = t.client();
    assert!(b.create_full(id(1), 999_000, 1000, true).is_ok());
    assert_eq!(b.create_full(id(2), 0, 0, true).map(|s| s.data_size), Ok(0));
}

#[test]
fn get_timeouts_and_wakeups() {
    let s = store(1_000_000);
    let mut a = s.client();
    let t0 = Instant::now();
    assert_eq!(a.get(&[id(1)], 0)[0].data_size, u64::MAX);
    // A timeout of 0 does not wait (the bound is loose: the machine may be busy).
    assert!(t0.elapsed() < Duration::from_secs(1));
    let t0 = Instant::now();
    assert_eq!(a.get(&[id(1)], 150)[0].data_size, u64::MAX);
    assert!(t0.elapsed() >= Duration::from_millis(150));

    // A Get waiting forever on two ids replies only after both are sealed,
    // and does not block other clients meanwhile.
    let path = s.path();
    let waiter = std::thread::spawn(move || {
        let mut w = Client::connect(&path);
        let got = w.get(&[id(1), id(2)], -1);
        (w.read(&got[0]), w.read(&got[1]))
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut b = s.client();
    b.put(id(1), b"one");
    assert!(b.contains(id(1)));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished());
    b.put(id(2), b"two");
    let (one, two) = waiter.join().unwrap();
    assert_eq!((one.as_slice(), two.as_slice()), (&b"one"[..], &b"two"[..]));
}

#[test]
fn waiter_dying_does_not_hurt() {
    let s = store(1_000_000);
    {
        let mut w = s.client();
        w.send(&GetRequest {
            object_ids: vec![id(5)],
            timeout_ms: -1,
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut b = s.client();
    b.put(id(5), b"x");
    assert_alive(&s);
}

#[test]
fn delete_deferral() {
    let s = store(1_000_000);
    let mut a = s.client();
    a.put(id(1), b"held");
    assert_eq!(a.delete(&[id(1)]), vec![Status::ObjectInUse]);
    assert!(a.contains(id(1)));
    a.release(id(1));
    assert!(!a.contains(id(1)));

    a.create(id(2), 4);
    assert_eq!(a.delete(&[id(2)]), vec![Status::ObjectNotSealed]);
    assert_eq!(a.seal(id(2)), Status::Ok);
    assert!(a.contains(id(2)));
    a.release(id(2));
    assert!(!a.contains(id(2)));

    a.put(id(3), b"x");
    a.release(id(3));
    assert_eq!(
        a.delete(&[id(9), id(3)]),
        vec![Status::ObjectNotFound, Status::Ok]
    );
    assert!(a.list().is_empty());
}

#[test]
fn abort_and_create_and_seal() {
    let s = store(1_000_000);
    let mut a = s.client();
    a.create(id(1), 10);
    assert_eq!(
        a.request(&AbortRequest { object_id: id(1) }),
        AbortReply { object_id: id(1) }
    );
    assert!(a.list().is_empty());
    // The id can be created again.
    a.create(id(1), 10);

    let reply = a.request(&CreateAndSealRequest {
        object_id: id(4),
        evict_if_full: true,
        data: b"hello".to_vec(),
        metadata: b"md".to_vec(),
        digest: DIGEST.to_vec(),
    });
    assert_eq!(reply, CreateAndSealReply { error: Status::Ok });
    let spec = a.get(&[id(4)], 0)[0];
    assert_eq!((spec.data_size, spec.metadata_size), (5, 2));
    assert_eq!(a.read(&spec), b"hellomd");

    let batch = |ids: Vec<ObjectId>| CreateAndSealBatchRequest {
        data: ids.iter().map(|i| vec![i.0[0]; 3]).collect(),
        metadata: ids.iter().map(|_| Vec::new()).collect(),
        digest: ids.iter().map(|_| DIGEST.to_vec()).collect(),
        object_ids: ids,
        evict_if_full: true,
    };
    assert_eq!(
        a.request(&batch(vec![id(13), id(14)])),
        CreateAndSealBatchReply { error: Status::Ok }
    );
    assert_eq!(
        a.request(&batch(vec![id(15), id(13)])),
        CreateAndSealBatchReply {
            error: Status::ObjectExists
        }
    );
    assert!(!a.contains(id(15)));
    let got = a.get(&[id(13), id(14)], 0);
    assert_eq!(a.read(&got[1]), vec![14; 3]);
    // Batch objects are not held by their creator after the reply... but the
    // get above referenced them; release and they become evictable.
    a.release(id(13));
    a.release(id(14));
    assert_eq!(a.evict(6), 6);
}

#[test]
fn list_reports_state_and_refs() {
    let s = store(1_000_000);
    let mut a = s.client();
    let mut b = s.client();
    a.create_full(id(1), 10, 3, true).unwrap();
    a.put(id(2), b"abc");
    b.get(&[id(2)], 0);
    let list = a.list();
    let by_id: HashMap<ObjectId, &ObjectInfo> = list.iter().map(|o| (o.object_id, o)).collect();
    let one = by_id[&id(1)];
    assert_eq!(
        (one.data_size, one.metadata_size, one.ref_count),
        (10, 3, 1)
    );
    assert!(one.digest.is_empty());
    assert_eq!(one.construct_duration, -1);
    let two = by_id[&id(2)];
    assert_eq!(two.ref_count, 2);
    assert_eq!(two.digest, DIGEST);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - two.create_time).abs() <= 2);
}

#[test]
fn lru_eviction_order_refresh_and_evict_if_full() {
    let s = store(1000);
    let mut a = s.client();
    for (n, size) in [(1u8, 100usize), (2, 200), (3, 300)] {
        a.put(id(n), &vec![n; size]);
    }
    // Release order 2, 1, 3 is eviction order.
    for n in [2, 1, 3] {
        a.release(id(n));
    }
    a.request(&RefreshLruRequest {
        object_ids: vec![id(2), id(99)],
    });
    // Now 1, 3, 2.
    assert_eq!(a.evict(1), 100);
    assert!(!a.contains(id(1)));
    // evict_if_full=false never evicts.
    assert_eq!(
        a.create_full(id(4), 600, 0, false),
        Err(Status::OutOfMemory)
    );
    assert!(a.contains(id(3)));
    // With eviction it frees 3 (300) then 2 (200 more, the 20% rule is met).
    assert!(a.create_full(id(4), 600, 0, true).is_ok());
    assert!(!a.contains(id(3)));
    let debug = a.request(&GetDebugStringRequest).debug_string;
    assert!(debug.contains("allocation limit: 1000"), "{debug}");
    assert!(
        debug.contains("num evictions: 2") || debug.contains("num evictions: 3"),
        "{debug}"
    );
}

#[test]
fn store_full_while_pinned() {
    let s = store(1000);
    let mut a = s.client();
    a.put(id(1), &[1; 600]);
    // Pinned: nothing to evict.
    assert_eq!(a.create_full(id(2), 500, 0, true), Err(Status::OutOfMemory));
    a.release(id(1));
    assert!(a.create_full(id(2), 500, 0, true).is_ok());
}

#[test]
fn notifications() {
    let s = store(1_000_000);
    let mut a = s.client();
    a.put(id(1), b"before");
    let mut sub = a.subscribe();
    // Replay of existing sealed objects.
    let replay = next_notification(&mut sub);
    assert_eq!(replay.len(), 1);
    assert_eq!(
        (
            replay[0].object_id,
            replay[0].data_size,
            replay[0].digest.as_slice()
        ),
        (id(1), 6, &DIGEST[..])
    );
    // Many seals queue while we do not read; order = seal order.
    let mut b = s.client();
    for n in 0..200u8 {
        b.request(&CreateAndSealRequest {
            object_id: ObjectId([n; 20]).tap(|o| o.0[1] = 0xaa),
            evict_if_full: true,
            data: vec![n; 10],
            metadata: vec![],
            digest: DIGEST.to_vec(),
        });
    }
    for n in 0..200u8 {
        let got = next_notification(&mut sub);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].object_id.0[0], n);
        assert_eq!(got[0].data_size, 10);
    }
    // Deletion.
    b.release(id(1));
    a.release(id(1));
    // Releases are one-way: a round trip on `a` orders its release before
    // the delete on `b`.
    assert!(a.contains(id(1)));
    assert_eq!(b.delete(&[id(1)]), vec![Status::Ok]);
    let del = next_notification(&mut sub);
    assert_eq!((del[0].object_id, del[0].is_deletion), (id(1), true));
    // A batch is one message with N entries.
    b.request(&CreateAndSealBatchRequest {
        object_ids: vec![id(30), id(31)],
        evict_if_full: true,
        data: vec![vec![1], vec![2]],
        metadata: vec![vec![], vec![]],
        digest: vec![DIGEST.to_vec(), DIGEST.to_vec()],
    });
    assert_eq!(next_notification(&mut sub).len(), 2);
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl<T> Tap for T {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[test]
fn set_options_quota() {
    let s = store(1_000_000);
    let mut a = s.client();
    let mut b = s.client();
    let opts = |q| SetOptionsRequest {
        client_name: "client1".into(),
        output_memory_quota: q,
    };
    assert_eq!(
        a.request(&opts(100_000)),
        SetOptionsReply { error: Status::Ok }
    );
    assert_eq!(
        a.request(&opts(100_000)),
        SetOptionsReply {
            error: Status::OutOfMemory
        }
    );
    assert_eq!(
        b.request(&opts(800_000)),
        SetOptionsReply {
            error: Status::OutOfMemory
        }
    );
    // A quota client cannot create an object larger than its quota.
    assert_eq!(
        a.create_full(id(1), 200_000, 0, true),
        Err(Status::OutOfMemory)
    );
    drop(a);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        b.request(&opts(600_000)),
        SetOptionsReply { error: Status::Ok }
    );
}

#[test]
fn disconnect_cleanup() {
    let s = store(1_000_000);
    let mut keeper = s.client();
    {
        let mut c = s.client();
        c.create(id(8), 100);
        c.put(id(9), b"sealed");
        let _sub = c.subscribe();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!keeper.contains(id(8)));
    let list = keeper.list();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].object_id, list[0].ref_count), (id(9), 0));
    // Its reference was released, so it is evictable.
    assert_eq!(keeper.evict(1), 6);
}

#[test]
fn external_hashtable_store() {
    let s = store_with(1_024_000, |b| b.external_store("hashtable://test"));
    let mut a = s.client();
    for n in 0..20u8 {
        a.put(id(n), &vec![n; 100 * 1024]);
        a.release(id(n));
    }
    for n in 0..20u8 {
        assert!(a.contains(id(n)));
        let spec = a.get(&[id(n)], 0)[0];
        assert_eq!(a.read(&spec), vec![n; 100 * 1024], "object {n}");
        a.release(id(n));
    }
}

#[test]
fn external_file_store_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("file://{}", dir.path().join("spill").display());
    let s = store_with(300_000, |b| b.external_store(endpoint));
    let mut a = s.client();
    for n in 0..6u8 {
        let spec = a.create_full(id(n), 100_000, 3, true).unwrap();
        a.write(&spec, 0, &vec![n; 100_000]);
        a.write(&spec, 100_000, b"met");
        assert_eq!(a.seal(id(n)), Status::Ok);
        a.release(id(n));
    }
    for n in 0..6u8 {
        let spec = a.get(&[id(n)], 0)[0];
        let bytes = a.read(&spec);
        assert_eq!(&bytes[..100_000], &vec![n; 100_000][..]);
        assert_eq!(&bytes[100_000..], b"met");
        a.release(id(n));
    }
}

#[test]
fn directory_segment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let s = store_with(1 << 20, move |b| b.directory(d));
    assert_alive(&s);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ----- robustness: each case, then another client is still served -----

fn raw_then_closed(bytes: &[u8]) {
    let s = store(1 << 20);
    let mut bad = s.client();
    bad.stream.write_all(bytes).unwrap();
    assert!(bad.is_closed(), "store should drop the client");
    assert_alive(&s);
}

#[test]
fn robust_wrong_version() {
    let mut f = ConnectRequest.encode_frame();
    f[0] = 1;
    raw_then_closed(&f);
}

#[test]
fn robust_unknown_types() {
    for kind in [24i64, 25, 26, 12, 0, 99, -1] {
        raw_then_closed(&encode_frame(kind, &ConnectRequest.encode_body()));
    }
}

#[test]
fn robust_bad_flatbuffer() {
    raw_then_closed(&encode_frame(1, &[0xff; 32]));
    raw_then_closed(&encode_frame(9, &[1, 0, 0, 0]));
    raw_then_closed(&encode_frame(7, &[]));
}

#[test]
fn robust_huge_and_negative_length() {
    raw_then_closed(&header(0, 1, 1 << 40));
    raw_then_closed(&header(0, 1, -1));
    raw_then_closed(&header(0, 1, i64::MIN));
}

#[test]
fn robust_random_bytes() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    raw_then_closed(&bytes);
}

#[test]
fn robust_half_frame_then_silence() {
    let s = store(1 << 20);
    let mut stalled = s.client();
    let frame = ContainsRequest { object_id: id(1) }.encode_frame();
    stalled.stream.write_all(&frame[..30]).unwrap();
    let mut header_only = s.client();
    header_only.stream.write_all(&frame[..10]).unwrap();
    let t0 = Instant::now();
    assert_alive(&s);
    assert!(t0.elapsed() < Duration::from_secs(10));
    // The stalled client can still finish its frame.
    stalled.stream.write_all(&frame[30..]).unwrap();
    assert!(matches!(
        stalled.recv(),
        ContainsReply {
            has_object: false,
            ..
        }
    ));
}

#[test]
fn robust_release_never_held() {
    let s = store(1 << 20);
    let mut a = s.client();
    a.release(id(42));
    a.put(id(1), b"x");
    let mut b = s.client();
    b.release(id(1));
    // Both connections keep working and the object keeps a's reference.
    assert!(a.contains(id(1)));
    assert!(b.contains(id(1)));
    assert_eq!(b.delete(&[id(1)]), vec![Status::ObjectInUse]);
    assert_alive(&s);
}

#[test]
fn robust_seal_and_abort_unknown() {
    let s = store(1 << 20);
    let mut a = s.client();
    assert_eq!(a.seal(id(1)), Status::ObjectNotFound);
    a.put(id(2), b"x");
    assert_eq!(a.seal(id(2)), Status::ObjectExists);
    assert!(a.contains(id(2)));
    // Abort of an unknown, a sealed or someone else's object: disconnected.
    for victim in [id(3), id(2)] {
        let mut c = s.client();
        c.send(&AbortRequest { object_id: victim });
        assert!(c.is_closed());
    }
    a.create(id(4), 1);
    let mut c = s.client();
    c.send(&AbortRequest { object_id: id(4) });
    assert!(c.is_closed());
    assert_eq!(a.seal(id(4)), Status::Ok);
    // Bad digests and short ids: disconnected.
    let mut c = s.client();
    c.send(&SealRequest {
        object_id: id(4),
        digest: vec![1; 3],
    });
    assert!(c.is_closed());
    assert_alive(&s);
}

#[test]
fn robust_subscribe_twice() {
    let s = store(1 << 20);
    let mut a = s.client();
    let mut first = a.subscribe();
    let mut second = a.subscribe();
    // The connection still works (the second fd message was consumed).
    a.put(id(1), b"x");
    assert!(a.contains(id(1)));
    assert_eq!(next_notification(&mut first)[0].object_id, id(1));
    let mut buf = [0u8; 8];
    assert_eq!(
        second.read(&mut buf).unwrap_or(0),
        0,
        "second subscription is closed"
    );
    assert_alive(&s);
}

#[test]
fn robust_subscriber_that_never_reads() {
    let s = store(10 << 20);
    let mut a = s.client();
    let _sub = a.subscribe();
    let mut b = s.client();
    let t0 = Instant::now();
    for n in 0..3000u32 {
        let mut oid = [0u8; 20];
        oid[..4].copy_from_slice(&n.to_le_bytes());
        b.request(&CreateAndSealRequest {
            object_id: ObjectId(oid),
            evict_if_full: true,
            data: vec![1; 8],
            metadata: vec![],
            digest: DIGEST.to_vec(),
        });
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_alive(&s);
}

#[test]
fn shutdown_disconnects_clients() {
    let mut s = store(1 << 20);
    let mut a = s.client();
    a.connect_msg();
    s.handle.take().unwrap().shutdown();
    assert!(a.is_closed());
    assert!(UnixStream::connect(s._dir.path().join("plasma.sock")).is_err());
}

#[test]
fn nothing_leaks_after_clients_go() {
    let s = store(1 << 20);
    for round in 0..5u8 {
        let mut clients: Vec<Client> = (0..6).map(|_| s.client()).collect();
        clients[0].create(id(round), 100);
        clients[1].send(&GetRequest {
            object_ids: vec![id(200)],
            timeout_ms: -1,
        });
        let _sub = clients[2].subscribe();
        let frame = ContainsRequest { object_id: id(1) }.encode_frame();
        clients[3].stream.write_all(&frame[..30]).unwrap();
        clients[4].stream.write_all(&header(0, 24, 0)).unwrap();
        clients[5].put(id(100 + round), b"sealed");
        clients[5].release(id(100 + round));
        clients[5].connect_msg();
        // Let the store see every request before the clients vanish.
        std::thread::sleep(Duration::from_millis(50));
    }
    let handle = s.handle.as_ref().unwrap();
    let t0 = Instant::now();
    while handle.client_count() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{} clients linger",
            handle.client_count()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = s.client();
    let list = c.list();
    // Only the five sealed, released objects remain, unreferenced.
    assert_eq!(list.len(), 5);
    assert!(
        list.iter()
            .all(|o| o.ref_count == 0 && o.object_id.0[0] >= 100)
    );
    assert_eq!(c.evict(u64::MAX), 5 * 6);
    assert!(c.list().is_empty());
    drop(c);
    assert_alive(&s);
}
