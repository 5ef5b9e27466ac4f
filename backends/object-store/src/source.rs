//! [`ObjectStoreSource`]: messages read from an object with ranged GETs, header first.

use arrow_buffer::Buffer;
use object_store::path::Path;
use object_store::{GetOptions, GetRange};
use tensor_ipc::{Error, Result, TensorData, TensorSource};

use crate::aligned::AlignedBytes;
use crate::error::ObjectStoreError;
use crate::fetch::{ObjectRef, fetch_into};
use crate::runtime::block_on;
use crate::storage::ObjectStorage;

/// A source over one object: messages come back in order, as from a file.
///
/// Opening it fetches the first [`read_ahead`](crate::TransferOptions::read_ahead) bytes (one
/// ranged GET, which also tells the object's size and ETag). A message header is read from
/// that window; a body the window does not hold is fetched into one 64-byte aligned
/// allocation, several ranges at once, the bytes going from the network straight into it; the
/// tensor read is a zero-copy view of that allocation. [`read_message_header`] (and so
/// `tensor-ipc inspect`) never fetches a body. Every read after the first is conditional on
/// the ETag seen at open, so an object replaced or deleted meanwhile is an error
/// ([`ObjectStoreError::Changed`]), never a mix of two versions.
///
/// [`read_message_header`]: tensor_ipc::read_message_header
#[derive(Debug)]
pub struct ObjectStoreSource {
    storage: ObjectStorage,
    path: Path,
    url: String,
    size: u64,
    e_tag: Option<String>,
    /// Offset of the next byte to consume.
    position: u64,
    /// Bytes `[window_start, window_start + window.len())` of the object.
    window: Buffer,
    window_start: u64,
}

impl ObjectStoreSource {
    /// Opens the object a URL names; see [`ObjectStorage::from_url`] for the URL forms and the
    /// environment they read.
    pub fn open_url(url: &str) -> Result<ObjectStoreSource, ObjectStoreError> {
        let (storage, path) = ObjectStorage::from_url(url)?;
        Self::open(&storage, path)
    }

    /// Opens the object at `path` of `storage`, fetching its first bytes.
    pub fn open(
        storage: &ObjectStorage,
        path: impl Into<Path>,
    ) -> Result<ObjectStoreSource, ObjectStoreError> {
        let path = path.into();
        let url = storage.url_of(&path);
        let read_ahead = storage.transfer().read_ahead.max(8) as u64;
        let store = storage.store().clone();
        let first = block_on(async {
            let options = GetOptions {
                range: Some(GetRange::Bounded(0..read_ahead)),
                ..GetOptions::default()
            };
            let result = store.get_opts(&path, options).await?;
            let meta = result.meta.clone();
            let bytes = result.bytes().await?;
            Ok::<_, object_store::Error>((meta, bytes))
        })?;
        let (meta, bytes) = match first {
            Ok(first) => first,
            Err(e) => return Self::open_empty(storage, path, url, e),
        };
        if bytes.len() as u64 > meta.size.min(read_ahead) {
            return Err(ObjectStoreError::BadResponse {
                url,
                reason: format!(
                    "{} bytes for the first {read_ahead} of an object of {}",
                    bytes.len(),
                    meta.size
                ),
            });
        }
        let mut window =
            AlignedBytes::zeroed(bytes.len()).map_err(|e| ObjectStoreError::BadResponse {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        window.as_mut_slice().copy_from_slice(&bytes);
        Ok(ObjectStoreSource {
            storage: storage.clone(),
            path,
            url,
            size: meta.size,
            e_tag: meta.e_tag,
            position: 0,
            window: window.into_buffer(),
            window_start: 0,
        })
    }

    /// A ranged GET of an empty object fails on S3 (no byte is in range): tell that case from
    /// a real failure with a HEAD.
    fn open_empty(
        storage: &ObjectStorage,
        path: Path,
        url: String,
        get_error: object_store::Error,
    ) -> Result<ObjectStoreSource, ObjectStoreError> {
        let get_error = ObjectStoreError::from_store(&url, "get", get_error);
        if !matches!(
            get_error,
            ObjectStoreError::Store { .. } | ObjectStoreError::BadResponse { .. }
        ) {
            return Err(get_error);
        }
        match storage.head(&path) {
            Ok(info) if info.size == 0 => Ok(ObjectStoreSource {
                storage: storage.clone(),
                path,
                url,
                size: 0,
                e_tag: info.e_tag,
                position: 0,
                window: Buffer::from_vec(Vec::<u8>::new()),
                window_start: 0,
            }),
            _ => Err(get_error),
        }
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object's size in bytes, as the store gave it when the source opened it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's ETag when the source opened it.
    pub fn e_tag(&self) -> Option<&str> {
        self.e_tag.as_deref()
    }

    /// Bytes consumed so far: the object offset of the next message.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> u64 {
        self.size - self.position
    }

    fn object(&self) -> ObjectRef<'_> {
        ObjectRef {
            store: self.storage.store().as_ref(),
            path: &self.path,
            url: &self.url,
            e_tag: self.e_tag.as_deref(),
            size: self.size,
        }
    }

    /// The window's bytes from the current position, if it starts at or before it.
    fn window_from_position(&self) -> &[u8] {
        match self.position.checked_sub(self.window_start) {
            Some(offset) if offset <= self.window.len() as u64 => &self.window[offset as usize..],
            _ => &[],
        }
    }

    /// `Truncated` unless `len` more bytes are in the object.
    fn check_remaining(&self, len: usize) -> Result<()> {
        if len as u64 > self.remaining() {
            return Err(Error::Truncated {
                part: "input",
                expected: len as u64,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    /// Fetches `len` bytes at `offset` into a fresh aligned buffer, taking the bytes the
    /// window already holds from it.
    fn fetch(&self, offset: u64, len: usize) -> Result<Buffer> {
        let mut bytes = AlignedBytes::zeroed(len)?;
        let dest = bytes.as_mut_slice();
        let known = self.window_from_position();
        let known = &known[..known.len().min(len)];
        dest[..known.len()].copy_from_slice(known);
        let rest = &mut dest[known.len()..];
        if !rest.is_empty() {
            let transfer = self.storage.transfer();
            let object = self.object();
            block_on(fetch_into(
                &object,
                offset + known.len() as u64,
                rest,
                transfer.part_size,
                transfer.concurrency,
            ))??;
        }
        Ok(bytes.into_buffer())
    }
}

impl TensorSource<'static> for ObjectStoreSource {
    fn peek(&mut self, len: usize) -> Result<&[u8]> {
        let want = (len as u64).min(self.remaining()) as usize;
        if self.window_from_position().len() < want {
            let fetch = want.max(self.storage.transfer().read_ahead);
            let fetch = (fetch as u64).min(self.remaining()) as usize;
            self.window = self.fetch(self.position, fetch)?;
            self.window_start = self.position;
        }
        Ok(&self.window_from_position()[..want])
    }

    fn take(&mut self, len: usize) -> Result<TensorData<'static>> {
        self.check_remaining(len)?;
        let in_window = self.window_from_position().len();
        let data = if len <= in_window {
            let offset = (self.position - self.window_start) as usize;
            self.window.slice_with_length(offset, len)
        } else {
            self.fetch(self.position, len)?
        };
        self.position += len as u64;
        Ok(TensorData::Shared(data))
    }

    fn skip(&mut self, len: usize) -> Result<()> {
        self.check_remaining(len)?;
        self.position += len as u64;
        Ok(())
    }
}
