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

use tensor_ipc_plasma_protocol::ObjectId;

use crate::external::StoredObject;
use crate::server::Shared;

/// An evicted object's bytes (data then metadata) on their way to the external store.
#[derive(Debug, Clone)]
pub(crate) struct Spill {
    pub(crate) id: ObjectId,
    /// Tells this spill apart from a later one of an object with the same id.
    pub(crate) ticket: u64,
    pub(crate) offset: u64,
    pub(crate) len: usize,
    /// Its sizes and digest, kept with the copy.
    pub(crate) object: StoredObject,
}

/// An evicted object on its way back into memory allocated for it.
#[derive(Debug, Clone)]
pub(crate) struct Restore {
    pub(crate) id: ObjectId,
    pub(crate) ticket: u64,
    pub(crate) offset: u64,
    pub(crate) len: usize,
}

/// The external-store work requests left to do outside the lock.
#[derive(Debug, Default)]
pub(crate) struct ExternalIo {
    pub(crate) spills: Vec<Spill>,
    pub(crate) restores: Vec<Restore>,
    /// External copies that are no longer needed (their objects were deleted or kept).
    pub(crate) removals: Vec<ObjectId>,
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
        for id in &work.removals {
            external.remove(id);
        }
        let spilled: Vec<(Spill, io::Result<()>)> = work
            .spills
            .into_iter()
            .map(|spill| {
                let bytes = segment.read(spill.offset, spill.len);
                let result = external.put(&spill.id, &bytes, &spill.object);
                (spill, result)
            })
            .collect();
        let restored: Vec<(Restore, io::Result<()>)> = work
            .restores
            .into_iter()
            .map(|restore| {
                let result = external.take(&restore.id).and_then(|bytes| {
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
