//! Objects as this client hands them out: [`ObjectBuffers`] (a sealed object got from the
//! store, read-only) and [`CreatedObject`] (an object being written, until sealed or aborted).

use std::sync::Arc;

use arrow_buffer::Buffer;
use tensor_ipc_plasma_protocol::ObjectId;
use tensor_ipc_plasma_protocol::messages::{AbortRequest, SealRequest};

use crate::digest::{copy_and_hash, object_digest};
use crate::error::{ClientError, ClientResult};
use crate::segment::{Segment, WritableRegion};
use crate::{Inner, check_id, lock, status_error};

/// Keeps one local holder of an object (and its segment) alive; the owner of
/// the object's [`Buffer`]s.
pub(crate) struct ObjectPin {
    pub(crate) client: Arc<Inner>,
    pub(crate) id: ObjectId,
    pub(crate) _segment: Arc<Segment>,
}

impl Drop for ObjectPin {
    fn drop(&mut self) {
        self.client.drop_holder(self.id);
    }
}

/// A sealed object as returned by [`PlasmaClient::get`](crate::PlasmaClient::get): zero-copy, read-only
/// views of its data and metadata. The store reference is released when the
/// last clone of either buffer is dropped.
#[derive(Clone, Debug)]
pub struct ObjectBuffers {
    /// The object.
    pub id: ObjectId,
    /// The data bytes, in shared memory.
    pub data: Buffer,
    /// The metadata bytes, in shared memory.
    pub metadata: Buffer,
}

impl ObjectBuffers {
    /// Drops these buffers now; the object is released once no other clone
    /// of its buffers (or tensor over them) is left.
    pub fn release(self) {}
}

/// An object created by [`PlasmaClient::create`](crate::PlasmaClient::create) and not yet sealed: a
/// writable view of exactly the requested size in shared memory.
///
/// [`seal`](CreatedObject::seal) publishes it; [`abort`](CreatedObject::abort)
/// (or dropping it unsealed) deletes it.
pub struct CreatedObject {
    pub(crate) client: Arc<Inner>,
    pub(crate) id: ObjectId,
    pub(crate) data: WritableRegion,
    pub(crate) metadata: WritableRegion,
    pub(crate) done: bool,
}

impl std::fmt::Debug for CreatedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedObject")
            .field("id", &self.id)
            .field("data_len", &self.data.len())
            .field("metadata_len", &self.metadata.len())
            .finish()
    }
}

impl CreatedObject {
    /// The object id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The data region, writable; exactly the size asked for. Its initial
    /// contents are whatever the store's memory held.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.data.as_mut_slice()
    }

    /// The data region, read-only.
    pub fn data(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// The metadata region, writable (already filled by `create`).
    pub fn metadata_mut(&mut self) -> &mut [u8] {
        self.metadata.as_mut_slice()
    }

    /// The digest the seal will send for the current contents.
    pub fn digest(&self) -> [u8; 8] {
        object_digest(self.data.as_slice(), self.metadata.as_slice())
    }

    /// Seals the object (computing its digest as the Arrow 11 client does),
    /// making it visible to every client, and drops this client's creation
    /// reference. Returns the digest.
    pub fn seal(self) -> ClientResult<[u8; 8]> {
        let digest = self.digest();
        self.seal_with_digest(digest)
    }

    /// Seals the object as [`seal`](CreatedObject::seal) does but keeps this client's
    /// reference: the returned buffers view the sealed object (read-only), which stays
    /// referenced in the store until the last of them (and of their clones) is dropped, and
    /// they keep the segment's mappings (the writable one included) alive. What a caller needs
    /// whose views of the data outlive the seal (`pyarrow.plasma`'s `create` buffers do):
    /// without the reference, the store could evict the object and reuse its memory under
    /// them.
    pub fn seal_and_keep(self) -> ClientResult<ObjectBuffers> {
        let client = self.client.clone();
        let id = self.id;
        let data = self.data.to_region();
        let metadata = self.metadata.to_region();
        // A second holder, so that the seal's release leaves the store reference in place;
        // dropping `pin` (on error too) gives it back.
        Inner::add_holder(&mut lock(&client.state), id);
        let pin: Arc<ObjectPin> = Arc::new(ObjectPin {
            client: client.clone(),
            id,
            _segment: data.segment().clone(),
        });
        self.seal()?;
        lock(&client.state)
            .sealed
            .entry(id)
            .or_insert_with(|| (data.clone(), metadata.clone()));
        Ok(ObjectBuffers {
            id,
            data: data.to_buffer(pin.clone()),
            metadata: metadata.to_buffer(pin),
        })
    }

    /// Fills the data region with `parts`, one after another, and seals the object. The
    /// digest is computed on each piece as it is copied, while it is still in cache, so large
    /// objects are not read a second time. Returns the digest.
    ///
    /// [`ClientError::InvalidCall`] if the parts' lengths do not add up to the object's size;
    /// the object is then aborted (deleted), as when a created object is dropped unsealed.
    pub fn fill_and_seal(mut self, parts: &[&[u8]]) -> ClientResult<[u8; 8]> {
        let total = parts
            .iter()
            .try_fold(0usize, |sum, p| sum.checked_add(p.len()));
        if total != Some(self.data.len()) {
            return Err(ClientError::InvalidCall(format!(
                "the parts hold {total:?} bytes, the object {}",
                self.data.len()
            )));
        }
        let hash = copy_and_hash(self.data.as_mut_slice(), parts, self.metadata.as_slice());
        self.seal_with_digest(hash.to_le_bytes())
    }

    fn seal_with_digest(mut self, digest: [u8; 8]) -> ClientResult<[u8; 8]> {
        self.done = true;
        let id = self.id;
        let request = SealRequest {
            object_id: id,
            digest: digest.to_vec(),
        };
        let timeout = Some(self.client.options.request_timeout);
        let result = self.client.with_conn(|conn| {
            let reply = conn.call(&request, timeout)?;
            check_id(conn, "SealReply", reply.object_id, id)?;
            status_error(reply.error, id, 0)
        });
        lock(&self.client.state).unsealed.remove(&id);
        self.client.drop_holder(id);
        result.map(|()| digest)
    }

    /// Deletes the unsealed object.
    pub fn abort(mut self) -> ClientResult<()> {
        self.done = true;
        self.abort_inner()
    }

    fn abort_inner(&mut self) -> ClientResult<()> {
        let id = self.id;
        let timeout = Some(self.client.options.request_timeout);
        let result = self.client.with_conn(|conn| {
            let reply = conn.call(&AbortRequest { object_id: id }, timeout)?;
            check_id(conn, "AbortReply", reply.object_id, id)
        });
        let mut state = lock(&self.client.state);
        state.unsealed.remove(&id);
        if result.is_ok() {
            // The store dropped the creator's reference with the object.
            state.holders.remove(&id);
        } else if let Some(count) = state.holders.get_mut(&id) {
            // The connection is broken: the store aborts the object itself
            // when it sees the disconnect; no release must follow.
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.holders.remove(&id);
            }
        }
        result
    }
}

impl Drop for CreatedObject {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.abort_inner();
        }
    }
}
