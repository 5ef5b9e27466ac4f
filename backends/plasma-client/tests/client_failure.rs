//! Failures: the store killed mid-get, a full store, a store that stops
//! answering, a get timeout, and hostile replies from a fake store.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::client_support::{SECOND, fresh_id, stores};
use tensor_ipc_plasma_client::{ClientError, ClientOptions, PlasmaClient};
use tensor_ipc_plasma_protocol::frame::read_frame;
use tensor_ipc_plasma_protocol::messages::{
    ConnectReply, CreateReply, DeleteReply, EvictReply, GetReply,
};
use tensor_ipc_plasma_protocol::{Message, ObjectId, ObjectSpec, Status};

const MB: u64 = 1 << 20;

#[test]
fn store_killed_mid_get_is_a_clear_error() {
    for mut store in stores(10 * MB) {
        let client = store.client();
        let held_id = fresh_id(30);
        client.create_and_seal(held_id, b"survivor", b"").unwrap();
        let held = client.get_one(held_id, SECOND).unwrap().unwrap();
        let waiter = {
            let client = client.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                (client.get_one(fresh_id(30), None), t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        store.kill();
        let (result, waited) = waiter.join().unwrap();
        assert!(
            matches!(result, Err(ClientError::Disconnected(_))),
            "{:?}: {result:?}",
            store.kind
        );
        assert!(waited < Duration::from_secs(10));
        // Later calls fail fast; mapped memory stays readable until dropped.
        assert!(matches!(
            client.contains(held_id),
            Err(ClientError::Disconnected(_))
        ));
        assert_eq!(held.data.as_slice(), b"survivor");
        drop(held);
        drop(client);
    }
}

#[test]
fn full_store_is_out_of_memory() {
    for store in stores(MB) {
        let kind = store.kind;
        let no_evict = store.client_with(ClientOptions {
            evict_if_full: false,
            ..Default::default()
        });
        let client = store.client();
        // Larger than the store.
        let err = client
            .create(fresh_id(31), 2 * MB as usize, b"")
            .unwrap_err();
        assert!(
            matches!(err, ClientError::OutOfMemory { size, .. } if size == 2 * MB),
            "{kind:?}: {err}"
        );
        // Pinned objects cannot be evicted.
        let a = client.create(fresh_id(31), 600_000, b"").unwrap();
        let err = client.create(fresh_id(31), 600_000, b"").unwrap_err();
        assert!(
            matches!(err, ClientError::OutOfMemory { .. }),
            "{kind:?}: {err}"
        );
        a.seal().unwrap();
        // Released: evictable only when the create allows eviction.
        let b = fresh_id(31);
        assert!(matches!(
            no_evict.create(b, 600_000, b""),
            Err(ClientError::OutOfMemory { .. })
        ));
        assert!(matches!(
            no_evict.create_and_seal(b, &vec![0; 600_000], b""),
            Err(ClientError::OutOfMemory { .. })
        ));
        client.create(b, 600_000, b"").unwrap().seal().unwrap();
        assert!(client.contains(b).unwrap());
        // The id of a failed create stays free.
        assert_eq!(
            client.list().unwrap().len(),
            1,
            "{kind:?}: only the evicting create's object remains"
        );
    }
}

/// Stops process `pid` and waits until the kernel reports it stopped: a signalled process
/// may still run for a moment, and a store that answers then would fail the test for the
/// wrong reason.
fn freeze(pid: &str) {
    assert!(
        Command::new("kill")
            .args(["-STOP", pid])
            .status()
            .unwrap()
            .success()
    );
    // Every thread must be stopped: the store serves each client on its own thread.
    let tasks = format!("/proc/{pid}/task");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let all_stopped = std::fs::read_dir(&tasks).is_ok_and(|dir| {
            dir.filter_map(Result::ok).all(|task| {
                let text = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                // The state follows the command name, which is in parentheses.
                let state = text
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                state == Some("T")
            })
        });
        if all_stopped {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn silent_store_times_out() {
    for mut store in stores(MB) {
        let client = store.client_with(ClientOptions {
            request_timeout: Duration::from_millis(300),
            ..Default::default()
        });
        let pid = store.child.id().to_string();
        freeze(&pid);
        let t = Instant::now();
        let err = client.contains(fresh_id(32)).unwrap_err();
        let waited = t.elapsed();
        assert!(
            Command::new("kill")
                .args(["-CONT", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(err, ClientError::Timeout(_)), "{err}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        // A get's own timeout is added to the request timeout.
        let fresh = store.client_with(ClientOptions {
            request_timeout: Duration::from_millis(300),
            ..Default::default()
        });
        assert!(
            fresh
                .get_one(fresh_id(32), Some(Duration::from_millis(500)))
                .unwrap()
                .is_none()
        );
        // The timed-out connection is unusable (its reply may still come).
        assert!(matches!(
            client.contains(fresh_id(32)),
            Err(ClientError::Disconnected(_))
        ));
        assert!(store.alive());
    }
}

/// A fake store: answers the connect, then sends `reply` (raw frame bytes,
/// then closes) to the next request.
fn fake_store(reply: Vec<u8>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = read_frame(&mut s, 1 << 20).unwrap();
        s.write_all(
            &ConnectReply {
                memory_capacity: 1000,
            }
            .encode_frame(),
        )
        .unwrap();
        let _ = read_frame(&mut s, 1 << 20);
        let _ = s.write_all(&reply);
        std::thread::sleep(Duration::from_millis(100));
    });
    (dir, path)
}

/// A client call of a hostile-reply case.
type Call = Box<dyn Fn(&PlasmaClient) -> Result<(), ClientError>>;

fn frame(kind: i64, body: &[u8]) -> Vec<u8> {
    tensor_ipc_plasma_protocol::frame::encode_frame(kind, body)
}

#[test]
fn hostile_replies_are_errors_not_panics() {
    let id = ObjectId([9; 20]);
    let options = ClientOptions {
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let cases: Vec<(&str, Vec<u8>, Call)> = vec![
        (
            "garbage body",
            frame(16, &[0xff; 40]),
            Box::new(move |c| c.contains(id).map(drop)),
        ),
        (
            "wrong reply type",
            EvictReply { num_bytes: 1 }.encode_frame(),
            Box::new(move |c| c.contains(id).map(drop)),
        ),
        (
            "truncated frame",
            frame(16, &[1, 2, 3])[..20].to_vec(),
            Box::new(move |c| c.contains(id).map(drop)),
        ),
        (
            "huge length",
            {
                let mut f = frame(16, &[]);
                f[16..24].copy_from_slice(&(1i64 << 50).to_le_bytes());
                f
            },
            Box::new(move |c| c.contains(id).map(drop)),
        ),
        (
            "get reply with fewer specs",
            GetReply {
                object_ids: vec![id, id],
                objects: vec![ObjectSpec::MISSING, ObjectSpec::MISSING],
                store_fds: vec![],
                mmap_sizes: vec![],
            }
            .encode_frame(),
            Box::new(move |c| c.get(&[id], SECOND).map(drop)),
        ),
        (
            "get reply naming an unknown segment",
            GetReply {
                object_ids: vec![id],
                objects: vec![ObjectSpec {
                    segment_index: 77,
                    data_offset: 0,
                    data_size: 10,
                    metadata_offset: 10,
                    metadata_size: 0,
                    device_num: 0,
                }],
                store_fds: vec![],
                mmap_sizes: vec![],
            }
            .encode_frame(),
            Box::new(move |c| c.get(&[id], SECOND).map(drop)),
        ),
        (
            "create reply for another id",
            CreateReply {
                object_id: ObjectId([1; 20]),
                object: ObjectSpec::default(),
                error: Status::Ok,
                store_fd: 3,
                mmap_size: 1 << 20,
            }
            .encode_frame(),
            Box::new(move |c| c.create(id, 10, b"").map(drop)),
        ),
        (
            "create reply without the promised fd",
            CreateReply {
                object_id: id,
                object: ObjectSpec {
                    segment_index: 3,
                    data_offset: 64,
                    data_size: 10,
                    metadata_offset: 74,
                    metadata_size: 0,
                    device_num: 0,
                },
                error: Status::Ok,
                store_fd: 3,
                mmap_size: 1 << 20,
            }
            .encode_frame(),
            Box::new(move |c| c.create(id, 10, b"").map(drop)),
        ),
        (
            "delete reply with other ids",
            DeleteReply {
                object_ids: vec![],
                errors: vec![],
            }
            .encode_frame(),
            Box::new(move |c| c.delete(&[id]).map(drop)),
        ),
    ];
    for (name, reply, call) in cases {
        let (_dir, path) = fake_store(reply);
        let client = PlasmaClient::connect_with(&path, options.clone()).unwrap();
        let t = Instant::now();
        let err = call(&client).expect_err(name);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{name}: took {:?}",
            t.elapsed()
        );
        assert!(
            matches!(
                err,
                ClientError::Protocol(_)
                    | ClientError::InvalidReply(_)
                    | ClientError::Disconnected(_)
                    | ClientError::Timeout(_)
            ),
            "{name}: {err}"
        );
        // The connection is now refused for good.
        assert!(client.contains(id).is_err(), "{name}");
    }
}

#[test]
fn held_objects_are_got_without_asking_the_store() {
    for mut store in stores(MB) {
        let client = store.client_with(ClientOptions {
            request_timeout: Duration::from_millis(300),
            ..Default::default()
        });
        let id = fresh_id(33);
        client.create_and_seal(id, b"local", b"md").unwrap();
        let held = client.get_one(id, SECOND).unwrap().unwrap();
        let pid = store.child.id().to_string();
        freeze(&pid);
        // The store is frozen: only a local answer can come back.
        let again = client.get(&[id, id], Some(Duration::ZERO));
        assert!(
            Command::new("kill")
                .args(["-CONT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let again = again.unwrap();
        assert_eq!(again[1].as_ref().unwrap().data.as_slice(), b"local");
        assert_eq!(again[0].as_ref().unwrap().metadata.as_slice(), b"md");
        drop(held);
        assert!(client.contains(id).unwrap(), "{:?}: still held", store.kind);
        drop(again);
        // All holders gone: one release, then the object is deletable.
        client.delete_one(id).unwrap();
        assert_eq!(client.held_objects(), 0);
        assert!(store.alive());
    }
}
