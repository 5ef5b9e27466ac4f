//! [`ObjectStoreSink`]: messages streamed into one object, with one PUT when they are small
//! and a multipart upload when they are not.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tensor_ipc::{Error, Gather, Result, TensorSink, check_gather_len, check_parts_len};

use crate::error::ObjectStoreError;
use crate::runtime::{block_on, runtime};
use crate::storage::{ObjectInfo, ObjectStorage};

/// The most parts S3 accepts in one multipart upload.
pub const MAX_PARTS: usize = 10_000;

/// The most bytes of a gathered (non-contiguous) body produced at a time: each piece goes
/// straight into the part buffer when it fits, else through a staging buffer of this size.
const GATHER_PIECE: usize = 1 << 20;

/// A sink that writes messages, back to back, into one object.
///
/// Bytes gather in a part buffer of [`part_size`](crate::TransferOptions::part_size). When
/// the first part fills, a multipart upload starts and each full part is uploaded in the
/// background, [`concurrency`](crate::TransferOptions::concurrency) at a time, while the next
/// one fills; a contiguous tensor (the writer's [`write_parts`](TensorSink::write_parts)) is
/// copied once, from its memory into the parts, and never held whole. Messages that all fit in
/// one part go up with a single PUT on [`finish`](Self::finish).
///
/// A store without multipart uploads (a plain HTTP/WebDAV server: `object_store` answers
/// `NotImplemented`) gets the whole object in one PUT on `finish` instead: its full parts are
/// kept in memory, without being copied again, until then.
///
/// Nothing is visible under the key until `finish` succeeds. A failed part upload aborts the
/// upload (the parts sent are discarded) and the sink refuses further writes; dropping a sink
/// without finishing it aborts too.
///
/// A strided tensor (gathered by the writer through [`reserve`](TensorSink::reserve)) needs
/// its whole message in one region: the sink lends it from the part buffer when it fits there
/// and otherwise allocates it, then uploads it in place.
#[derive(Debug)]
pub struct ObjectStoreSink {
    storage: ObjectStorage,
    path: Path,
    url: String,
    /// Fixed once the upload has started.
    part_size: usize,
    /// Bytes not handed to the upload yet (less than `part_size`, but while a region lent
    /// from it is pending).
    part: Vec<u8>,
    /// The region lent by the last `reserve`, until committed.
    pending: Option<Pending>,
    /// The multipart upload, once the first part is full.
    upload: Option<WriteMultipart>,
    /// The full parts kept for one PUT, when the store has no multipart uploads.
    held: Option<Vec<Bytes>>,
    parts_sent: usize,
    /// Bytes of committed messages.
    len: u64,
    /// An upload failed (and was aborted): the sink is unusable.
    failed: bool,
}

/// Where the region lent by `reserve` lives.
#[derive(Debug)]
enum Pending {
    /// `part[start..]`.
    InPart { start: usize },
    /// A separate allocation, for a message that does not fit in the current part.
    Region(Vec<u8>),
}

impl ObjectStoreSink {
    /// A sink writing the object a URL names; see [`ObjectStorage::from_url`] for the URL
    /// forms and the environment they read.
    pub fn create_url(url: &str) -> Result<ObjectStoreSink, ObjectStoreError> {
        let (storage, path) = ObjectStorage::from_url(url)?;
        Ok(Self::create(&storage, path))
    }

    /// A sink writing the object at `path` of `storage` (replacing it on `finish`). Nothing
    /// is sent before the first part fills or the sink is finished.
    pub fn create(storage: &ObjectStorage, path: impl Into<Path>) -> ObjectStoreSink {
        let path = path.into();
        ObjectStoreSink {
            url: storage.url_of(&path),
            part_size: storage.transfer().part_size.max(1),
            storage: storage.clone(),
            path,
            part: Vec::new(),
            pending: None,
            upload: None,
            held: None,
            parts_sent: 0,
            len: 0,
            failed: false,
        }
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Bytes of the messages committed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no message has been committed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part size in use.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Whether a multipart upload has started (the messages did not fit in one part).
    pub fn is_multipart(&self) -> bool {
        self.upload.is_some()
    }

    /// Makes the object visible: one PUT when every message fit in one part, otherwise the
    /// last part and the upload's completion. On failure the upload is aborted and nothing
    /// is visible under the key. A message reserved and never committed is discarded, as by
    /// every sink.
    pub fn finish(mut self) -> Result<ObjectInfo, ObjectStoreError> {
        self.check_usable()?;
        self.discard_pending();
        let last = Bytes::from(std::mem::take(&mut self.part));
        let put = match self.upload.take() {
            None => {
                let store = self.storage.store().clone();
                let mut chunks = self.held.take().unwrap_or_default();
                chunks.push(last);
                let payload: PutPayload = chunks.into_iter().collect();
                block_on(async { store.put(&self.path, payload).await })?
                    .map_err(|e| ObjectStoreError::from_store(&self.url, "put", e))?
            }
            Some(mut upload) => {
                if !last.is_empty() {
                    let _context = runtime()?.enter();
                    upload.put(last);
                }
                // `WriteMultipart::finish` aborts the upload itself when a part or the
                // completion fails.
                block_on(upload.finish())?
                    .map_err(|e| ObjectStoreError::from_store(&self.url, "complete upload", e))?
            }
        };
        Ok(ObjectInfo {
            url: self.url.clone(),
            size: self.len,
            e_tag: put.e_tag,
        })
    }

    /// Gives up: aborts the multipart upload if one started. Nothing is visible under the key.
    pub fn abort(mut self) -> Result<(), ObjectStoreError> {
        self.abort_upload()
    }

    fn abort_upload(&mut self) -> Result<(), ObjectStoreError> {
        match self.upload.take() {
            None => Ok(()),
            Some(upload) => block_on(upload.abort())?
                .map_err(|e| ObjectStoreError::from_store(&self.url, "abort upload", e)),
        }
    }

    fn state_error(&self, reason: &'static str) -> ObjectStoreError {
        ObjectStoreError::SinkState {
            url: self.url.clone(),
            reason,
        }
    }

    fn check_usable(&self) -> Result<(), ObjectStoreError> {
        if self.failed {
            return Err(self.state_error(
                "an earlier upload failed and was aborted; nothing was written under the key",
            ));
        }
        Ok(())
    }

    /// Marks the sink failed and aborts its upload, keeping the first error.
    fn fail(&mut self, error: impl Into<Error>) -> Error {
        self.failed = true;
        self.part = Vec::new();
        self.held = None;
        self.pending = None;
        let _ = self.abort_upload();
        error.into()
    }

    /// Checks that `len` more bytes fit in the parts left, growing the part size first if
    /// the upload has not started and this message alone would need more than `MAX_PARTS`.
    fn make_room(&mut self, len: usize) -> Result<()> {
        if self.upload.is_none() && self.parts_sent == 0 {
            let total = self.part.len().saturating_add(len);
            let needed = total.div_ceil(MAX_PARTS);
            if needed > self.part_size {
                self.part_size = needed.next_multiple_of(1 << 20);
            }
        }
        let room = (MAX_PARTS - self.parts_sent)
            .saturating_mul(self.part_size)
            .saturating_sub(self.part.len());
        if len > room {
            return Err(Error::SinkFull {
                requested: len as u64,
                reason: "the object would need more than 10,000 upload parts (raise part_size)",
            });
        }
        if self.part.capacity() < self.part_size {
            let more = self.part_size - self.part.len();
            self.part
                .try_reserve_exact(more)
                .map_err(|_| Error::SinkFull {
                    requested: self.part_size as u64,
                    reason: "cannot allocate the part buffer",
                })?;
        }
        Ok(())
    }

    /// Forgets a region reserved and never committed.
    fn discard_pending(&mut self) {
        if let Some(Pending::InPart { start }) = self.pending.take() {
            self.part.truncate(start);
        }
    }

    /// Copies `bytes` into parts, uploading each part that fills.
    fn write_bytes(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let room = self.part_size - self.part.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.part.extend_from_slice(now);
            bytes = later;
            if self.part.len() == self.part_size {
                self.send_part()?;
            }
        }
        Ok(())
    }

    /// Writes one piece of a gathered body: into the part buffer's spare capacity when it fits
    /// there, else through `staging`, uploading each part that fills.
    fn write_gathered(&mut self, piece: &Gather<'_>, staging: &mut Vec<u8>) -> Result<()> {
        if piece.len() <= self.part_size - self.part.len() {
            piece.append_to(&mut self.part)?;
            if self.part.len() == self.part_size {
                self.send_part()?;
            }
            return Ok(());
        }
        staging.clear();
        piece.append_to(staging)?;
        self.write_bytes(staging)
    }

    /// Uploads a region in place: its head completes the current part, whole parts go up as
    /// slices of it, and its tail starts the next part.
    fn write_region(&mut self, region: Vec<u8>) -> Result<()> {
        let mut region = Bytes::from(region);
        if !self.part.is_empty() {
            let room = self.part_size - self.part.len();
            let head = region.split_to(room.min(region.len()));
            self.write_bytes(&head)?;
        }
        while region.len() >= self.part_size {
            let whole = region.split_to(self.part_size);
            self.upload_part(whole)?;
        }
        self.write_bytes(&region)
    }

    /// Uploads the full part buffer and starts a new one.
    fn send_part(&mut self) -> Result<()> {
        let full = std::mem::take(&mut self.part);
        self.upload_part(Bytes::from(full))?;
        self.part
            .try_reserve_exact(self.part_size)
            .map_err(|_| Error::SinkFull {
                requested: self.part_size as u64,
                reason: "cannot allocate the part buffer",
            })
    }

    /// Hands one full part to the upload (starting it if needed), after waiting until fewer
    /// than `concurrency` parts are in flight. Any failure aborts the upload.
    fn upload_part(&mut self, part: Bytes) -> Result<()> {
        debug_assert_eq!(part.len(), self.part_size);
        match self.upload_part_inner(part) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn upload_part_inner(&mut self, part: Bytes) -> Result<(), ObjectStoreError> {
        if let Some(held) = self.held.as_mut() {
            held.push(part);
            self.parts_sent += 1;
            return Ok(());
        }
        let concurrency = self.storage.transfer().concurrency.max(1);
        if self.upload.is_none() {
            let store = self.storage.store().clone();
            match block_on(async { store.put_multipart(&self.path).await })? {
                Ok(started) => {
                    self.upload = Some(WriteMultipart::new_with_chunk_size(started, self.part_size))
                }
                // No multipart uploads here (a plain HTTP server): one PUT on `finish`.
                Err(object_store::Error::NotImplemented { .. }) => {
                    self.held = Some(vec![part]);
                    self.parts_sent += 1;
                    return Ok(());
                }
                Err(e) => return Err(ObjectStoreError::from_store(&self.url, "start upload", e)),
            }
        }
        let upload = self.upload.as_mut().expect("started above");
        block_on(upload.wait_for_capacity(concurrency))?
            .map_err(|e| ObjectStoreError::from_store(&self.url, "upload part", e))?;
        let _context = runtime()?.enter();
        upload.put(part);
        self.parts_sent += 1;
        Ok(())
    }
}

impl Drop for ObjectStoreSink {
    fn drop(&mut self) {
        let _ = self.abort_upload();
    }
}

impl TensorSink for ObjectStoreSink {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        self.check_usable()?;
        self.discard_pending();
        if len == 0 {
            return Err(Error::SinkState("a message is never empty"));
        }
        self.make_room(len)?;
        let start = self.part.len();
        if len <= self.part_size - start {
            self.part.resize(start + len, 0);
            self.pending = Some(Pending::InPart { start });
            return Ok(&mut self.part[start..]);
        }
        let mut region = Vec::new();
        region.try_reserve_exact(len).map_err(|_| Error::SinkFull {
            requested: len as u64,
            reason: "cannot allocate a region for the message",
        })?;
        region.resize(len, 0);
        match self.pending.insert(Pending::Region(region)) {
            Pending::Region(region) => Ok(region),
            Pending::InPart { .. } => unreachable!("just inserted a region"),
        }
    }

    fn commit(&mut self) -> Result<()> {
        self.check_usable()?;
        match self.pending.take() {
            None => Err(Error::SinkState("commit without reserve")),
            Some(Pending::InPart { start }) => {
                let len = (self.part.len() - start) as u64;
                if self.part.len() == self.part_size {
                    self.send_part().map_err(|e| self.fail(e))?;
                }
                self.len += len;
                Ok(())
            }
            Some(Pending::Region(region)) => {
                let len = region.len() as u64;
                self.write_region(region).map_err(|e| self.fail(e))?;
                self.len += len;
                Ok(())
            }
        }
    }

    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        check_parts_len(len, parts)?;
        self.check_usable()?;
        self.discard_pending();
        if len == 0 {
            return Err(Error::SinkState("a message is never empty"));
        }
        self.make_room(len)?;
        // A message cut off halfway must never reach the object: any failure fails the sink.
        for part in parts {
            self.write_bytes(part).map_err(|e| self.fail(e))?;
        }
        self.len += len as u64;
        Ok(())
    }

    /// A non-contiguous body is gathered a piece at a time into the parts as they fill, so the
    /// sink never holds more than a part and one piece of it.
    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> Result<()> {
        check_gather_len(len, head, body)?;
        self.check_usable()?;
        self.discard_pending();
        if len == 0 {
            return Err(Error::SinkState("a message is never empty"));
        }
        self.make_room(len)?;
        // As in `write_parts`: a message cut off halfway fails the sink.
        self.write_bytes(head).map_err(|e| self.fail(e))?;
        let mut staging = Vec::new();
        for piece in body.chunks(GATHER_PIECE) {
            self.write_gathered(&piece, &mut staging)
                .map_err(|e| self.fail(e))?;
        }
        self.len += len as u64;
        Ok(())
    }
}
