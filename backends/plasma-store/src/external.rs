//! External stores that evicted objects spill to (`-e`): `hashtable://NAME` (in this
//! process), `file://DIR` (one file per object, which survives a restart), and object
//! storage (`s3://bucket/prefix` and every other URL of the object-store backend), which
//! `--write-through` shares between stores.
//!
//! An endpoint may end in `?size=BYTES` (suffixes as for `-m`): the most bytes of spilled
//! objects the external store holds. Beyond it the store drops the objects spilled longest
//! ago, with a log line each (see [`crate::state`]). The default for `hashtable://` is the
//! store's capacity, so that memory and table together hold twice the capacity, what pyarrow
//! 11's own eviction test puts through a store and reads back; `file://` is unbounded by
//! default (the file system's free space is the bound there, and a spill that does not fit
//! keeps its object in memory). An object on its way back into memory stops counting when
//! its restore begins, so for a moment the table holds it beside what its restore evicted.
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

use tensor_ipc::TensorSink;
use tensor_ipc_object_store::{
    ObjectStorage, ObjectStoreError, ObjectStoreSink, ObjectStoreSource,
};
use tensor_ipc_plasma_protocol::ObjectId;

use crate::log;

/// What an external copy keeps of its object besides the bytes, so that the store (after a
/// restart) or another store sharing the external one can serve it as its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Bytes of data (the first part of the object's bytes).
    pub data_size: u64,
    /// Bytes of metadata (the rest).
    pub metadata_size: u64,
    /// The digest the object was sealed with (8 bytes).
    pub digest: Vec<u8>,
    /// When it was created, in seconds since the epoch.
    pub create_time: i64,
    /// How long its construction took, in seconds (-1 if unknown).
    pub construct_duration: i64,
}

impl StoredObject {
    /// Data plus metadata bytes.
    pub fn size(&self) -> u64 {
        self.data_size.saturating_add(self.metadata_size)
    }
}

/// Where evicted sealed objects go, and come back from on Get. The store calls it from
/// several threads at once (and its write-through thread), never holding its own lock:
/// implementations do their own locking.
///
/// Each spill of an object is a *copy*, numbered by the store (`copy`, increasing, never
/// reused for that object): a removal or a take names the copy it means, so that one
/// running late never touches a newer copy of an object with the same id (deleted, created
/// again and spilled again in between).
pub trait ExternalStore: Send + Sync {
    /// Stores a copy of an object's bytes (data followed by metadata).
    fn put(&self, id: &ObjectId, copy: u64, object: &StoredObject, bytes: &[u8]) -> io::Result<()>;
    /// Fetches and removes a copy's bytes.
    fn take(&self, id: &ObjectId, copy: u64) -> io::Result<Vec<u8>>;
    /// Drops a copy.
    fn remove(&self, id: &ObjectId, copy: u64);
    /// Whether the copy is still there (a file can be deleted behind the store's back).
    fn contains(&self, id: &ObjectId, copy: u64) -> bool;
    /// The copies found there when the store started, oldest first (taken once).
    fn recover(&self) -> Vec<(ObjectId, u64, StoredObject)> {
        Vec::new()
    }
    /// The most bytes of objects it holds (`?size=`), if bounded.
    fn limit(&self) -> Option<u64>;
    /// The endpoint, for log lines.
    fn name(&self) -> &str;
    /// An object this store never held, as another store sharing the external one wrote it
    /// (`--write-through`): `Ok(None)` when there is none. Default: none.
    fn fetch(&self, _id: &ObjectId) -> io::Result<Option<(StoredObject, Vec<u8>)>> {
        Ok(None)
    }
    /// Whether other stores read this one's copies (`--write-through`), so copies are kept
    /// after a restore or a delete. Default: no.
    fn shared(&self) -> bool {
        false
    }
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
    fn put(&self, id: &ObjectId, copy: u64, _: &StoredObject, bytes: &[u8]) -> io::Result<()> {
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
fn encode_header(object: &StoredObject) -> [u8; SPILL_HEADER] {
    let mut h = [0u8; SPILL_HEADER];
    h[0..8].copy_from_slice(&SPILL_MAGIC);
    h[8..12].copy_from_slice(&SPILL_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SPILL_HEADER as u32).to_le_bytes());
    h[16..24].copy_from_slice(&object.data_size.to_le_bytes());
    h[24..32].copy_from_slice(&object.metadata_size.to_le_bytes());
    let digest = &object.digest[..object.digest.len().min(8)];
    h[32..32 + digest.len()].copy_from_slice(digest);
    h[40..48].copy_from_slice(&object.create_time.to_le_bytes());
    h[48..56].copy_from_slice(&object.construct_duration.to_le_bytes());
    h
}

/// Decodes a spill file's header, checking it against the file's length.
fn decode_header(h: &[u8; SPILL_HEADER], file_len: u64) -> Result<StoredObject, String> {
    let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    if h[0..8] != SPILL_MAGIC {
        return Err("no spill file magic".into());
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    let header = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
    if version != SPILL_VERSION || header as usize != SPILL_HEADER {
        return Err(format!("format version {version} (header {header} bytes)"));
    }
    let object = StoredObject {
        data_size: word(16),
        metadata_size: word(24),
        digest: h[32..40].to_vec(),
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
    recovered: Mutex<Vec<(ObjectId, u64, StoredObject)>>,
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

    fn write(&self, path: &Path, object: &StoredObject, bytes: &[u8]) -> io::Result<()> {
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
fn recover(dir: &Path) -> io::Result<Vec<(ObjectId, u64, StoredObject)>> {
    let mut found: HashMap<ObjectId, (std::time::SystemTime, u64, StoredObject)> = HashMap::new();
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

fn read_header(path: &Path) -> Result<(StoredObject, std::time::SystemTime), String> {
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
    fn put(&self, id: &ObjectId, copy: u64, object: &StoredObject, bytes: &[u8]) -> io::Result<()> {
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

    fn recover(&self) -> Vec<(ObjectId, u64, StoredObject)> {
        std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The marker that ends every object an [`ObjectStoreExternal`] writes.
const TRAILER_MAGIC: &[u8; 8] = b"TIPCPLS1";

/// Bytes after an object's data and metadata: the marker, the two sizes and the digest.
const TRAILER_LEN: usize = 32;

/// An object store (`s3://bucket/prefix`, `gs://`, `az://`, `http(s)://`, `memory://`): one
/// object per Plasma object under the prefix, named by its hex id, holding its data, its
/// metadata and a 32-byte trailer (`TIPCPLS1`, data size and metadata size as u64 LE, the
/// 8-byte digest), so any store sharing the bucket can serve it. Large objects go up as
/// multipart uploads and come back in concurrent ranged reads; nothing is visible before an
/// upload completes.
pub struct ObjectStoreExternal {
    storage: ObjectStorage,
    prefix: tensor_ipc_object_store::Path,
    shared: bool,
    name: String,
    limit: Option<u64>,
}

impl ObjectStoreExternal {
    /// The store a URL names (configured from the environment as the backend does it);
    /// `shared` for `--write-through`.
    pub fn from_url(url: &str, shared: bool) -> Result<Self, ObjectStoreError> {
        let (storage, prefix) = ObjectStorage::from_url(url)?;
        Ok(Self::new(storage, prefix, shared))
    }

    /// Objects under `prefix` of `storage`.
    pub fn new(
        storage: ObjectStorage,
        prefix: tensor_ipc_object_store::Path,
        shared: bool,
    ) -> Self {
        let name = storage.url_of(&prefix);
        Self {
            storage,
            prefix,
            shared,
            name,
            limit: None,
        }
    }

    /// Bounds what it holds (`?size=`).
    fn with_limit(mut self, limit: Option<u64>) -> Self {
        self.limit = limit;
        self
    }

    fn key(&self, id: &ObjectId) -> tensor_ipc_object_store::Path {
        self.prefix.clone().join(id.hex())
    }

    /// The copy of `id`, split into its description and bytes; `Ok(None)` when absent.
    fn get(&self, id: &ObjectId) -> io::Result<Option<(StoredObject, Vec<u8>)>> {
        let key = self.key(id);
        let mut source = match ObjectStoreSource::open(&self.storage, key) {
            Ok(source) => source,
            Err(ObjectStoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = usize::try_from(source.size())
            .map_err(|_| invalid(format!("{}: too large", source.url())))?;
        let bytes = tensor_ipc::TensorSource::take(&mut source, len).map_err(core_to_io)?;
        let (object, len) = parse_trailer(bytes.as_bytes())
            .map_err(|why| invalid(format!("{}: {why}", source.url())))?;
        Ok(Some((object, bytes.as_bytes()[..len].to_vec())))
    }
}

/// Splits a copy into its description and the length of its data and metadata.
fn parse_trailer(bytes: &[u8]) -> Result<(StoredObject, usize), String> {
    let at = bytes
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or("shorter than the trailer of a tensor-ipc plasma object")?;
    let trailer = &bytes[at..];
    if &trailer[..8] != TRAILER_MAGIC {
        return Err("not an object written by a tensor-ipc plasma-store".into());
    }
    let word = |i: usize| u64::from_le_bytes(trailer[i..i + 8].try_into().expect("8 bytes"));
    let (data_size, metadata_size) = (word(8), word(16));
    if data_size.checked_add(metadata_size) != Some(at as u64) {
        return Err(format!(
            "the trailer announces {data_size} + {metadata_size} bytes, the copy has {at}"
        ));
    }
    let object = StoredObject {
        data_size,
        metadata_size,
        digest: trailer[24..32].to_vec(),
        create_time: 0,
        construct_duration: -1,
    };
    Ok((object, at))
}

fn trailer(object: &StoredObject) -> io::Result<[u8; TRAILER_LEN]> {
    let digest: [u8; 8] = object
        .digest
        .as_slice()
        .try_into()
        .map_err(|_| invalid(format!("a digest of {} bytes", object.digest.len())))?;
    let mut out = [0u8; TRAILER_LEN];
    out[..8].copy_from_slice(TRAILER_MAGIC);
    out[8..16].copy_from_slice(&object.data_size.to_le_bytes());
    out[16..24].copy_from_slice(&object.metadata_size.to_le_bytes());
    out[24..].copy_from_slice(&digest);
    Ok(out)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn core_to_io(e: tensor_ipc::Error) -> io::Error {
    match e {
        tensor_ipc::Error::Io(e) => e,
        other => invalid(other.to_string()),
    }
}

/// Object keys are the ids (so stores sharing a bucket find each other's objects): copy
/// numbers are not part of them.
impl ExternalStore for ObjectStoreExternal {
    fn put(
        &self,
        id: &ObjectId,
        _copy: u64,
        object: &StoredObject,
        bytes: &[u8],
    ) -> io::Result<()> {
        let trailer = trailer(object)?;
        let total = bytes.len() + TRAILER_LEN;
        if self.shared {
            // An evicted object of a write-through store was uploaded when it was sealed
            // (sealed objects never change): spilling it needs no second upload.
            match self.storage.head(&self.key(id)) {
                Ok(info) if info.size == total as u64 => return Ok(()),
                Ok(_) | Err(ObjectStoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut sink = ObjectStoreSink::create(&self.storage, self.key(id));
        sink.write_parts(total, &[bytes, &trailer])
            .map_err(core_to_io)?;
        sink.finish()?;
        Ok(())
    }

    fn take(&self, id: &ObjectId, _copy: u64) -> io::Result<Vec<u8>> {
        let (_, bytes) = self.get(id)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such object", self.storage.url_of(&self.key(id))),
            )
        })?;
        if !self.shared {
            self.storage.delete(&self.key(id))?;
        }
        Ok(bytes)
    }

    fn remove(&self, id: &ObjectId, _copy: u64) {
        if !self.shared {
            let _ = self.storage.delete(&self.key(id));
        }
    }

    fn contains(&self, id: &ObjectId, _copy: u64) -> bool {
        // Only a definite "not found" counts as missing; an unreachable store is not proof.
        !matches!(
            self.storage.head(&self.key(id)),
            Err(ObjectStoreError::NotFound { .. })
        )
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self, id: &ObjectId) -> io::Result<Option<(StoredObject, Vec<u8>)>> {
        self.get(id)
    }

    fn shared(&self) -> bool {
        self.shared
    }
}

/// Parses an `-e` endpoint: `hashtable://NAME`, `file://DIR`, or any object-store URL
/// (`s3://bucket/prefix`, `gs://`, `az://`, `http(s)://`, `memory://`), each with an optional
/// `?size=BYTES` bound. `capacity` is the store's, and the default bound of a hash table. `shared` (`--write-through`) needs an object store.
pub fn from_endpoint(
    endpoint: &str,
    capacity: u64,
    shared: bool,
) -> Result<Arc<dyn ExternalStore>, String> {
    let (kind, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| format!("external store endpoint {endpoint:?} is not NAME://..."))?;
    let object_store = matches!(
        kind,
        "s3" | "s3a"
            | "gs"
            | "az"
            | "adl"
            | "azure"
            | "abfs"
            | "abfss"
            | "http"
            | "https"
            | "memory"
    );
    let (url, place, limit) = match endpoint.rsplit_once('?') {
        Some((url, query)) if query.starts_with("size=") || !object_store => {
            let size = query.strip_prefix("size=").ok_or_else(|| {
                format!("external store endpoint {endpoint:?}: unknown option {query:?} (size=BYTES is known)")
            })?;
            let place = url.split_once("://").map_or("", |(_, p)| p);
            (url, place, Some(crate::parse_size(size)?))
        }
        _ => (endpoint, rest, None),
    };
    let local: Option<Arc<dyn ExternalStore>> = match kind {
        "hashtable" => Some(Arc::new(HashTableStore::new(
            url,
            limit.unwrap_or(capacity),
        ))),
        "file" if !place.is_empty() => Some(
            FileStore::open(PathBuf::from(place), limit)
                .map(|s| Arc::new(s) as Arc<dyn ExternalStore>)
                .map_err(|e| format!("external store directory {place:?}: {e}"))?,
        ),
        _ if object_store => None,
        _ => return Err(format!("no such external store \"{kind}\"")),
    };
    match local {
        Some(_) if shared => Err(format!(
            "--write-through needs an object store that other stores reach (s3://, gs://, az://, \
             http(s)://), not {kind}://"
        )),
        Some(store) => Ok(store),
        None => ObjectStoreExternal::from_url(url, shared)
            .map(|s| Arc::new(s.with_limit(limit)) as Arc<dyn ExternalStore>)
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(data: u64, metadata: u64) -> StoredObject {
        StoredObject {
            data_size: data,
            metadata_size: metadata,
            digest: vec![9; 8],
            create_time: 1_700_000_000,
            construct_duration: 2,
        }
    }

    #[test]
    fn endpoints() {
        assert!(from_endpoint("hashtable://test", 100, false).is_ok());
        assert_eq!(
            from_endpoint("hashtable://test", 100, false)
                .unwrap()
                .limit(),
            Some(100)
        );
        assert_eq!(
            from_endpoint("hashtable://test?size=2K", 100, false)
                .unwrap()
                .limit(),
            Some(2048)
        );
        assert!(from_endpoint("hashtable://test?colour=red", 100, false).is_err());
        assert!(from_endpoint("hashtable://test?size=lots", 100, false).is_err());
        assert!(from_endpoint("hashtable://test", 100, true).is_err());
        assert!(from_endpoint("nope://x", 100, false).is_err());
        assert!(from_endpoint("plain", 100, false).is_err());
        let dir = tempfile::tempdir().unwrap();
        let s = from_endpoint(&format!("file://{}", dir.path().display()), 100, false).unwrap();
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

    #[test]
    fn object_store_copies_carry_sizes_and_digest() {
        for shared in [false, true] {
            let url = format!("memory://external-unit-{shared}/spill");
            let s = from_endpoint(&url, 100, shared).unwrap();
            assert_eq!(s.shared(), shared);
            let id = ObjectId([4; 20]);
            assert!(s.fetch(&id).unwrap().is_none());
            s.put(&id, 1, &object(4, 2), b"datamd").unwrap();
            let (found, bytes) = s.fetch(&id).unwrap().unwrap();
            assert_eq!(
                (found.digest, bytes),
                (object(4, 2).digest, b"datamd".to_vec())
            );
            assert!(s.contains(&id, 1));
            assert_eq!(s.take(&id, 1).unwrap(), b"datamd");
            // A shared copy stays for the other stores; a private one is gone.
            assert_eq!(s.fetch(&id).unwrap().is_some(), shared);
            s.remove(&id, 1);
            assert_eq!(s.fetch(&id).unwrap().is_some(), shared);
        }
    }

    #[test]
    fn foreign_or_damaged_copies_are_errors() {
        assert!(parse_trailer(b"short").is_err());
        let mut bytes = b"abcd".to_vec();
        bytes.extend(trailer(&object(4, 0)).unwrap());
        let (found, len) = parse_trailer(&bytes).unwrap();
        assert_eq!(
            (found.data_size, found.digest, len),
            (4, object(4, 0).digest, 4)
        );
        let mut wrong_size = b"abc".to_vec();
        wrong_size.extend(trailer(&object(4, 0)).unwrap());
        assert!(
            parse_trailer(&wrong_size)
                .unwrap_err()
                .contains("announces")
        );
        let mut foreign = bytes.clone();
        foreign[4] = b'X';
        assert!(
            parse_trailer(&foreign)
                .unwrap_err()
                .contains("not an object")
        );
        let huge = object(u64::MAX, 1);
        let mut overflow = Vec::new();
        overflow.extend(trailer(&huge).unwrap());
        assert!(parse_trailer(&overflow).is_err());
    }
}
