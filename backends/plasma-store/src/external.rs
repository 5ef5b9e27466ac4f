//! External stores that evicted objects spill to (`-e`): `hashtable://NAME` (in this
//! process) and `file://DIR` (one file per object, which survives a restart).
//!
//! An endpoint may end in `?size=BYTES` (suffixes as for `-m`): the most bytes of spilled
//! objects the external store holds. Beyond it the store drops the objects spilled longest
//! ago, with a log line each (see [`crate::state`]). The default for `hashtable://` is twice
//! the store's capacity (pyarrow 11's own eviction test puts twice the capacity through a
//! store and reads it all back); `file://` is unbounded by default (the file system's free
//! space is the bound there, and a spill that does not fit keeps its object in memory).
//!
//! # The `file://` format
//!
//! Each spill of an object is one file named `ID.COPY`: the object's id in hex (40
//! characters), a dot, and the copy number the store gave that spill (16 hex digits;
//! increasing, so that a late removal of an old copy never touches a new one). It is written
//! as `.ID.COPY.tmp` and renamed into place once complete, so a file with a spill file's name
//! is always whole. It holds a 64-byte header, all integers little-endian, then the object's
//! data and metadata:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"plasmaSP"` |
//! | 8 | 4 | format version, 1 |
//! | 12 | 4 | header size, 64 |
//! | 16 | 8 | data size |
//! | 24 | 8 | metadata size |
//! | 32 | 8 | the digest the object was sealed with |
//! | 40 | 8 | creation time (seconds since the epoch) |
//! | 48 | 8 | construction duration (seconds, -1 if unknown) |
//! | 56 | 8 | reserved, 0 |
//!
//! A store starting on a directory takes it (an exclusive `flock` on `DIR/.lock`; a second
//! store on the same directory fails to start), deletes `.ID.COPY.tmp` files, files with a
//! spill file's name that are not whole spill files, and all but the newest copy of an
//! object (logging each), and takes the other spill files back as its evicted objects: they
//! are listed, `contains` is true, a Get brings them back into memory, sealed, with their
//! digests; its own copy numbers continue above theirs. Files with other names are left
//! alone.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tensor_ipc_plasma_protocol::ObjectId;

use crate::log;

/// What the store keeps about a spilled object besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpilledObject {
    /// Bytes of data (the first part of the object's bytes).
    pub data_size: u64,
    /// Bytes of metadata (the rest).
    pub metadata_size: u64,
    /// The digest the object was sealed with.
    pub digest: [u8; 8],
    /// When it was created, in seconds since the epoch.
    pub create_time: i64,
    /// How long its construction took, in seconds (-1 if unknown).
    pub construct_duration: i64,
}

impl SpilledObject {
    /// Data plus metadata bytes.
    pub fn size(&self) -> u64 {
        self.data_size.saturating_add(self.metadata_size)
    }
}

/// Where evicted sealed objects go, and come back from on Get. The store calls it from
/// several threads at once, never holding its own lock: implementations do their own
/// locking.
///
/// Each spill of an object is a *copy*, numbered by the store (`copy`, increasing, never
/// reused for that object): a removal or a take names the copy it means, so that one
/// running late never touches a newer copy of an object with the same id (deleted, created
/// again and spilled again in between).
pub trait ExternalStore: Send + Sync {
    /// Stores a copy of an object's bytes (data followed by metadata).
    fn put(&self, id: &ObjectId, copy: u64, object: &SpilledObject, bytes: &[u8])
    -> io::Result<()>;
    /// Fetches and removes a copy's bytes.
    fn take(&self, id: &ObjectId, copy: u64) -> io::Result<Vec<u8>>;
    /// Drops a copy.
    fn remove(&self, id: &ObjectId, copy: u64);
    /// Whether the copy is still there (a file can be deleted behind the store's back).
    fn contains(&self, id: &ObjectId, copy: u64) -> bool;
    /// The copies found there when the store started, oldest first (taken once).
    fn recover(&self) -> Vec<(ObjectId, u64, SpilledObject)> {
        Vec::new()
    }
    /// The most bytes of objects it holds (`?size=`), if bounded.
    fn limit(&self) -> Option<u64>;
    /// The endpoint, for log lines.
    fn name(&self) -> &str;
}

/// `hashtable://NAME`: a table in this process's memory.
pub struct HashTableStore {
    name: String,
    limit: u64,
    objects: Mutex<HashMap<ObjectId, (u64, Vec<u8>)>>,
}

impl HashTableStore {
    /// A table holding at most `limit` bytes of objects.
    pub fn new(name: impl Into<String>, limit: u64) -> Self {
        Self {
            name: name.into(),
            limit,
            objects: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, (u64, Vec<u8>)>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ExternalStore for HashTableStore {
    fn put(&self, id: &ObjectId, copy: u64, _: &SpilledObject, bytes: &[u8]) -> io::Result<()> {
        let mut kept = Vec::new();
        kept.try_reserve_exact(bytes.len())
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        kept.extend_from_slice(bytes);
        let mut table = self.table();
        if table.get(id).is_none_or(|(old, _)| *old < copy) {
            table.insert(*id, (copy, kept));
        }
        Ok(())
    }

    fn take(&self, id: &ObjectId, copy: u64) -> io::Result<Vec<u8>> {
        let mut table = self.table();
        match table.get(id) {
            Some((held, _)) if *held == copy => {
                Ok(table.remove(id).map(|(_, b)| b).unwrap_or_default())
            }
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn remove(&self, id: &ObjectId, copy: u64) {
        let mut table = self.table();
        if table.get(id).is_some_and(|(held, _)| *held == copy) {
            table.remove(id);
        }
    }

    fn contains(&self, id: &ObjectId, copy: u64) -> bool {
        self.table().get(id).is_some_and(|(held, _)| *held == copy)
    }

    fn limit(&self) -> Option<u64> {
        Some(self.limit)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The magic number opening every spill file.
pub const SPILL_MAGIC: [u8; 8] = *b"plasmaSP";
/// The spill file format version this store writes and reads.
pub const SPILL_VERSION: u32 = 1;
/// Bytes of a spill file's header.
pub const SPILL_HEADER: usize = 64;

/// Encodes a spill file's header.
fn encode_header(object: &SpilledObject) -> [u8; SPILL_HEADER] {
    let mut h = [0u8; SPILL_HEADER];
    h[0..8].copy_from_slice(&SPILL_MAGIC);
    h[8..12].copy_from_slice(&SPILL_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SPILL_HEADER as u32).to_le_bytes());
    h[16..24].copy_from_slice(&object.data_size.to_le_bytes());
    h[24..32].copy_from_slice(&object.metadata_size.to_le_bytes());
    h[32..40].copy_from_slice(&object.digest);
    h[40..48].copy_from_slice(&object.create_time.to_le_bytes());
    h[48..56].copy_from_slice(&object.construct_duration.to_le_bytes());
    h
}

/// Decodes a spill file's header, checking it against the file's length.
fn decode_header(h: &[u8; SPILL_HEADER], file_len: u64) -> Result<SpilledObject, String> {
    let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    if h[0..8] != SPILL_MAGIC {
        return Err("no spill file magic".into());
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    let header = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
    if version != SPILL_VERSION || header as usize != SPILL_HEADER {
        return Err(format!("format version {version} (header {header} bytes)"));
    }
    let object = SpilledObject {
        data_size: word(16),
        metadata_size: word(24),
        digest: h[32..40].try_into().expect("8 bytes"),
        create_time: word(40) as i64,
        construct_duration: word(48) as i64,
    };
    let expected = object
        .data_size
        .checked_add(object.metadata_size)
        .and_then(|n| n.checked_add(SPILL_HEADER as u64));
    if expected != Some(file_len) {
        return Err(format!(
            "{file_len} bytes, the header says {} + {} + {SPILL_HEADER}",
            object.data_size, object.metadata_size
        ));
    }
    Ok(object)
}

/// `file://DIR`: one file per object (see the module documentation for the format).
pub struct FileStore {
    name: String,
    dir: PathBuf,
    limit: Option<u64>,
    recovered: Mutex<Vec<(ObjectId, u64, SpilledObject)>>,
    /// Holds the directory's `flock` while the store lives.
    _lock: File,
}

impl FileStore {
    /// Takes (and creates) `dir`: locks it, cleans it up and finds the objects a previous
    /// run left there.
    pub fn open(dir: PathBuf, limit: Option<u64>) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        // Open for reading only (an flock needs no more), so the directory's file system can
        // still be remounted read-only under a running store.
        let lock_path = dir.join(".lock");
        if !lock_path.exists() {
            File::create(&lock_path)?;
        }
        let lock = File::open(&lock_path)?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "another plasma-store uses this directory",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let recovered = recover(&dir)?;
        Ok(Self {
            name: format!("file://{}", dir.display()),
            dir,
            limit,
            recovered: Mutex::new(recovered),
            _lock: lock,
        })
    }

    fn path(&self, id: &ObjectId, copy: u64) -> PathBuf {
        self.dir.join(file_name(id, copy))
    }

    fn temporary(&self, id: &ObjectId, copy: u64) -> PathBuf {
        self.dir.join(format!(".{}.tmp", file_name(id, copy)))
    }

    fn write(&self, path: &Path, object: &SpilledObject, bytes: &[u8]) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(&encode_header(object))?;
        file.write_all(bytes)?;
        Ok(())
    }
}

/// A spill file's name: the object's id in hex, a dot, the copy number in 16 hex digits.
fn file_name(id: &ObjectId, copy: u64) -> String {
    format!("{}.{copy:016x}", id.hex())
}

/// The object and copy a spill file's name stands for.
fn parse_file_name(name: &str) -> Option<(ObjectId, u64)> {
    let (id, copy) = name.split_once('.')?;
    if copy.len() != 16 || !copy.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((ObjectId::from_hex(id)?, u64::from_str_radix(copy, 16).ok()?))
}

/// Scans a spill directory at start-up: removes what is not a whole spill file with a spill
/// file's name (and the older copies of an object), returns the newest copy of each object,
/// oldest first.
fn recover(dir: &Path) -> io::Result<Vec<(ObjectId, u64, SpilledObject)>> {
    let mut found: HashMap<ObjectId, (std::time::SystemTime, u64, SpilledObject)> = HashMap::new();
    let remove = |path: &Path, why: &str| {
        log(&format!("removing {}: {why}", path.display()));
        let _ = std::fs::remove_file(path);
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = entry.path();
        let unfinished = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(parse_file_name);
        if unfinished.is_some() {
            remove(&path, "a spill file a previous run left unfinished");
            continue;
        }
        let Some((id, copy)) = parse_file_name(name) else {
            continue;
        };
        let (object, modified) = match read_header(&path) {
            Ok(header) => header,
            Err(why) => {
                remove(&path, &format!("not a whole spill file ({why})"));
                continue;
            }
        };
        match found.get(&id) {
            Some((_, newer, _)) if *newer > copy => {
                remove(&path, "an older copy of an object spilled again");
            }
            previous => {
                if let Some((_, older, _)) = previous {
                    remove(
                        &dir.join(file_name(&id, *older)),
                        "an older copy of an object spilled again",
                    );
                }
                found.insert(id, (modified, copy, object));
            }
        }
    }
    let mut found: Vec<_> = found
        .into_iter()
        .map(|(id, (modified, copy, object))| (modified, copy, id, object))
        .collect();
    found.sort_by_key(|(modified, copy, id, _)| (*modified, *copy, *id));
    Ok(found
        .into_iter()
        .map(|(_, copy, id, o)| (id, copy, o))
        .collect())
}

fn read_header(path: &Path) -> Result<(SpilledObject, std::time::SystemTime), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut header = [0u8; SPILL_HEADER];
    file.read_exact(&mut header)
        .map_err(|_| format!("{} bytes, shorter than a header", meta.len()))?;
    let object = decode_header(&header, meta.len())?;
    Ok((object, meta.modified().unwrap_or(std::time::UNIX_EPOCH)))
}

impl ExternalStore for FileStore {
    fn put(
        &self,
        id: &ObjectId,
        copy: u64,
        object: &SpilledObject,
        bytes: &[u8],
    ) -> io::Result<()> {
        let temporary = self.temporary(id, copy);
        let written = self
            .write(&temporary, object, bytes)
            .and_then(|()| std::fs::rename(&temporary, self.path(id, copy)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }

    fn take(&self, id: &ObjectId, copy: u64) -> io::Result<Vec<u8>> {
        let path = self.path(id, copy);
        let mut file = File::open(&path)?;
        let len = file.metadata()?.len();
        let mut header = [0u8; SPILL_HEADER];
        file.read_exact(&mut header)?;
        let object = decode_header(&header, len)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        let size = usize::try_from(object.size())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(size)
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        file.take(object.size()).read_to_end(&mut bytes)?;
        if bytes.len() != size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let _ = std::fs::remove_file(path);
        Ok(bytes)
    }

    fn remove(&self, id: &ObjectId, copy: u64) {
        let _ = std::fs::remove_file(self.path(id, copy));
    }

    fn contains(&self, id: &ObjectId, copy: u64) -> bool {
        self.path(id, copy).is_file()
    }

    fn recover(&self) -> Vec<(ObjectId, u64, SpilledObject)> {
        std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Parses an `-e` endpoint: `hashtable://NAME` or `file://DIR`, either with `?size=BYTES`.
/// `capacity` is the store's; twice it is the default bound of a hash table.
pub fn from_endpoint(endpoint: &str, capacity: u64) -> Result<Arc<dyn ExternalStore>, String> {
    let (kind, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| format!("external store endpoint {endpoint:?} is not NAME://..."))?;
    let (place, limit) = match rest.rsplit_once('?') {
        Some((place, query)) => {
            let size = query.strip_prefix("size=").ok_or_else(|| {
                format!("external store endpoint {endpoint:?}: unknown option {query:?} (size=BYTES is known)")
            })?;
            (place, Some(crate::parse_size(size)?))
        }
        None => (rest, None),
    };
    match kind {
        "hashtable" => Ok(Arc::new(HashTableStore::new(
            endpoint,
            limit.unwrap_or(capacity.saturating_mul(2)),
        ))),
        "file" if !place.is_empty() => FileStore::open(PathBuf::from(place), limit)
            .map(|s| Arc::new(s) as Arc<dyn ExternalStore>)
            .map_err(|e| format!("external store directory {place:?}: {e}")),
        _ => Err(format!("no such external store \"{kind}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(data: u64, metadata: u64) -> SpilledObject {
        SpilledObject {
            data_size: data,
            metadata_size: metadata,
            digest: [9; 8],
            create_time: 1_700_000_000,
            construct_duration: 2,
        }
    }

    #[test]
    fn endpoints() {
        assert!(from_endpoint("hashtable://test", 100).is_ok());
        assert_eq!(
            from_endpoint("hashtable://test", 100).unwrap().limit(),
            Some(200)
        );
        assert_eq!(
            from_endpoint("hashtable://test?size=2K", 100)
                .unwrap()
                .limit(),
            Some(2048)
        );
        assert!(from_endpoint("hashtable://test?colour=red", 100).is_err());
        assert!(from_endpoint("hashtable://test?size=lots", 100).is_err());
        assert!(from_endpoint("nope://x", 100).is_err());
        assert!(from_endpoint("plain", 100).is_err());
        let dir = tempfile::tempdir().unwrap();
        let s = from_endpoint(&format!("file://{}", dir.path().display()), 100).unwrap();
        assert_eq!(s.limit(), None);
        let id = ObjectId([3; 20]);
        s.put(&id, 1, &object(2, 1), b"abc").unwrap();
        assert!(s.contains(&id, 1));
        assert!(!s.contains(&id, 2));
        assert!(s.take(&id, 2).is_err());
        assert_eq!(s.take(&id, 1).unwrap(), b"abc");
        assert!(s.take(&id, 1).is_err());
        assert!(!s.contains(&id, 1));
    }

    /// A removal of an old copy that runs late (the object was deleted, created again and
    /// spilled again meanwhile) leaves the new copy alone, in both stores.
    #[test]
    fn a_late_removal_never_touches_a_newer_copy() {
        let dir = tempfile::tempdir().unwrap();
        let stores: [Box<dyn ExternalStore>; 2] = [
            Box::new(HashTableStore::new("hashtable://t", 1 << 20)),
            Box::new(FileStore::open(dir.path().into(), None).unwrap()),
        ];
        let id = ObjectId([7; 20]);
        for s in &stores {
            s.put(&id, 1, &object(3, 0), b"old").unwrap();
            s.put(&id, 2, &object(3, 0), b"new").unwrap();
            s.remove(&id, 1);
            assert!(s.contains(&id, 2), "{}", s.name());
            assert_eq!(s.take(&id, 2).unwrap(), b"new");
        }
    }

    #[test]
    fn a_directory_takes_one_store() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileStore::open(dir.path().into(), None).unwrap();
        let second = FileStore::open(dir.path().into(), None);
        assert_eq!(
            second.err().map(|e| e.kind()),
            Some(io::ErrorKind::ResourceBusy)
        );
        drop(first);
        assert!(FileStore::open(dir.path().into(), None).is_ok());
    }

    #[test]
    fn a_restart_recovers_whole_files_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (ObjectId([1; 20]), ObjectId([2; 20]));
        {
            let s = FileStore::open(dir.path().into(), None).unwrap();
            s.put(&a, 3, &object(3, 2), b"dataM").unwrap();
            s.put(&b, 4, &object(1, 0), b"x").unwrap();
            // An older copy of b whose removal never happened.
            s.put(&b, 2, &object(1, 0), b"y").unwrap();
        }
        // What a killed store or a stranger could leave behind.
        let c = ObjectId([3; 20]);
        std::fs::write(dir.path().join(file_name(&c, 1)), b"raw bytes, no header").unwrap();
        let mut truncated = encode_header(&object(10, 0)).to_vec();
        truncated.extend_from_slice(b"short");
        std::fs::write(dir.path().join(file_name(&ObjectId([4; 20]), 1)), truncated).unwrap();
        std::fs::write(
            dir.path().join(format!(".{}.tmp", file_name(&c, 5))),
            b"half",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
        std::fs::write(dir.path().join(c.hex()), b"no copy number").unwrap();
        let s = FileStore::open(dir.path().into(), None).unwrap();
        let mut back = s.recover();
        back.sort_by_key(|(id, _, _)| *id);
        assert_eq!(back, vec![(a, 3, object(3, 2)), (b, 4, object(1, 0))]);
        assert!(s.recover().is_empty(), "taken once");
        assert_eq!(s.take(&a, 3).unwrap(), b"dataM");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![
            ".lock".to_string(),
            c.hex(),
            file_name(&b, 4),
            "notes.txt".into(),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path().into(), None).unwrap();
        let id = ObjectId([5; 20]);
        // The name is taken by a directory: the rename fails after the write.
        std::fs::create_dir(dir.path().join(file_name(&id, 1))).unwrap();
        std::fs::write(dir.path().join(file_name(&id, 1)).join("x"), b"").unwrap();
        assert!(s.put(&id, 1, &object(1, 0), b"x").is_err());
        assert!(
            !dir.path()
                .join(format!(".{}.tmp", file_name(&id, 1)))
                .exists()
        );
    }

    #[test]
    fn file_names_round_trip() {
        let id = ObjectId([0xab; 20]);
        assert_eq!(parse_file_name(&file_name(&id, 77)), Some((id, 77)));
        assert_eq!(parse_file_name(&id.hex()), None);
        assert_eq!(parse_file_name(&format!("{}.{}", id.hex(), "1")), None);
        assert_eq!(
            parse_file_name(&format!("{}.{}", id.hex(), "G".repeat(16))),
            None
        );
    }
}
