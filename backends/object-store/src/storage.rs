//! [`ObjectStorage`]: an object store reached synchronously, built from any
//! `Arc<dyn ObjectStore>` or from a URL configured the way `object_store` configures it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};
use url::Url;

use crate::error::ObjectStoreError;
use crate::options::{ConnectOptions, TransferOptions};
use crate::runtime::block_on;

/// An object store, the options of the transfers made through it, and the name it goes by in
/// messages. Cheap to clone (the store is shared).
#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// What `url_of` puts before an object's path: the URL's scheme and bucket, or the store's
    /// own description.
    base: String,
    transfer: TransferOptions,
}

impl fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("base", &self.base)
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

/// What the store says about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's URL (for messages).
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its entity tag, when the store gives one.
    pub e_tag: Option<String>,
}

impl ObjectStorage {
    /// Wraps any store; messages name its objects after the store's own description.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        let base = format!("{store}/");
        ObjectStorage {
            store,
            base,
            transfer: TransferOptions::default(),
        }
    }

    /// Builds the store a URL names and returns it with the URL's path (an object key, or a
    /// prefix), with the default [`ConnectOptions`]. See [`from_url_with`](Self::from_url_with).
    pub fn from_url(url: &str) -> Result<(ObjectStorage, Path), ObjectStoreError> {
        Self::from_url_with(url, &ConnectOptions::default())
    }

    /// Builds the store a URL names and returns it with the URL's path.
    ///
    /// - `s3://bucket/key` (and `s3a://`, the `https://` forms of AWS and R2): Amazon S3 or
    ///   any S3-compatible server, configured from `AWS_ACCESS_KEY_ID`,
    ///   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT`,
    ///   `AWS_ALLOW_HTTP` and the other `AWS_*` keys of `object_store`;
    /// - `gs://bucket/key`: Google Cloud Storage (`GOOGLE_SERVICE_ACCOUNT`, ...);
    /// - `az://container/key` (and `abfs://`, `adl://`, the Azure `https://` forms): Azure
    ///   Blob Storage (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, ...);
    /// - any other `http(s)://host/path`: a plain HTTP server (WebDAV for writes);
    /// - `file:///absolute/path`: the local file system;
    /// - `memory://name/key` or `memory:///key`: an in-memory store shared by the whole
    ///   process under that name (so a sink and a source in one program see each other).
    pub fn from_url_with(
        url: &str,
        options: &ConnectOptions,
    ) -> Result<(ObjectStorage, Path), ObjectStoreError> {
        let invalid = |reason: String| ObjectStoreError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if parsed.scheme() == "memory" {
            let path = Path::from_url_path(parsed.path()).map_err(|e| invalid(e.to_string()))?;
            let name = parsed.host_str().unwrap_or("");
            let storage = ObjectStorage {
                store: shared_memory_store(name),
                base: format!("memory://{name}/"),
                transfer: TransferOptions::default(),
            };
            return Ok((storage, path));
        }
        let (scheme, path) =
            ObjectStoreScheme::parse(&parsed).map_err(|e| invalid(e.to_string()))?;
        let store = build_store(scheme, &parsed, options).map_err(|e| invalid(e.to_string()))?;
        let base = base_of(&parsed, &path);
        let storage = ObjectStorage {
            store,
            base,
            transfer: TransferOptions::default(),
        };
        Ok((storage, path))
    }

    /// The same store with other transfer options.
    pub fn with_transfer(mut self, transfer: TransferOptions) -> Self {
        self.transfer = transfer;
        self
    }

    /// The transfer options.
    pub fn transfer(&self) -> &TransferOptions {
        &self.transfer
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL of the object at `path`, as messages name it.
    pub fn url_of(&self, path: &Path) -> String {
        format!("{}{}", self.base, path)
    }

    /// What the store says about the object at `path` (a HEAD request).
    pub fn head(&self, path: &Path) -> Result<ObjectInfo, ObjectStoreError> {
        let url = self.url_of(path);
        let meta = block_on(self.store.head(path))?
            .map_err(|e| ObjectStoreError::from_store(&url, "head", e))?;
        Ok(ObjectInfo {
            url,
            size: meta.size,
            e_tag: meta.e_tag,
        })
    }

    /// Whether an object exists at `path`.
    pub fn exists(&self, path: &Path) -> Result<bool, ObjectStoreError> {
        match self.head(path) {
            Ok(_) => Ok(true),
            Err(ObjectStoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the object at `path` (deleting a missing object is not an error).
    pub fn delete(&self, path: &Path) -> Result<(), ObjectStoreError> {
        let url = self.url_of(path);
        match block_on(self.store.delete(path))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(ObjectStoreError::from_store(&url, "delete", e)),
        }
    }

    /// Writes `bytes` as the whole object at `path` with one PUT (visible all at once).
    pub fn put(&self, path: &Path, bytes: Bytes) -> Result<ObjectInfo, ObjectStoreError> {
        let url = self.url_of(path);
        let size = bytes.len() as u64;
        let put = block_on(self.store.put(path, PutPayload::from_bytes(bytes)))?
            .map_err(|e| ObjectStoreError::from_store(&url, "put", e))?;
        Ok(ObjectInfo {
            url,
            size,
            e_tag: put.e_tag,
        })
    }
}

/// The part of `url` before the object key `path`, ending with `/`: what
/// [`ObjectStorage::url_of`] puts before a key. (The key is the last segments of the URL's
/// path; a bucket in an `https://` path stays in the base.)
fn base_of(parsed: &Url, path: &Path) -> String {
    let raw = parsed.path().trim_end_matches('/');
    let key_start = match path.parts().count() {
        0 => raw.len(),
        n => raw
            .rmatch_indices('/')
            .nth(n - 1)
            .map_or(0, |(at, _)| at + 1),
    };
    let path_start = parsed[..url::Position::BeforePath].len();
    let mut base = parsed.as_str()[..path_start + key_start].to_owned();
    if !base.ends_with('/') {
        base.push('/');
    }
    base
}

/// The process-wide in-memory store called `name` (`memory://name/...`).
fn shared_memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    stores
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// Builds the store of a URL of a network or file scheme: environment first, then `options`,
/// then the URL itself.
fn build_store(
    scheme: ObjectStoreScheme,
    url: &Url,
    options: &ConnectOptions,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    use object_store::http::HttpBuilder;
    let client = options.client_config();
    let retry = options.retry_config();
    Ok(match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = AmazonS3Builder::from_env();
            for (key, value) in client {
                builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            for (key, value) in &options.config {
                builder = builder.with_config(key.to_ascii_lowercase().parse()?, value);
            }
            Arc::new(builder.with_url(url.as_str()).with_retry(retry).build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut builder = GoogleCloudStorageBuilder::from_env();
            for (key, value) in client {
                builder = builder.with_config(GoogleConfigKey::Client(key), value);
            }
            for (key, value) in &options.config {
                builder = builder.with_config(key.to_ascii_lowercase().parse()?, value);
            }
            Arc::new(builder.with_url(url.as_str()).with_retry(retry).build()?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder = MicrosoftAzureBuilder::from_env();
            for (key, value) in client {
                builder = builder.with_config(AzureConfigKey::Client(key), value);
            }
            for (key, value) in &options.config {
                builder = builder.with_config(key.to_ascii_lowercase().parse()?, value);
            }
            Arc::new(builder.with_url(url.as_str()).with_retry(retry).build()?)
        }
        ObjectStoreScheme::Http => {
            let mut builder = HttpBuilder::new();
            if url.scheme() == "http" {
                // A plain `http://` URL asks for plain HTTP (object_store refuses it unless
                // allowed, with a bare "builder error" on every request).
                builder = builder.with_config(object_store::ClientConfigKey::AllowHttp, "true");
            }
            for (key, value) in client {
                builder = builder.with_config(key, value);
            }
            for (key, value) in &options.config {
                builder = builder.with_config(key.to_ascii_lowercase().parse()?, value);
            }
            let base = &url[..url::Position::BeforePath];
            Arc::new(builder.with_url(base).with_retry(retry).build()?)
        }
        other => {
            return Err(object_store::Error::NotSupported {
                source: format!("the {other:?} scheme").into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls_name_one_store_per_process() {
        let (a, path) = ObjectStorage::from_url("memory://unit-shared/dir/t.tensor").unwrap();
        assert_eq!(path.as_ref(), "dir/t.tensor");
        assert_eq!(a.url_of(&path), "memory://unit-shared/dir/t.tensor");
        let (b, _) = ObjectStorage::from_url("memory://unit-shared/other").unwrap();
        assert!(Arc::ptr_eq(a.store(), b.store()));
        let (c, _) = ObjectStorage::from_url("memory://unit-elsewhere/x").unwrap();
        assert!(!Arc::ptr_eq(a.store(), c.store()));
        a.put(&path, Bytes::from_static(b"abc")).unwrap();
        assert_eq!(b.head(&path).unwrap().size, 3);
        assert!(!c.exists(&path).unwrap());
        b.delete(&path).unwrap();
        b.delete(&path).unwrap();
        assert!(!a.exists(&path).unwrap());
    }

    #[test]
    fn s3_urls_take_the_bucket_from_the_url_and_keys_from_options() {
        let options = ConnectOptions::new()
            .with_config("aws_endpoint", "http://127.0.0.1:1")
            .with_config("aws_allow_http", "true")
            .with_config("aws_access_key_id", "k")
            .with_config("aws_secret_access_key", "s")
            .with_config("aws_region", "us-east-1");
        let (s3, path) = ObjectStorage::from_url_with("s3://bucket/a/b%20c", &options).unwrap();
        assert_eq!(path.as_ref(), "a/b c");
        assert_eq!(s3.url_of(&path), "s3://bucket/a/b c");
        assert!(s3.store().to_string().contains("bucket"));
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for url in ["not a url", "ftp://host/x", "s3:///no-bucket"] {
            let err = ObjectStorage::from_url(url).unwrap_err();
            assert!(
                matches!(err, ObjectStoreError::InvalidUrl { .. }),
                "{url}: {err}"
            );
        }
        let unknown_key = ConnectOptions::new().with_config("aws_no_such_key", "1");
        let err = ObjectStorage::from_url_with("s3://b/k", &unknown_key).unwrap_err();
        assert!(err.to_string().contains("aws_no_such_key"), "{err}");
    }

    #[test]
    fn file_urls_reach_the_local_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_file_path(dir.path().join("t.tensor")).unwrap();
        let (files, path) = ObjectStorage::from_url(url.as_str()).unwrap();
        files.put(&path, Bytes::from_static(b"xyz")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("t.tensor")).unwrap(), b"xyz");
        assert_eq!(files.url_of(&path), url.as_str());
    }
}
