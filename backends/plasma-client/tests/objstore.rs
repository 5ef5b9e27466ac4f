//! Object storage as the store's external tier (`-e s3://bucket/prefix`, any object-store
//! URL) and `--write-through`: eviction to a bucket and transparent restore, a spill that
//! fails (the objects stay, the create is refused, the log says why), and two stores sharing
//! one bucket, a tensor written through store A by the Rust client and read through store B
//! by pyarrow 11's client (the seed's step 3), byte-identical, digest included.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tensor_ipc::{Tensor, TensorSinkExt};
use tensor_ipc_object_store::Path as Key;
use tensor_ipc_plasma_client::{ObjectId, PlasmaClient, PlasmaSink};

use crate::s3_server::S3;

/// This project's `plasma-store` binary (the release build the test command makes), or
/// `None` after a notice outside CI.
fn store_binary() -> Option<PathBuf> {
    crate::client_support::peer("PLASMA_STORE_OURS")
}

/// The binary with `args`, the `AWS_*` settings of `s3` (if any) and a fresh socket; killed on
/// drop, its stderr kept in a file.
struct Store {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Store {
    /// `None` (after a notice, outside CI) without the store binary.
    fn start(args: &[&str], s3: Option<&S3>) -> Option<Store> {
        let bin = store_binary()?;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("plasma.sock");
        let log = dir.path().join("store.log");
        let mut command = Command::new(bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        if let Some(s3) = s3 {
            command.envs(s3.aws_env());
        }
        let child = command
            .args(args)
            .arg("-s")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "store did not come up"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Store {
            child,
            socket,
            log,
            _dir: dir,
        })
    }

    fn client(&self) -> PlasmaClient {
        PlasmaClient::connect(&self.socket).unwrap()
    }

    fn log(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn id(n: u8) -> ObjectId {
    ObjectId([n; 20])
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// Six objects of 100 kB (and 3 bytes of metadata) through a store of 300 kB: most are
/// evicted to `endpoint` and come back on get.
fn spill_and_restore(store: &Store) {
    let client = store.client();
    for n in 0..6u8 {
        let mut object = client.create(id(n), 100_000, b"met").unwrap();
        object.data_mut().fill(n);
        object.seal().unwrap();
    }
    for n in 0..6u8 {
        assert!(client.contains(id(n)).unwrap(), "object {n}");
        let got = client
            .get_one(id(n), Some(Duration::from_secs(10)))
            .unwrap()
            .unwrap_or_else(|| panic!("object {n} did not come back"));
        assert_eq!(got.data.as_slice(), &vec![n; 100_000][..], "object {n}");
        assert_eq!(got.metadata.as_slice(), b"met");
    }
}

#[test]
fn evicted_objects_go_to_a_memory_url_and_come_back() {
    let Some(store) = Store::start(&["-m", "300000", "-e", "memory://spill/objects"], None) else {
        return;
    };
    spill_and_restore(&store);
}

#[test]
fn evicted_objects_go_to_a_bucket_and_come_back() {
    let Some(s3) = S3::shared() else { return };
    let prefix = unique("spill");
    let endpoint = format!("s3://{}/{prefix}", s3.bucket);
    let Some(store) = Store::start(&["-m", "300000", "-e", &endpoint], Some(&s3)) else {
        return;
    };
    let client = store.client();
    for n in 0..6u8 {
        client
            .create_and_seal(id(n), &vec![n; 100_000], b"")
            .unwrap();
    }
    // Some are in the bucket now, as data + metadata + trailer, under their hex ids.
    let storage = s3.storage();
    let in_bucket: Vec<u8> = (0..6u8)
        .filter(|&n| {
            storage
                .exists(&Key::from(format!("{prefix}/{}", id(n).hex())))
                .unwrap()
        })
        .collect();
    assert!(!in_bucket.is_empty(), "nothing was spilled");
    drop(client);
    spill_and_restore_existing(&store);
    assert!(!store.log().contains("failed"), "{}", store.log());
}

/// Gets the six objects `create_and_seal` stored (data only).
fn spill_and_restore_existing(store: &Store) {
    let client = store.client();
    for n in 0..6u8 {
        let got = client
            .get_one(id(n), Some(Duration::from_secs(10)))
            .unwrap()
            .unwrap_or_else(|| panic!("object {n} did not come back"));
        assert_eq!(got.data.as_slice(), &vec![n; 100_000][..], "object {n}");
    }
}

#[test]
fn a_spill_that_fails_keeps_the_objects_and_refuses_the_create() {
    let Some(s3) = S3::shared() else { return };
    let Some(store) = Store::start(
        &["-m", "300000", "-e", "s3://no-such-bucket-here/spill"],
        Some(&s3),
    ) else {
        return;
    };
    let client = store.client();
    for n in 0..2u8 {
        client
            .create_and_seal(id(n), &vec![n; 140_000], b"")
            .unwrap();
    }
    // No room without spilling, and the spill fails: refused, objects kept.
    let err = client
        .create_and_seal(id(9), &vec![9; 140_000], b"")
        .unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    for n in 0..2u8 {
        let got = client
            .get_one(id(n), Some(Duration::ZERO))
            .unwrap()
            .unwrap();
        assert_eq!(got.data.as_slice(), &vec![n; 140_000][..]);
    }
    let log = store.log();
    assert!(log.contains("to the external store failed"), "{log}");
    assert!(log.contains("bucket does not exist"), "{log}");
}

/// A Python with pyarrow 11 (`pyarrow.plasma`).
fn pyarrow11() -> Option<PathBuf> {
    let found = crate::peers::find("PLASMA_PYTHON11", "target/venv-pyarrow11/bin/python");
    if found.is_none() {
        crate::peers::skipped(
            "two stores sharing a bucket, read by pyarrow 11",
            "no pyarrow 11 (bash .ci/plasma-client.sh --setup-only)",
        );
    }
    found
}

fn seed_reader() -> PathBuf {
    crate::peers::workspace_root().join("examples/seed_reader.py")
}

#[test]
fn two_stores_sharing_one_bucket_serve_each_others_objects() {
    let Some(s3) = S3::shared() else { return };
    let Some(python) = pyarrow11() else { return };
    let endpoint = format!("s3://{}/{}", s3.bucket, unique("shared"));
    let args = ["-m", "50000000", "-e", &endpoint, "--write-through"];
    let Some(a) = Store::start(&args, Some(&s3)) else {
        return;
    };
    let Some(b) = Store::start(&args, Some(&s3)) else {
        return;
    };

    // The seed's producer on store A: 1000 floats of 2.0 under 20 * b"1".
    let seed = ObjectId([b'1'; 20]);
    let client_a = a.client();
    let tensor = Tensor::from_vec(vec![2.0f32; 1000], vec![1000]).unwrap();
    PlasmaSink::new(&client_a, seed)
        .write_tensor(&tensor)
        .unwrap();
    // A larger one with metadata, through a multipart upload.
    let big = id(7);
    let mut object = client_a.create(big, 20 << 20, b"meta").unwrap();
    for (i, chunk) in object.data_mut().chunks_mut(4096).enumerate() {
        chunk.fill(i as u8);
    }
    object.seal().unwrap();

    // The seed's step 3, pyarrow 11 against store B, which has never seen the object.
    let out = Command::new(&python)
        .arg("-W")
        .arg("ignore")
        .arg(seed_reader())
        .arg(&b.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all 2.0: OK"),
        "{stdout}{}\nstore B: {}",
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );

    // Byte-identical on both stores, digests included.
    let client_b = b.client();
    for object in [seed, big] {
        let timeout = Some(Duration::from_secs(20));
        let from_a = client_a.get_one(object, timeout).unwrap().unwrap();
        let from_b = client_b.get_one(object, timeout).unwrap().unwrap();
        assert_eq!(from_a.data.as_slice(), from_b.data.as_slice(), "{object}");
        assert_eq!(from_a.metadata.as_slice(), from_b.metadata.as_slice());
        assert_eq!(
            client_a.hash(object).unwrap(),
            client_b.hash(object).unwrap()
        );
        let listed = client_b.list().unwrap();
        let info = listed.iter().find(|i| i.object_id == object).unwrap();
        assert_eq!(info.digest, client_a.hash(object).unwrap().to_vec());
    }
    assert_eq!(
        client_b
            .get_one(big, None)
            .unwrap()
            .unwrap()
            .metadata
            .as_slice(),
        b"meta"
    );
    // An id neither store has is still a plain miss.
    assert!(
        client_b
            .get_one(id(99), Some(Duration::ZERO))
            .unwrap()
            .is_none()
    );
    assert!(!a.log().contains("failed"), "{}", a.log());
}
