//! Moving evicted objects to the external store (`-e`) and back, outside the store's lock.
//!
//! Under the lock, [`State`](crate::state::State) only decides: an object chosen for
//! eviction becomes *spilling* (its memory stays allocated and readable), an evicted object a
//! get asks for becomes *restoring* (memory is allocated for it), and the work is queued as an
//! [`ExternalIo`]. The request's own thread then takes the queue, copies bytes between the
//! segment and the external store with the lock released, and reports each outcome back
//! under the lock: a spilled object's memory is freed only once its copy is safe, a spill that
//! fails keeps the object in memory (and says why), a restore that fails drops the object.
//! So a slow external store (a disk, a bucket) stalls only the requests that need its work,
//! never the store.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tensor_ipc_plasma_protocol::ObjectId;

use crate::external::StoredObject;

use crate::server::Shared;

/// An evicted object's bytes (data then metadata) on their way to the external store.
#[derive(Debug, Clone)]
pub(crate) struct Spill {
    pub(crate) id: ObjectId,
    /// Tells this spill apart from a later one of an object with the same id; also the
    /// number of the copy it makes in the external store.
    pub(crate) ticket: u64,
    pub(crate) offset: u64,
    pub(crate) len: usize,
    /// What the external store keeps with the bytes.
    pub(crate) object: StoredObject,
}

/// An evicted object on its way back into memory allocated for it.
#[derive(Debug, Clone)]
pub(crate) struct Restore {
    pub(crate) id: ObjectId,
    pub(crate) ticket: u64,
    /// The external copy it comes back from (the ticket of the spill that made it).
    pub(crate) copy: u64,
    pub(crate) offset: u64,
    pub(crate) len: usize,
}

/// The external-store work requests left to do outside the lock.
#[derive(Debug, Default)]
pub(crate) struct ExternalIo {
    pub(crate) spills: Vec<Spill>,
    pub(crate) restores: Vec<Restore>,
    /// External copies that are no longer needed (their objects were deleted or kept), by
    /// object and copy number.
    pub(crate) removals: Vec<(ObjectId, u64)>,
}

impl ExternalIo {
    /// Whether there is nothing to do.
    pub(crate) fn is_empty(&self) -> bool {
        self.spills.is_empty() && self.restores.is_empty() && self.removals.is_empty()
    }
}

/// Does the queued external-store work (taking it from the state under the lock, doing the
/// copies without it, reporting back under it) until none is left, and wakes the requests
/// waiting for memory or objects. Returns whether any of it freed memory or brought an object
/// back, so callers retry only when that can help.
pub(crate) fn run_external_io(shared: &Shared) -> bool {
    let mut progress = false;
    loop {
        let (work, external, segment) = {
            let mut state = shared.lock();
            let work = state.take_external_io();
            if work.is_empty() {
                break;
            }
            (work, state.external(), state.segment().clone())
        };
        let Some(external) = external else {
            break;
        };
        for (id, copy) in &work.removals {
            external.remove(id, *copy);
        }
        // Restores first: the copies they take out make room for the spills in a bounded
        // external store.
        let restored: Vec<(Restore, io::Result<()>)> = work
            .restores
            .into_iter()
            .map(|restore| {
                let result = external.take(&restore.id, restore.copy).and_then(|bytes| {
                    if bytes.len() != restore.len {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the external copy has {} bytes, the object {}",
                                bytes.len(),
                                restore.len
                            ),
                        ));
                    }
                    segment.write(restore.offset, &bytes);
                    Ok(())
                });
                (restore, result)
            })
            .collect();
        let spilled: Vec<(Spill, io::Result<()>)> = work
            .spills
            .into_iter()
            .map(|spill| {
                let bytes = segment.read(spill.offset, spill.len);
                let result = external.put(&spill.id, spill.ticket, &spill.object, &bytes);
                (spill, result)
            })
            .collect();
        let mut state = shared.lock();
        for (spill, result) in spilled {
            progress |= state.finish_spill(spill, result);
        }
        for (restore, result) in restored {
            progress |= state.finish_restore(restore, result);
        }
        drop(state);
        shared.wake_waiters();
    }
    progress
}

/// The external-store thread: does the work requests served by the event loop queued (they
/// never do external-store I/O themselves), until the store stops.
pub(crate) fn run_io_thread(shared: &Arc<Shared>) {
    while !shared.is_stopping() {
        let mut state = shared.lock();
        while !state.external_io_queued() && !shared.is_stopping() {
            state = shared
                .io_queued
                .wait_timeout(state, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(state);
        run_external_io(shared);
    }
}
