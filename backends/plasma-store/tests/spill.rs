//! The external store under faults: `file://` spill files deleted behind the store's back,
//! a restart on the same directory, a directory made read-only, full, or under a file-size
//! limit; a `hashtable://` store bounded by its size. Through all of it, every object the
//! store acknowledged (sealed, not deleted) is still there, byte for byte, unless its file
//! was deleted behind the store's back, which it then answers as not found at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{ObjectId, ObjectSpec, Status};

use crate::cli::StoreProcess;
use crate::raw_client::*;

fn numbered(n: u32) -> ObjectId {
    let mut id = [0x3c; 20];
    id[..4].copy_from_slice(&n.to_le_bytes());
    ObjectId(id)
}

/// The bytes of object `n` (data, `len` bytes).
fn pattern(n: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(n * 7) as u8)
        .collect()
}

/// Puts object `n` (`len` bytes, released); false if the store refused it.
fn put(c: &mut Client, n: u32, len: usize) -> bool {
    match c.create_full(numbered(n), len as u64, 0, true) {
        Ok(spec) => {
            c.write(&spec, 0, &pattern(n, len));
            assert_eq!(c.seal(numbered(n)), Status::Ok);
            c.release(numbered(n));
            true
        }
        Err(Status::OutOfMemory) => false,
        Err(e) => panic!("create of {n}: {e:?}"),
    }
}

/// Gets object `n` within `timeout_ms`, checks its bytes and releases it; false if missing.
fn get_checked(c: &mut Client, n: u32, len: usize, timeout_ms: i64) -> bool {
    let spec = c.get(&[numbered(n)], timeout_ms)[0];
    if spec == ObjectSpec::MISSING {
        return false;
    }
    assert_eq!(c.read(&spec), pattern(n, len), "object {n}");
    c.release(numbered(n));
    true
}

/// The objects the store acknowledged, by number, with their lengths.
type Kept = BTreeMap<u32, usize>;

/// Checks every kept object is still contained and, with `readable`, that it comes back
/// byte for byte.
fn check_kept(c: &mut Client, kept: &Kept, readable: bool) {
    for (&n, &len) in kept {
        assert!(c.contains(numbered(n)), "object {n} lost");
        if readable {
            assert!(get_checked(c, n, len, 10_000), "object {n} not back");
        }
    }
    assert!(
        c.list()
            .iter()
            .all(|o| o.ref_count == 0 && !o.digest.is_empty()),
        "a reference or an unsealed object is left"
    );
}

/// The spill files in `dir` (`ID.COPY`, each checked to be longer than a header) by object,
/// and the names of the other files (but the lock).
fn spill_files(dir: &Path) -> (Vec<(ObjectId, PathBuf)>, Vec<String>) {
    let (mut spilled, mut other) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let len = entry.metadata().unwrap().len();
        let id = name
            .split_once('.')
            .filter(|(_, copy)| copy.len() == 16 && !copy.contains('.'))
            .and_then(|(id, _)| ObjectId::from_hex(id));
        match id {
            Some(id) => {
                assert!(
                    len > tensor_ipc_plasma_store::SPILL_HEADER as u64,
                    "{name} is {len} bytes"
                );
                spilled.push((id, entry.path()));
            }
            None if name == ".lock" => {}
            None => other.push(name),
        }
    }
    (spilled, other)
}

fn number_of(id: &ObjectId) -> u32 {
    u32::from_le_bytes(id.0[..4].try_into().unwrap())
}

/// A spill file deleted behind the store's back: `contains` turns false and a Get with no
/// timeout answers not found at once (before: `contains` stayed true and the Get blocked
/// forever); the other objects are untouched.
#[test]
fn a_spill_file_deleted_behind_the_stores_back_is_not_found_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("file://{}", dir.path().display());
    let s = store_with(1 << 20, |b| b.external_store(endpoint));
    let mut c = s.client();
    let mut kept = Kept::new();
    for n in 0..12 {
        assert!(put(&mut c, n, 200_000));
        kept.insert(n, 200_000);
    }
    let (spilled, _) = spill_files(dir.path());
    assert!(spilled.len() >= 4, "{} spilled", spilled.len());
    let (first, second) = (number_of(&spilled[0].0), number_of(&spilled[1].0));
    std::fs::remove_file(&spilled[0].1).unwrap();
    std::fs::remove_file(&spilled[1].1).unwrap();
    assert!(!c.contains(numbered(first)));
    let t0 = Instant::now();
    assert!(!get_checked(&mut c, first, 200_000, -1));
    assert!(!get_checked(&mut c, second, 200_000, -1), "restore fails");
    assert!(!c.contains(numbered(second)));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    kept.remove(&first);
    kept.remove(&second);
    check_kept(&mut c, &kept, true);
}

/// After a restart on the same directory, the objects spilled there are back: listed,
/// contained, and got with their data, metadata and digests; what a run leaves unfinished
/// or is not a whole spill file is removed, other files are left alone.
#[test]
fn a_restart_brings_spilled_objects_back_sealed_with_their_digests() {
    let spill = tempfile::tempdir().unwrap();
    let endpoint = format!("file://{}", spill.path().display());
    let args = ["-m", "1M", "--prefault=false", "-e", endpoint.as_str()];
    let mut first = StoreProcess::start(&args, std::process::Stdio::null());
    let mut c = Client::connect(&first.socket);
    for n in 0..12u32 {
        // Inline creates: 200 kB frames, read on a thread of their own.
        let reply = c.request(&CreateAndSealRequest {
            object_id: numbered(n),
            evict_if_full: true,
            data: pattern(n, 200_000),
            metadata: b"md".to_vec(),
            digest: vec![n as u8; 8],
        });
        assert_eq!(reply.error, Status::Ok);
    }
    drop(c);
    rustix::process::kill_process(first.pid(), rustix::process::Signal::TERM).unwrap();
    assert!(first.child.wait().unwrap().success());
    let (spilled, _) = spill_files(spill.path());
    assert!(spilled.len() >= 4, "{} spilled", spilled.len());
    let junk = [
        format!(".{}.{:016x}.tmp", numbered(99).hex(), 1),
        format!("{}.{:016x}", numbered(98).hex(), 1),
        "notes.txt".to_string(),
    ];
    for name in &junk {
        std::fs::write(spill.path().join(name), b"not a spill file").unwrap();
    }
    let second = StoreProcess::start_logged(&args);
    let mut c = Client::connect(&second.socket);
    let listed = c.list();
    assert_eq!(listed.len(), spilled.len());
    for (id, _) in &spilled {
        let n = number_of(id);
        let info = listed.iter().find(|o| o.object_id == *id).unwrap();
        assert_eq!((info.data_size, info.metadata_size), (200_000, 2));
        assert_eq!(info.digest, vec![n as u8; 8]);
        assert!(c.contains(*id));
        let spec = c.get(&[*id], 10_000)[0];
        let bytes = c.read(&spec);
        assert_eq!(&bytes[..200_000], &pattern(n, 200_000)[..], "object {n}");
        assert_eq!(&bytes[200_000..], b"md");
        c.release(*id);
    }
    let (_, other) = spill_files(spill.path());
    assert_eq!(other, vec!["notes.txt".to_string()]);
    assert!(second.log().contains("spilled by a previous run are back"));
}

/// A spill directory that may be mounted as a small tmpfs (as root), so that it can be
/// filled up and made read-only.
struct SpillDir {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SpillDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = rustix::process::geteuid().is_root()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!(
                "spill faults: no tmpfs could be mounted (needs root): the full-disk case \
                 (ENOSPC) is not run, read-only uses the directory's mode"
            );
        }
        Self { dir, mounted }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount -o remount,{options}");
    }

    /// Makes the directory read-only (or writable again).
    fn read_only(&self, on: bool) {
        if self.mounted {
            self.remount(if on { "ro" } else { "rw" });
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = if on { 0o500 } else { 0o700 };
            std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Spill faults one after the other on one store: the directory full (a 1 MiB tmpfs, as
/// root), read-only, under a file-size limit, its files deleted. A spill that fails keeps its
/// object in memory and refuses the create that needed the room; nothing the store
/// acknowledged is lost; no partial file is left.
#[test]
fn spill_faults_lose_nothing_the_store_kept() {
    let spill = SpillDir::new();
    let endpoint = format!("file://{}", spill.path().display());
    let store =
        StoreProcess::start_logged(&["-m", "2M", "--prefault=false", "-e", endpoint.as_str()]);
    let mut c = Client::connect(&store.socket);
    let mut kept = Kept::new();
    let mut next = 0u32;
    let mut put_some = |c: &mut Client, kept: &mut Kept, count: u32, len: usize| {
        let mut refused = 0;
        for _ in 0..count {
            if put(c, next, len) {
                kept.insert(next, len);
            } else {
                refused += 1;
            }
            next += 1;
        }
        refused
    };
    // Room for 7 objects of 256 kB in memory: the rest is spilled.
    assert_eq!(put_some(&mut c, &mut kept, 10, 256_000), 0);
    check_kept(&mut c, &kept, true);

    if spill.mounted {
        // Full: the 1 MiB tmpfs takes three spill files.
        let refused = put_some(&mut c, &mut kept, 10, 256_000);
        assert!(refused > 0, "a full disk refused nothing");
        check_kept(&mut c, &kept, false);
        assert!(
            store.log().contains("No space left on device"),
            "{}",
            store.log()
        );
        spill.remount("size=64m");
        check_kept(&mut c, &kept, true);
    }

    spill.read_only(true);
    let refused = put_some(&mut c, &mut kept, 10, 256_000);
    assert!(refused > 0, "a read-only directory refused nothing");
    check_kept(&mut c, &kept, false);
    spill.read_only(false);
    check_kept(&mut c, &kept, true);

    // A file-size limit below the object size: EFBIG (the store ignores SIGXFSZ).
    let limit = |bytes: Option<u64>| {
        let l = rustix::process::Rlimit {
            current: bytes,
            maximum: None,
        };
        rustix::process::prlimit(Some(store.pid()), rustix::process::Resource::Fsize, l).unwrap();
    };
    limit(Some(100_000));
    let refused = put_some(&mut c, &mut kept, 10, 256_000);
    assert!(refused > 0, "a file-size limit refused nothing");
    check_kept(&mut c, &kept, false);
    limit(None);
    check_kept(&mut c, &kept, true);
    assert!(
        store.log().contains("it stays in memory"),
        "{}",
        store.log()
    );

    // Files deleted mid-run: those objects are gone (and say so), the others are not.
    assert_eq!(put_some(&mut c, &mut kept, 10, 256_000), 0);
    let (spilled, other) = spill_files(&spill.path());
    assert!(other.is_empty(), "partial or stray files: {other:?}");
    for (id, path) in spilled.iter().take(3) {
        std::fs::remove_file(path).unwrap();
        let n = number_of(id);
        assert!(!get_checked(&mut c, n, 256_000, -1));
        kept.remove(&n);
    }
    check_kept(&mut c, &kept, true);
    let (_, other) = spill_files(&spill.path());
    assert!(other.is_empty(), "partial or stray files: {other:?}");
}

/// `hashtable://` holds at most its `?size=` (before: unbounded, 4.4 GB in a test): beyond
/// it the objects spilled longest ago are dropped, with a log line, and the store's memory
/// stays bounded.
#[test]
fn a_bounded_hashtable_drops_the_oldest_spilled_objects() {
    let store = StoreProcess::start_logged(&[
        "-m",
        "4M",
        "--prefault=false",
        "-e",
        "hashtable://t?size=8M",
    ]);
    let mut c = Client::connect(&store.socket);
    let rss = store.rss();
    for n in 0..200u32 {
        assert!(put(&mut c, n, 500_000), "object {n}");
    }
    let grown = store.rss().saturating_sub(rss);
    assert!(
        grown < 40 << 20,
        "grew by {} MB for 100 MB of objects",
        grown >> 20
    );
    // The newest are all there, the oldest are gone.
    for n in 185..200 {
        assert!(get_checked(&mut c, n, 500_000, 10_000), "object {n}");
    }
    assert!(!c.contains(numbered(0)));
    let held: i64 = c.list().iter().map(|o| o.data_size).sum();
    assert!(held <= 12 << 20, "{held} bytes held");
    assert!(store.log().contains("dropping object"), "{}", store.log());
}
