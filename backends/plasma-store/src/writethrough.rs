//! `--write-through`: every sealed object also goes to the (shared, object-storage)
//! external store, and a get of an id the store does not hold looks there.
//!
//! Sealing pins the object (a reference held by the store itself, [`WRITE_THROUGH_CLIENT`])
//! and queues it; the seal's reply goes out at once. One writer thread uploads queued objects
//! with their sizes and digest, then drops the pin: until then the object can be neither
//! evicted nor reused (a delete waits, as for an object a client holds). A get that finds
//! neither the object nor any trace of it fetches it from the external store, creates it in
//! this store's memory and seals it with the digest it was written with, all outside the
//! store's lock; it looks again about once a second while it waits.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use tensor_ipc_plasma_protocol::ObjectId;

use crate::external::StoredObject;
use crate::log;
use crate::server::Shared;
use crate::state::ClientId;

/// The reference the store holds on objects it is writing through or fetching.
pub(crate) const WRITE_THROUGH_CLIENT: ClientId = ClientId::MAX;

/// A sealed object queued for the external store.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) id: ObjectId,
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) object: StoredObject,
}

/// How often the writer checks whether the store is shutting down.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Starts the writer thread, which uploads what `jobs` brings until the store stops.
pub(crate) fn spawn_writer(
    shared: Arc<Shared>,
    jobs: Receiver<Published>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("plasma-write-through".into())
        .spawn(move || {
            loop {
                match jobs.recv_timeout(STOP_POLL) {
                    Ok(job) => write_through(&shared, job),
                    Err(RecvTimeoutError::Timeout) if !shared.is_stopping() => {}
                    Err(_) => break,
                }
            }
        })
}

/// Uploads one pinned object, then unpins it.
fn write_through(shared: &Shared, job: Published) {
    let (external, segment) = {
        let state = shared.lock();
        (state.external(), Arc::clone(state.segment()))
    };
    if let Some(external) = external {
        let bytes = segment.read(job.offset, job.len);
        if let Err(e) = external.put(&job.id, &bytes, &job.object) {
            log(&format!(
                "writing object {} ({} bytes) through to the external store failed: {e}; \
                 it stays in this store only",
                job.id, job.len
            ));
        }
    }
    shared.lock().release(WRITE_THROUGH_CLIENT, &job.id);
    shared.wake_waiters();
}

/// Fetches from the shared external store each of `ids` the store knows nothing of, and
/// makes it a sealed object of this store. Returns whether any arrived.
pub(crate) fn fetch_missing(shared: &Shared, ids: &[ObjectId]) -> bool {
    let Some(external) = shared.lock().external().filter(|e| e.shared()) else {
        return false;
    };
    let mut arrived = false;
    for id in ids {
        let fetched = match external.fetch(id) {
            Ok(Some(fetched)) => fetched,
            Ok(None) => continue,
            Err(e) => {
                log(&format!(
                    "looking for object {id} in the external store failed: {e}"
                ));
                continue;
            }
        };
        arrived |= adopt(shared, *id, fetched);
    }
    if arrived {
        shared.wake_waiters();
    }
    arrived
}

/// Creates `id` from its external copy (allocating under the lock, copying without it) and
/// seals it with the copy's digest, without writing it through again.
fn adopt(shared: &Shared, id: ObjectId, (object, bytes): (StoredObject, Vec<u8>)) -> bool {
    let created = shared.with_space(|state| {
        let spec = state.create(
            WRITE_THROUGH_CLIENT,
            id,
            object.data_size,
            object.metadata_size,
            0,
            true,
        )?;
        Ok((spec, Arc::clone(state.segment())))
    });
    let (spec, segment) = match created {
        Ok(created) => created,
        // Created meanwhile by a client or another get: that one counts.
        Err(tensor_ipc_plasma_protocol::Status::ObjectExists) => return false,
        Err(status) => {
            log(&format!(
                "object {id} ({} bytes) is in the external store but does not fit here: {status:?}",
                bytes.len()
            ));
            return false;
        }
    };
    let data_len = usize::try_from(object.data_size).unwrap_or(usize::MAX);
    let (data, metadata) = bytes.split_at(data_len.min(bytes.len()));
    segment.write(spec.data_offset, data);
    segment.write(spec.metadata_offset, metadata);
    shared
        .lock()
        .seal_fetched(WRITE_THROUGH_CLIENT, &id, &object.digest);
    true
}
