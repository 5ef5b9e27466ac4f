//! The client's API against each store (Arrow 11's and ours), and the
//! tensor-ipc conformance suite through PlasmaSink / PlasmaSource.

use std::time::Duration;

use crate::client_support::{SECOND, fresh_id, stores};
use tensor_ipc::conformance::{Backend, run_all};
use tensor_ipc_plasma_client::{
    ClientError, PlasmaClient, PlasmaSink, PlasmaSource, object_digest,
};

const MB: u64 = 1 << 20;

#[test]
fn lifecycle_against_every_store() {
    for store in stores(100 * MB) {
        let kind = store.kind;
        let client = store.client();
        assert_eq!(client.capacity(), (100 * MB) as i64, "{kind:?}");
        let id = fresh_id(1);
        assert!(!client.contains(id).unwrap());
        let mut obj = client.create(id, 5, b"md").unwrap();
        assert_eq!(obj.data_mut().len(), 5);
        obj.data_mut().copy_from_slice(b"hello");
        // Unsealed: invisible, and a second create fails.
        assert!(!client.contains(id).unwrap());
        assert!(matches!(
            client.create(id, 1, b""),
            Err(ClientError::ObjectExists(x)) if x == id
        ));
        let listed = client.list().unwrap();
        let info = listed.iter().find(|i| i.object_id == id).unwrap();
        assert!(info.digest.is_empty(), "{kind:?}: unsealed has no digest");
        let digest = obj.seal().unwrap();
        assert_eq!(digest, object_digest(b"hello", b"md"));
        assert!(client.contains(id).unwrap());
        let got = client.get_one(id, SECOND).unwrap().expect("sealed");
        assert_eq!(got.data.as_slice(), b"hello");
        assert_eq!(got.metadata.as_slice(), b"md");
        assert_eq!(got.data.as_ptr() as usize % 64, 0, "64-byte aligned");
        assert_eq!(client.hash(id).unwrap(), digest);
        let info = client
            .list()
            .unwrap()
            .into_iter()
            .find(|i| i.object_id == id)
            .unwrap();
        assert_eq!(info.digest, digest.to_vec(), "{kind:?}");
        assert_eq!(info.ref_count, 1, "{kind:?}: held by the get");
        assert_eq!((info.data_size, info.metadata_size), (5, 2));
        // Held: delete is deferred.
        assert!(matches!(
            client.delete_one(id),
            Err(ClientError::ObjectInUse(_))
        ));
        let clone = got.data.clone();
        drop(got);
        assert!(client.contains(id).unwrap(), "a clone still pins it");
        drop(clone);
        // The release went out; the deferred delete happened.
        assert!(!client.contains(id).unwrap(), "{kind:?}");
        assert!(matches!(
            client.delete_one(id),
            Err(ClientError::ObjectNotFound(_))
        ));

        // Abort, and drop-without-seal, remove the object.
        let a = fresh_id(1);
        client.create(a, 10, b"").unwrap().abort().unwrap();
        assert!(client.list().unwrap().iter().all(|i| i.object_id != a));
        drop(client.create(a, 10, b"").unwrap());
        assert!(client.list().unwrap().iter().all(|i| i.object_id != a));

        // Create-and-seal, batch, evict, refresh.
        let s = fresh_id(1);
        client.create_and_seal(s, b"small", b"m").unwrap();
        assert!(matches!(
            client.create_and_seal(s, b"x", b""),
            Err(ClientError::ObjectExists(_))
        ));
        assert_eq!(client.hash(s).unwrap(), object_digest(b"small", b"m"));
        let (b1, b2) = (fresh_id(1), fresh_id(1));
        client
            .create_and_seal_batch(&[(b1, b"one", b""), (b2, b"two", b"2")])
            .unwrap();
        let both = client.get(&[b1, b2, b1], SECOND).unwrap();
        assert_eq!(both[0].as_ref().unwrap().data.as_slice(), b"one");
        assert_eq!(both[1].as_ref().unwrap().metadata.as_slice(), b"2");
        assert_eq!(both[2].as_ref().unwrap().data.as_slice(), b"one");
        drop(both);
        client.refresh(&[s, b1, fresh_id(1)]).unwrap();
        let freed = client.evict(1).unwrap();
        assert!(freed >= 1, "{kind:?}: evicted {freed}");
        client.evict(u64::MAX / 2).unwrap();
        for x in [s, b1, b2] {
            assert!(!client.contains(x).unwrap(), "{kind:?}: all evicted");
        }
        assert_eq!(client.held_objects(), 0);
        client.set_options("rust-client", 1_000_000).unwrap();
        assert!(matches!(
            client.set_options("rust-client", 1_000_000),
            Err(ClientError::OutOfMemory { .. })
        ));
        let _ = client.debug_string().unwrap();
        drop(client);
        let mut store = store;
        assert!(store.alive(), "{kind:?} survived the session");
    }
}

#[test]
fn get_timeouts_and_missing_objects() {
    for store in stores(10 * MB) {
        let client = store.client();
        let missing = fresh_id(2);
        let t = std::time::Instant::now();
        assert!(
            client
                .get_one(missing, Some(Duration::ZERO))
                .unwrap()
                .is_none()
        );
        let got = client
            .get(&[missing], Some(Duration::from_millis(200)))
            .unwrap();
        let waited = t.elapsed();
        assert!(got[0].is_none());
        assert!(
            waited >= Duration::from_millis(190) && waited < Duration::from_secs(5),
            "{:?}: waited {waited:?}",
            store.kind
        );
        // A partly available batch.
        let present = fresh_id(2);
        client.create_and_seal(present, b"here", b"").unwrap();
        let got = client
            .get(&[present, missing], Some(Duration::from_millis(50)))
            .unwrap();
        assert!(got[0].is_some() && got[1].is_none());
        // An own unsealed object cannot be waited for forever.
        let own = client.create(fresh_id(2), 3, b"").unwrap();
        assert!(matches!(
            client.get_one(own.id(), None),
            Err(ClientError::ObjectNotSealed(_))
        ));
        assert!(
            client
                .get_one(own.id(), Some(Duration::from_millis(10)))
                .unwrap()
                .is_none()
        );
        // A get waiting on another client's seal.
        let producer = store.client();
        let later = fresh_id(2);
        let waiter = {
            let client = client.clone();
            std::thread::spawn(move || client.get_one(later, Some(Duration::from_secs(10))))
        };
        std::thread::sleep(Duration::from_millis(100));
        producer.create_and_seal(later, b"late", b"").unwrap();
        let got = waiter.join().unwrap().unwrap().expect("woken by the seal");
        assert_eq!(got.data.as_slice(), b"late");
    }
}

struct PlasmaBackend {
    client: PlasmaClient,
}

impl Backend for PlasmaBackend {
    type Sink = PlasmaSink;
    type Source = PlasmaSource;

    fn sink(&mut self) -> PlasmaSink {
        PlasmaSink::with_ids(&self.client, std::iter::repeat_with(|| fresh_id(3)))
    }

    fn source(&mut self, sink: PlasmaSink) -> PlasmaSource {
        PlasmaSource::get_many(&self.client, sink.object_ids(), SECOND).expect("get")
    }

    fn source_from_bytes(&mut self, bytes: &[u8]) -> PlasmaSource {
        let id = fresh_id(3);
        let mut obj = self.client.create(id, bytes.len(), b"").expect("create");
        obj.data_mut().copy_from_slice(bytes);
        obj.seal().expect("seal");
        PlasmaSource::get(&self.client, id, SECOND).expect("get")
    }
}

#[test]
fn conformance_suite_against_every_store() {
    for store in stores(100 * MB) {
        let mut backend = PlasmaBackend {
            client: store.client(),
        };
        run_all(&mut backend);
        assert_eq!(backend.client.held_objects(), 0, "{:?}", store.kind);
    }
}

#[test]
fn sink_creates_exact_size_and_source_is_zero_copy() {
    use tensor_ipc::{Tensor, read_tensor, tensor_size, write_tensor};
    for store in stores(100 * MB) {
        let client = store.client();
        let id = fresh_id(4);
        let tensor = Tensor::from_vec(vec![2.0f32; 1000], vec![10, 100]).unwrap();
        let mut sink = PlasmaSink::new(&client, id);
        write_tensor(&tensor, &mut sink).unwrap();
        // One object per message with `new`.
        assert!(write_tensor(&tensor, &mut sink).is_err());
        let info = client
            .list()
            .unwrap()
            .into_iter()
            .find(|i| i.object_id == id)
            .unwrap();
        assert_eq!(info.data_size as usize, tensor_size(&tensor).unwrap());
        let object = client.get_one(id, SECOND).unwrap().unwrap();
        let range =
            object.data.as_ptr() as usize..object.data.as_ptr() as usize + object.data.len();
        let back = read_tensor(&mut PlasmaSource::from_objects([object])).unwrap();
        assert!(
            range.contains(&(back.as_bytes().as_ptr() as usize)),
            "zero-copy"
        );
        assert_eq!(back.to_vec::<f32>().unwrap(), vec![2.0f32; 1000]);
        assert_eq!(back.shape(), [10, 100]);
        // The tensor alone pins the object.
        assert!(matches!(
            client.delete_one(id),
            Err(ClientError::ObjectInUse(_))
        ));
        drop(back);
        assert!(!client.contains(id).unwrap(), "{:?}", store.kind);
        // A missing object is a typed error through tensor_ipc::Error.
        let err = PlasmaSource::get(&client, fresh_id(4), Some(Duration::ZERO)).unwrap_err();
        match err {
            tensor_ipc::Error::Io(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
                assert!(e.get_ref().unwrap().downcast_ref::<ClientError>().is_some());
            }
            other => panic!("{other}"),
        }
    }
}

/// Parts that do not add up are refused before anything is created (the sink keeps its id),
/// and `fill_and_seal` with such parts aborts the object.
#[test]
fn mismatched_parts_are_refused_without_losing_the_object_id() {
    use tensor_ipc::TensorSink;
    for store in stores(10 * MB) {
        let client = store.client();
        let id = fresh_id(4);
        let mut sink = PlasmaSink::new(&client, id);
        assert!(sink.write_parts(10, &[b"abc"]).is_err());
        sink.write_parts(5, &[b"ab", b"cde"]).unwrap();
        assert_eq!(sink.object_ids(), [id]);
        let object = client.get_one(id, SECOND).unwrap().unwrap();
        assert_eq!(object.data.as_slice(), b"abcde", "{:?}", store.kind);

        let other = fresh_id(4);
        let created = client.create(other, 4, b"").unwrap();
        assert!(matches!(
            created.fill_and_seal(&[b"abc"]),
            Err(ClientError::InvalidCall(_))
        ));
        assert!(
            client.list().unwrap().iter().all(|o| o.object_id != other),
            "{:?}: the object was aborted",
            store.kind
        );
    }
}

/// A tensor large enough for the sink's threaded copy-and-hash path: the bytes land intact,
/// and the digest sent with the seal (seen by a subscriber) is the digest of those bytes.
#[test]
fn large_tensor_through_sink_is_sealed_with_the_digest_of_its_bytes() {
    use tensor_ipc::{Tensor, read_tensor, write_tensor};
    for store in stores(100 * MB) {
        let client = store.client();
        let mut notifications = client.subscribe().unwrap();
        let values: Vec<f32> = (0..5_000_000).map(|i| i as f32 * 0.5).collect();
        let tensor = Tensor::from_vec(values.clone(), vec![1000, 5000]).unwrap();
        let id = fresh_id(4);
        write_tensor(&tensor, &mut PlasmaSink::new(&client, id)).unwrap();
        let object = client.get_one(id, SECOND).unwrap().unwrap();
        let want = object_digest(object.data.as_slice(), object.metadata.as_slice());
        let sealed = loop {
            let n = notifications
                .recv_timeout(Some(Duration::from_secs(5)))
                .unwrap()
                .expect("a seal notification");
            if n.object_id == id {
                break n;
            }
        };
        assert_eq!(sealed.digest, want, "{:?}", store.kind);
        let back = read_tensor(&mut PlasmaSource::from_objects([object])).unwrap();
        assert_eq!(
            back.values::<f32>().unwrap(),
            &values[..],
            "{:?}",
            store.kind
        );
    }
}

#[test]
fn sparse_tensors_through_plasma_objects() {
    use tensor_ipc::Tensor;
    use tensor_ipc::sparse::{SparseFormat, SparseTensor, read_sparse_tensor, write_sparse_tensor};
    let values: Vec<f64> = (0..24)
        .map(|i| if i % 5 == 0 { f64::from(i) } else { 0.0 })
        .collect();
    let dense = Tensor::from_vec(values, vec![6, 4]).unwrap();
    for store in stores(100 * MB) {
        let client = store.client();
        for format in [
            SparseFormat::Coo,
            SparseFormat::Csr,
            SparseFormat::Csc,
            SparseFormat::Csf,
        ] {
            let sparse = SparseTensor::from_dense(&dense, format).unwrap();
            let id = fresh_id(5);
            write_sparse_tensor(&sparse, &mut PlasmaSink::new(&client, id)).unwrap();
            let got = client.get_one(id, SECOND).unwrap().expect("sealed");
            let object = got.data.as_slice().as_ptr_range();
            let mut source = PlasmaSource::from_objects([got]);
            let back = read_sparse_tensor(&mut source).unwrap();
            assert_eq!(back.format(), format, "{:?}", store.kind);
            let data = back.data().as_bytes().as_ptr();
            assert!(object.contains(&data), "{format:?}: values read in place");
            assert_eq!(
                back.to_dense().unwrap().to_vec::<f64>().unwrap(),
                dense.to_vec::<f64>().unwrap(),
                "{format:?} via {:?}",
                store.kind
            );
        }
    }
}

#[test]
fn connect_retries_then_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let options = tensor_ipc_plasma_client::ClientOptions {
        connect_retries: 3,
        retry_delay: Duration::from_millis(10),
        ..Default::default()
    };
    let err = PlasmaClient::connect_with(&path, options).unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    // A store that starts while the client retries is found.
    for kind in [
        crate::client_support::Kind::Original,
        crate::client_support::Kind::Ours,
    ] {
        let Some(bin) = crate::client_support::peer(kind.var()) else {
            continue;
        };
        let socket = dir.path().join(format!("{kind:?}.sock"));
        let starter = {
            let socket = socket.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(400));
                std::process::Command::new(bin)
                    .arg("-s")
                    .arg(&socket)
                    .args(["-m", "1048576"])
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
        };
        let t = std::time::Instant::now();
        let client = PlasmaClient::connect(&socket);
        let mut child = starter.join().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let client = client.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(client.capacity(), MB as i64);
        assert!(t.elapsed() >= Duration::from_millis(300), "{kind:?}");
    }
}

/// Reply polling is bounded: a thread waiting in a long `get` polls only briefly, then
/// sleeps (its CPU time stays near zero). With polling off, requests work the same.
#[test]
fn reply_polling_stops_while_a_get_waits() {
    use tensor_ipc_plasma_client::ClientOptions;
    fn thread_cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime: fields 14 and 15 of the whole line.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
    for store in stores(10 * MB) {
        let polling = store.client_with(ClientOptions {
            reply_poll: Duration::from_millis(20),
            ..Default::default()
        });
        let before = thread_cpu_ticks();
        let got = polling
            .get_one(fresh_id(9), Some(Duration::from_millis(800)))
            .unwrap();
        let used = thread_cpu_ticks() - before;
        assert!(got.is_none());
        // Polling through the whole wait would be about 80 ticks of 10 ms.
        assert!(used <= 10, "{:?}: {used} ticks while waiting", store.kind);

        let quiet = store.client_with(ClientOptions {
            reply_poll: Duration::ZERO,
            ..Default::default()
        });
        let id = fresh_id(9);
        quiet.create_and_seal(id, b"quiet", b"").unwrap();
        let object = quiet.get_one(id, SECOND).unwrap().unwrap();
        assert_eq!(object.data.as_slice(), b"quiet", "{:?}", store.kind);
    }
}

#[test]
fn seal_and_keep_holds_the_object_until_its_buffers_go() {
    for store in stores(10 * MB) {
        let kind = store.kind;
        let client = store.client();
        let id = fresh_id(1);
        let mut created = client.create(id, 1000, b"meta").unwrap();
        created.data_mut().fill(7);
        let kept = created.seal_and_keep().unwrap();
        assert_eq!(kept.data.as_slice(), &[7u8; 1000][..]);
        assert_eq!(kept.metadata.as_slice(), b"meta");
        assert_eq!(client.hash(id).unwrap(), object_digest(&[7; 1000], b"meta"));
        let info = client.list().unwrap();
        let info = info.iter().find(|i| i.object_id == id).unwrap();
        assert_eq!(info.ref_count, 1, "{kind:?}: referenced after the seal");
        assert_eq!(
            client.evict(1).unwrap(),
            0,
            "{kind:?}: not evictable while kept"
        );
        // A local get shares the reference; the last buffer releases it.
        let again = client.get_one(id, SECOND).unwrap().unwrap();
        drop(kept);
        assert_eq!(
            client.evict(1).unwrap(),
            0,
            "{kind:?}: the get still holds it"
        );
        drop(again);
        assert_eq!(client.evict(1).unwrap(), 1004, "{kind:?}: released");
        assert_eq!(client.held_objects(), 0);
    }
}
