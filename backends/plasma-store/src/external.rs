//! External stores that evicted objects spill to (`-e`).

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tensor_ipc_plasma_protocol::ObjectId;

/// Where evicted sealed objects go, and come back from on Get. The store calls it from
/// request threads without holding its own lock, several at once: implementations do their
/// own locking.
pub trait ExternalStore: Send + Sync {
    /// Stores an object's bytes (data followed by metadata).
    fn put(&self, id: &ObjectId, bytes: &[u8]) -> io::Result<()>;
    /// Fetches and removes an object's bytes.
    fn take(&self, id: &ObjectId) -> io::Result<Vec<u8>>;
    /// Drops an object.
    fn remove(&self, id: &ObjectId);
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
    fn put(&self, id: &ObjectId, bytes: &[u8]) -> io::Result<()> {
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
    fn put(&self, id: &ObjectId, bytes: &[u8]) -> io::Result<()> {
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

/// Parses an `-e` endpoint: `hashtable://NAME` or `file://DIR`.
pub fn from_endpoint(endpoint: &str) -> Result<Arc<dyn ExternalStore>, String> {
    let (name, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| format!("external store endpoint {endpoint:?} is not NAME://..."))?;
    match name {
        "hashtable" => Ok(Arc::new(HashTableStore::default())),
        "file" if !rest.is_empty() => FileStore::new(PathBuf::from(rest))
            .map(|s| Arc::new(s) as Arc<dyn ExternalStore>)
            .map_err(|e| format!("external store directory {rest:?}: {e}")),
        _ => Err(format!("no such external store \"{name}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(from_endpoint("hashtable://test").is_ok());
        assert!(from_endpoint("nope://x").is_err());
        assert!(from_endpoint("plain").is_err());
        let dir = tempfile::tempdir().unwrap();
        let s = from_endpoint(&format!("file://{}", dir.path().display())).unwrap();
        let id = ObjectId([3; 20]);
        s.put(&id, b"abc").unwrap();
        assert_eq!(s.take(&id).unwrap(), b"abc");
        assert!(s.take(&id).is_err());
    }
}
