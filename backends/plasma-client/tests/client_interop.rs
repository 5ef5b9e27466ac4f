//! The interop matrix: objects written by the Rust client read by pyarrow 11
//! and by a C++ libplasma (Arrow 11) reader, objects written by pyarrow 11 read
//! by Rust, notifications in both directions, digests equal to pyarrow's
//! `hash()`; each against Arrow 11's store and ours.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client_support::{SECOND, check, fresh_id, hex, peer, python, stores};
use tensor_ipc::{Tensor, read_tensor, write_tensor};
use tensor_ipc_plasma_client::ObjectId;
use tensor_ipc_plasma_client::{PlasmaSink, PlasmaSource, object_digest};

const MB: u64 = 1 << 20;

const PY_READ: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
import pyarrow as pa, pyarrow.plasma as plasma
c = plasma.connect(sys.argv[1])
for h in sys.argv[2:]:
    oid = plasma.ObjectID(bytes.fromhex(h))
    [buf] = c.get_buffers([oid], timeout_ms=5000)
    t = pa.ipc.read_tensor(pa.BufferReader(buf))
    a = t.to_numpy()
    info = c.list()[oid]
    print(h, list(a.shape), a.dtype, float(a.astype('float64').sum()), c.hash(oid).hex(),
          info["state"], info["data_size"])
"#;

const PY_HASH: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
import pyarrow.plasma as plasma
c = plasma.connect(sys.argv[1])
for h in sys.argv[2:]:
    print(c.hash(plasma.ObjectID(bytes.fromhex(h))).hex())
"#;

#[test]
fn rust_objects_read_by_pyarrow11() {
    let Some(py) = peer("PLASMA_PYTHON11") else {
        return;
    };
    for store in stores(200 * MB) {
        let client = store.client();
        let ids = [fresh_id(10), fresh_id(10)];
        let a =
            Tensor::from_vec((0..12).map(|i| i as f32).collect::<Vec<_>>(), vec![3, 4]).unwrap();
        let b = Tensor::from_vec(vec![7i64; 1000], vec![10, 10, 10]).unwrap();
        write_tensor(&a, &mut PlasmaSink::new(&client, ids[0])).unwrap();
        write_tensor(&b, &mut PlasmaSink::new(&client, ids[1])).unwrap();
        let out = python(
            &py,
            PY_READ,
            &[store.socket.to_str().unwrap(), &hex(&ids[0]), &hex(&ids[1])],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let ours = |id: ObjectId| {
            let o = client.get_one(id, SECOND).unwrap().unwrap();
            hex_bytes(&object_digest(o.data.as_slice(), o.metadata.as_slice()))
        };
        let want0 = format!(
            "{} [3, 4] float32 66.0 {} sealed",
            hex(&ids[0]),
            ours(ids[0])
        );
        let want1 = format!(
            "{} [10, 10, 10] int64 7000.0 {} sealed",
            hex(&ids[1]),
            ours(ids[1])
        );
        assert!(
            lines[0].starts_with(&want0),
            "{:?}: {} vs {want0}",
            store.kind,
            lines[0]
        );
        assert!(
            lines[1].starts_with(&want1),
            "{:?}: {} vs {want1}",
            store.kind,
            lines[1]
        );

        // Digests of raw objects of every size class, chunked scheme included.
        let mut raw = Vec::new();
        for (size, meta) in [
            (0usize, 0usize),
            (5, 2),
            (1000, 1000),
            (MB as usize, 7),
            (3_000_017, 0),
            (20_000_000, 13),
        ] {
            let id = fresh_id(11);
            let mut obj = client.create(id, size, &vec![0x5a; meta]).unwrap();
            for (i, b) in obj.data_mut().iter_mut().enumerate() {
                *b = (i as u32).wrapping_mul(2654435761).rotate_left(7) as u8;
            }
            let content = obj.data().to_vec();
            let digest = obj.seal().unwrap();
            raw.push((id, hex_bytes(&digest)));
            // The same bytes copied in as three parts, hashed while copying.
            let id = fresh_id(11);
            let obj = client.create(id, size, &vec![0x5a; meta]).unwrap();
            let (a, rest) = content.split_at(size / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            let digest = obj.fill_and_seal(&[a, b, c]).unwrap();
            raw.push((id, hex_bytes(&digest)));
        }

        let mut args = vec![store.socket.to_str().unwrap().to_owned()];
        args.extend(raw.iter().map(|(id, _)| hex(id)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = python(&py, PY_HASH, &args);
        let theirs: Vec<&str> = out.lines().collect();
        let ours: Vec<&str> = raw.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            theirs, ours,
            "{:?}: pyarrow hash() vs our seal digests",
            store.kind
        );
    }
}

#[test]
fn seed_reader_reads_what_the_rust_producer_wrote() {
    let Some(py) = peer("PLASMA_PYTHON11") else {
        return;
    };
    let reader = crate::client_support::workspace_root().join("examples/seed_reader.py");
    for store in stores(100 * MB) {
        let client = store.client();
        // seed_producer's steps, as in examples/seed_producer.rs.
        let tensor = Tensor::from_vec(vec![2.0f32; 1000], vec![1000]).unwrap();
        write_tensor(&tensor, &mut PlasmaSink::new(&client, ObjectId([b'1'; 20]))).unwrap();
        drop(client);
        let out = Command::new(&py)
            .arg(&reader)
            .arg(&store.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = check(out, "seed_reader.py");
        assert!(out.contains("all 2.0: OK"), "{:?}: {out}", store.kind);
    }
}

#[test]
fn rust_objects_read_by_cpp_libplasma() {
    let Some(reader) = peer("PLASMA_CPP_READER") else {
        return;
    };
    for store in stores(100 * MB) {
        let client = store.client();
        let id = fresh_id(12);
        let t = Tensor::from_vec(vec![2.0f32; 1000], vec![1000]).unwrap();
        write_tensor(&t, &mut PlasmaSink::new(&client, id)).unwrap();
        let digest = client.hash(id).unwrap();
        let out = Command::new(&reader)
            .args(["read", store.socket.to_str().unwrap(), &hex(&id)])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = check(out, "C++ reader");
        let want = format!(
            "shape=[1000] dtype=float sum=2000.0 zero_copy=1 digest={}",
            hex_bytes(&digest)
        );
        assert_eq!(out.trim(), want, "{:?}", store.kind);
    }
}

const PY_WRITE: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pyarrow as pa, pyarrow.plasma as plasma
c = plasma.connect(sys.argv[1])
tid, rid, bid = (plasma.ObjectID(bytes.fromhex(h)) for h in sys.argv[2:5])
t = pa.Tensor.from_numpy(np.arange(24, dtype=np.float64).reshape(2, 3, 4))
buf = c.create(tid, pa.ipc.get_tensor_size(t))
pa.ipc.write_tensor(t, pa.FixedSizeBufferWriter(buf))
c.seal(tid)
buf = c.create(rid, 10, b"meta")
np.frombuffer(buf, dtype=np.uint8)[:] = np.frombuffer(b"0123456789", dtype=np.uint8)
c.seal(rid)
big = c.create(bid, 3 * 1024 * 1024 + 3)
np.frombuffer(big, dtype=np.uint8)[:] = np.arange(len(big)) % 251
c.seal(bid)
print(c.hash(tid).hex(), c.hash(rid).hex(), c.hash(bid).hex())
"#;

#[test]
fn pyarrow11_objects_read_by_rust() {
    let Some(py) = peer("PLASMA_PYTHON11") else {
        return;
    };
    for store in stores(100 * MB) {
        let client = store.client();
        let ids = [fresh_id(13), fresh_id(13), fresh_id(13)];
        let out = python(
            &py,
            PY_WRITE,
            &[
                store.socket.to_str().unwrap(),
                &hex(&ids[0]),
                &hex(&ids[1]),
                &hex(&ids[2]),
            ],
        );
        let their_hashes: Vec<&str> = out.split_whitespace().collect();
        let mut source = PlasmaSource::get(&client, ids[0], SECOND).unwrap();
        let t = read_tensor(&mut source).unwrap();
        assert_eq!(t.shape(), [2, 3, 4]);
        assert_eq!(
            t.to_vec::<f64>().unwrap(),
            (0..24).map(f64::from).collect::<Vec<_>>()
        );
        let raw = client.get_one(ids[1], SECOND).unwrap().unwrap();
        assert_eq!(raw.data.as_slice(), b"0123456789");
        assert_eq!(raw.metadata.as_slice(), b"meta");
        let big = client.get_one(ids[2], SECOND).unwrap().unwrap();
        assert!(
            big.data
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8)
        );
        let ours: Vec<String> = ids
            .iter()
            .map(|&id| hex_bytes(&client.hash(id).unwrap()))
            .collect();
        assert_eq!(their_hashes, ours, "{:?}", store.kind);
        // The digests pyarrow sent with its seals, as the store lists them.
        let listed = client.list().unwrap();
        for (id, h) in ids.iter().zip(&ours) {
            let info = listed.iter().find(|i| i.object_id == *id).unwrap();
            assert_eq!(&hex_bytes(&info.digest), h);
        }
    }
}

const PY_SEAL_AND_DELETE: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pyarrow.plasma as plasma
c = plasma.connect(sys.argv[1])
a, b = (plasma.ObjectID(bytes.fromhex(h)) for h in sys.argv[2:4])
buf = c.create(a, 100, b"md")
np.frombuffer(buf, dtype=np.uint8)[:] = np.arange(100)
c.seal(a)
del buf
c.create_and_seal(b, b"inline", b"")
c.delete([b])
"#;

const PY_SUBSCRIBE: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
import pyarrow.plasma as plasma
c = plasma.connect(sys.argv[1])
c.subscribe()
print("ready", flush=True)
want = bytes.fromhex(sys.argv[2])
while True:
    oid, data_size, meta_size = c.get_next_notification()
    if oid.binary() == want:
        print("seen", oid.binary().hex(), data_size, meta_size, flush=True)
        break
"#;

#[test]
fn notifications_between_rust_and_pyarrow11() {
    let Some(py) = peer("PLASMA_PYTHON11") else {
        return;
    };
    for store in stores(100 * MB) {
        let client = store.client();
        // Rust sees what pyarrow seals and deletes.
        let mut sub = client.subscribe().unwrap();
        let (a, b) = (fresh_id(14), fresh_id(14));
        python(
            &py,
            PY_SEAL_AND_DELETE,
            &[store.socket.to_str().unwrap(), &hex(&a), &hex(&b)],
        );
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let n = sub
                .recv_timeout(Some(Duration::from_secs(10)))
                .unwrap()
                .unwrap_or_else(|| panic!("{:?}: missing notifications, got {seen:?}", store.kind));
            if n.object_id == a || n.object_id == b {
                seen.push(n);
            }
        }
        assert_eq!(
            (seen[0].object_id, seen[0].data_size, seen[0].metadata_size),
            (a, 100, 2)
        );
        let bytes: Vec<u8> = (0..100).collect();
        assert_eq!(seen[0].digest, object_digest(&bytes, b"md"));
        assert_eq!(
            (seen[1].object_id, seen[1].data_size, seen[1].is_deletion),
            (b, 6, false)
        );
        assert_eq!(
            (seen[2].object_id, seen[2].data_size, seen[2].is_deletion),
            (b, -1, true)
        );

        // pyarrow sees what Rust seals.
        let c = fresh_id(15);
        let mut child = Command::new(&py)
            .args(["-c", PY_SUBSCRIBE, store.socket.to_str().unwrap(), &hex(&c)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Watchdog: never hang the suite on a subscriber that sees nothing
        // (kills only this child, and only while it has not been reaped).
        let child = std::sync::Arc::new(std::sync::Mutex::new(child));
        {
            let child = child.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(60));
                let mut c = child.lock().unwrap();
                if matches!(c.try_wait(), Ok(None)) {
                    let _ = c.kill();
                }
            });
        }
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let mut obj = client.create(c, 12, b"abc").unwrap();
        obj.data_mut().fill(1);
        obj.seal().unwrap();
        assert_eq!(
            lines.next().unwrap().unwrap(),
            format!("seen {} 12 3", hex(&c)),
            "{:?}",
            store.kind
        );
        assert!(child.lock().unwrap().wait().unwrap().success());
        // And the Rust subscription saw its own seal too.
        let mine = loop {
            let n = sub
                .recv_timeout(Some(Duration::from_secs(10)))
                .unwrap()
                .unwrap();
            if n.object_id == c {
                break n;
            }
        };
        assert_eq!((mine.data_size, mine.metadata_size), (12, 3));
    }
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
