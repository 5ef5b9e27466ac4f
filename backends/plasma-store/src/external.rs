//! External stores that evicted objects spill to (`-e`): `hashtable://`, `file://DIR`, and
//! object storage (`s3://bucket/prefix` and every other URL of the object-store backend),
//! which `--write-through` shares between stores.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tensor_ipc::TensorSink;
use tensor_ipc_object_store::{
    ObjectStorage, ObjectStoreError, ObjectStoreSink, ObjectStoreSource, Path,
};
use tensor_ipc_plasma_protocol::ObjectId;

/// What an external copy keeps of its object besides the bytes, so that another store can
/// serve it as its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Bytes of data (the copy's bytes are the data, then the metadata).
    pub data_size: u64,
    /// Bytes of metadata.
    pub metadata_size: u64,
    /// The seal digest (8 bytes).
    pub digest: Vec<u8>,
}

/// Where evicted sealed objects go, and come back from on Get. The store calls it from
/// request threads (and its write-through thread) without holding its own lock, several at
/// once: implementations do their own locking.
pub trait ExternalStore: Send + Sync {
    /// Stores an object's bytes (data followed by metadata), replacing any earlier copy.
    fn put(&self, id: &ObjectId, bytes: &[u8], object: &StoredObject) -> io::Result<()>;
    /// Fetches an object's bytes, and removes them unless the store is [`shared`](Self::shared).
    fn take(&self, id: &ObjectId) -> io::Result<Vec<u8>>;
    /// Drops an object (a shared store keeps it for the other stores).
    fn remove(&self, id: &ObjectId);
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

/// `hashtable://NAME`: an in-process table.
#[derive(Default)]
pub struct HashTableStore {
    objects: Mutex<HashMap<ObjectId, Vec<u8>>>,
}

impl HashTableStore {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ExternalStore for HashTableStore {
    fn put(&self, id: &ObjectId, bytes: &[u8], _: &StoredObject) -> io::Result<()> {
        self.table().insert(*id, bytes.to_vec());
        Ok(())
    }

    fn take(&self, id: &ObjectId) -> io::Result<Vec<u8>> {
        self.table()
            .remove(id)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn remove(&self, id: &ObjectId) {
        self.table().remove(id);
    }
}

/// `file://DIR`: one file per object, named by its hex id.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses (and creates) `dir`.
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, id: &ObjectId) -> PathBuf {
        self.dir.join(id.hex())
    }
}

impl ExternalStore for FileStore {
    fn put(&self, id: &ObjectId, bytes: &[u8], _: &StoredObject) -> io::Result<()> {
        std::fs::write(self.path(id), bytes)
    }

    fn take(&self, id: &ObjectId) -> io::Result<Vec<u8>> {
        let path = self.path(id);
        let bytes = std::fs::read(&path)?;
        let _ = std::fs::remove_file(path);
        Ok(bytes)
    }

    fn remove(&self, id: &ObjectId) {
        let _ = std::fs::remove_file(self.path(id));
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
    prefix: Path,
    shared: bool,
}

impl ObjectStoreExternal {
    /// The store a URL names (configured from the environment as the backend does it);
    /// `shared` for `--write-through`.
    pub fn from_url(url: &str, shared: bool) -> Result<Self, ObjectStoreError> {
        let (storage, prefix) = ObjectStorage::from_url(url)?;
        Ok(Self::new(storage, prefix, shared))
    }

    /// Objects under `prefix` of `storage`.
    pub fn new(storage: ObjectStorage, prefix: Path, shared: bool) -> Self {
        Self {
            storage,
            prefix,
            shared,
        }
    }

    fn key(&self, id: &ObjectId) -> Path {
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

impl ExternalStore for ObjectStoreExternal {
    fn put(&self, id: &ObjectId, bytes: &[u8], object: &StoredObject) -> io::Result<()> {
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

    fn take(&self, id: &ObjectId) -> io::Result<Vec<u8>> {
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

    fn remove(&self, id: &ObjectId) {
        if !self.shared {
            let _ = self.storage.delete(&self.key(id));
        }
    }

    fn fetch(&self, id: &ObjectId) -> io::Result<Option<(StoredObject, Vec<u8>)>> {
        self.get(id)
    }

    fn shared(&self) -> bool {
        self.shared
    }
}

/// Parses an `-e` endpoint: `hashtable://NAME`, `file://DIR`, or any object-store URL
/// (`s3://bucket/prefix`, `gs://`, `az://`, `http(s)://`, `memory://`). `shared`
/// (`--write-through`) needs an object store.
pub fn from_endpoint(endpoint: &str, shared: bool) -> Result<Arc<dyn ExternalStore>, String> {
    let (name, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| format!("external store endpoint {endpoint:?} is not NAME://..."))?;
    let local = match name {
        "hashtable" => Some(Arc::new(HashTableStore::default()) as Arc<dyn ExternalStore>),
        "file" if !rest.is_empty() => Some(
            FileStore::new(PathBuf::from(rest))
                .map(|s| Arc::new(s) as Arc<dyn ExternalStore>)
                .map_err(|e| format!("external store directory {rest:?}: {e}"))?,
        ),
        "s3" | "s3a" | "gs" | "az" | "adl" | "azure" | "abfs" | "abfss" | "http" | "https"
        | "memory" => None,
        _ => return Err(format!("no such external store \"{name}\"")),
    };
    match local {
        Some(_) if shared => Err(format!(
            "--write-through needs an object store that other stores reach (s3://, gs://, az://, \
             http(s)://), not {name}://"
        )),
        Some(store) => Ok(store),
        None => ObjectStoreExternal::from_url(endpoint, shared)
            .map(|s| Arc::new(s) as Arc<dyn ExternalStore>)
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(from_endpoint("hashtable://test", false).is_ok());
        assert!(from_endpoint("hashtable://test", true).is_err());
        assert!(from_endpoint("nope://x", false).is_err());
        assert!(from_endpoint("plain", false).is_err());
        let dir = tempfile::tempdir().unwrap();
        let s = from_endpoint(&format!("file://{}", dir.path().display()), false).unwrap();
        let id = ObjectId([3; 20]);
        s.put(&id, b"abc", &object(3, 0)).unwrap();
        assert_eq!(s.take(&id).unwrap(), b"abc");
        assert!(s.take(&id).is_err());
    }

    fn object(data_size: u64, metadata_size: u64) -> StoredObject {
        StoredObject {
            data_size,
            metadata_size,
            digest: vec![7; 8],
        }
    }

    #[test]
    fn object_store_copies_carry_sizes_and_digest() {
        for shared in [false, true] {
            let url = format!("memory://external-unit-{shared}/spill");
            let s = from_endpoint(&url, shared).unwrap();
            assert_eq!(s.shared(), shared);
            let id = ObjectId([4; 20]);
            assert!(s.fetch(&id).unwrap().is_none());
            s.put(&id, b"datamd", &object(4, 2)).unwrap();
            assert_eq!(
                s.fetch(&id).unwrap(),
                Some((object(4, 2), b"datamd".to_vec()))
            );
            assert_eq!(s.take(&id).unwrap(), b"datamd");
            // A shared copy stays for the other stores; a private one is gone.
            assert_eq!(s.fetch(&id).unwrap().is_some(), shared);
            s.remove(&id);
            assert_eq!(s.fetch(&id).unwrap().is_some(), shared);
        }
    }

    #[test]
    fn foreign_or_damaged_copies_are_errors() {
        assert!(parse_trailer(b"short").is_err());
        let mut bytes = b"abcd".to_vec();
        bytes.extend(trailer(&object(4, 0)).unwrap());
        assert_eq!(parse_trailer(&bytes).unwrap(), (object(4, 0), 4));
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
