//! One function per request: what the store does for it and what it answers.
//!
//! Each takes the state lock only for bookkeeping. Object bytes (inline data of
//! CreateAndSeal) are copied into the segment, and the external store is written and read,
//! with the lock released.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{AnyRequest, ObjectId, ObjectSpec, Status};

use crate::log;
use crate::notify::Subscriber;
use crate::server::{Conn, End, Shared};
use crate::spill::run_external_io;
use crate::state::{BatchItem, ClientId};
use crate::writethrough::fetch_missing;

/// Serves one request of `client`.
pub(crate) fn handle(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    request: AnyRequest,
) -> Result<(), End> {
    use AnyRequest as R;
    match request {
        R::Connect(_) => connect(shared, conn),
        R::Create(r) => create(shared, conn, client, r),
        R::CreateAndSeal(r) => create_and_seal(shared, conn, client, r),
        R::CreateAndSealBatch(r) => create_and_seal_batch(shared, conn, client, r),
        R::Abort(r) => abort(shared, conn, client, r),
        R::Seal(r) => seal(shared, conn, r),
        R::Get(r) => get(shared, conn, client, r),
        R::Release(r) => {
            release(shared, client, r);
            Ok(())
        }
        R::Delete(r) => {
            let errors = shared.lock().delete(&r.object_ids);
            run_external_io(shared);
            reply(
                conn,
                &DeleteReply {
                    object_ids: r.object_ids,
                    errors,
                },
            )
        }
        R::Contains(r) => {
            let has_object = shared.lock().contains(&r.object_id);
            reply(
                conn,
                &ContainsReply {
                    object_id: r.object_id,
                    has_object,
                },
            )
        }
        R::List(_) => {
            let objects = shared.lock().list();
            reply(conn, &ListReply { objects })
        }
        R::Evict(r) => {
            let num_bytes = shared.lock().evict(r.num_bytes);
            run_external_io(shared);
            reply(conn, &EvictReply { num_bytes })
        }
        R::RefreshLru(r) => {
            shared.lock().refresh_lru(&r.object_ids);
            reply(conn, &RefreshLruReply)
        }
        R::Subscribe(_) => subscribe(shared, conn, client),
        R::SetOptions(r) => {
            let error = shared
                .lock()
                .set_options(client, r.client_name, r.output_memory_quota);
            reply(conn, &SetOptionsReply { error })
        }
        R::GetDebugString(_) => {
            let debug_string = shared.lock().debug_string();
            reply(conn, &GetDebugStringReply { debug_string })
        }
    }
}

fn reply<M: tensor_ipc_plasma_protocol::Message>(conn: &mut Conn<'_>, m: &M) -> Result<(), End> {
    conn.send(m)?;
    Ok(())
}

/// A digest must be 8 bytes (the original store aborts on anything else).
fn check_digest(digest: &[u8]) -> Result<(), End> {
    if digest.len() == 8 {
        return Ok(());
    }
    Err(End::Violation(format!("digest of {} bytes", digest.len())))
}

fn connect(shared: &Shared, conn: &mut Conn<'_>) -> Result<(), End> {
    let capacity = shared.lock().capacity();
    reply(
        conn,
        &ConnectReply {
            memory_capacity: i64::try_from(capacity).unwrap_or(i64::MAX),
        },
    )
}

fn create(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    r: CreateRequest,
) -> Result<(), End> {
    let result = shared.with_space(|state| {
        let spec = state.create(
            client,
            r.object_id,
            r.data_size,
            r.metadata_size,
            r.device_num,
            r.evict_if_full,
        )?;
        Ok((spec, state.segment().len() + 8, state.segment().key()))
    });
    match result {
        Ok((object, mmap_size, key)) => {
            reply(
                conn,
                &CreateReply {
                    object_id: r.object_id,
                    object,
                    error: Status::Ok,
                    store_fd: key,
                    mmap_size: i64::try_from(mmap_size).unwrap_or(i64::MAX),
                },
            )?;
            conn.send_segment(shared, key)?;
            Ok(())
        }
        Err(error) => reply(
            conn,
            &CreateReply {
                object_id: r.object_id,
                object: ObjectSpec::default(),
                error,
                store_fd: 0,
                mmap_size: 0,
            },
        ),
    }
}

/// One object of a CreateAndSeal(Batch): id, data, metadata, digest.
type Inline<'a> = (ObjectId, &'a [u8], &'a [u8], &'a [u8]);

/// Creates the objects (all or none), copies their inline bytes in without the lock, and
/// seals them.
fn create_inline(
    shared: &Shared,
    client: ClientId,
    objects: &[Inline<'_>],
    evict_if_full: bool,
) -> Status {
    let sizes: Vec<BatchItem> = objects
        .iter()
        .map(|(id, data, metadata, _)| (*id, data.len() as u64, metadata.len() as u64))
        .collect();
    let created = shared.with_space(|state| {
        Ok((
            state.create_batch(client, &sizes, evict_if_full)?,
            state.segment().clone(),
        ))
    });
    let (specs, segment) = match created {
        Ok(created) => created,
        Err(status) => return status,
    };
    // The objects are unsealed and held by this connection only: nobody else sees them.
    for (spec, (_, data, metadata, _)) in specs.iter().zip(objects) {
        segment.write(spec.data_offset, data);
        segment.write(spec.metadata_offset, metadata);
    }
    let sealed: Vec<(ObjectId, &[u8])> = objects.iter().map(|(id, _, _, d)| (*id, *d)).collect();
    shared.lock().seal_created(client, &sealed);
    shared.wake_waiters();
    Status::Ok
}

fn create_and_seal(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    r: CreateAndSealRequest,
) -> Result<(), End> {
    check_digest(&r.digest)?;
    let object = (r.object_id, &r.data[..], &r.metadata[..], &r.digest[..]);
    let error = create_inline(shared, client, &[object], r.evict_if_full);
    reply(conn, &CreateAndSealReply { error })
}

fn create_and_seal_batch(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    r: CreateAndSealBatchRequest,
) -> Result<(), End> {
    for digest in &r.digest {
        check_digest(digest)?;
    }
    let objects: Vec<Inline<'_>> = r
        .object_ids
        .iter()
        .zip(&r.data)
        .zip(&r.metadata)
        .zip(&r.digest)
        .map(|(((id, d), m), g)| (*id, &d[..], &m[..], &g[..]))
        .collect();
    let error = create_inline(shared, client, &objects, r.evict_if_full);
    reply(conn, &CreateAndSealBatchReply { error })
}

fn abort(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    r: AbortRequest,
) -> Result<(), End> {
    let result = shared.lock().abort(client, &r.object_id);
    match result {
        Ok(()) => reply(
            conn,
            &AbortReply {
                object_id: r.object_id,
            },
        ),
        Err(v) => Err(End::Violation(format!("abort of {}: {v:?}", r.object_id))),
    }
}

fn seal(shared: &Shared, conn: &mut Conn<'_>, r: SealRequest) -> Result<(), End> {
    check_digest(&r.digest)?;
    let result = shared.lock().seal(&r.object_id, &r.digest);
    shared.wake_waiters();
    let error = result.err().unwrap_or(Status::Ok);
    reply(
        conn,
        &SealReply {
            object_id: r.object_id,
            error,
        },
    )
}

fn release(shared: &Shared, client: ClientId, r: ReleaseRequest) {
    if !shared.lock().release(client, &r.object_id) && shared.verbose {
        log(&format!(
            "client {client} released {} it does not hold; ignored",
            r.object_id
        ));
    }
}

fn subscribe(shared: &Shared, conn: &mut Conn<'_>, client: ClientId) -> Result<(), End> {
    let fd = conn
        .recv_fd()
        .map_err(|e| End::Violation(format!("subscribe: {e}")))?;
    let sub = Subscriber::start(fd);
    if !shared.lock().subscribe(client, Arc::clone(&sub)) {
        // A second subscription: its socket is closed, the first stays.
        sub.close();
    }
    Ok(())
}

/// How often a waiting Get looks for its missing objects in a shared external store.
const EXTERNAL_LOOK_PERIOD: Duration = Duration::from_secs(1);

/// Longest a waiting Get sleeps before checking whether its client hung up.
const HANGUP_POLL: Duration = Duration::from_millis(100);

fn get(shared: &Shared, conn: &mut Conn<'_>, client: ClientId, r: GetRequest) -> Result<(), End> {
    let GetRequest {
        object_ids,
        timeout_ms,
    } = r;
    let deadline = (timeout_ms > 0).then(|| {
        Instant::now()
            + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX).min(1 << 40))
    });
    let mut distinct: Vec<ObjectId> = Vec::new();
    let mut seen = HashSet::new();
    for id in &object_ids {
        if seen.insert(*id) {
            distinct.push(*id);
        }
    }
    let mut found: HashMap<ObjectId, ObjectSpec> = HashMap::new();
    let mut next_look = Instant::now();
    let mut state = shared.lock();
    loop {
        for id in &distinct {
            if !found.contains_key(id)
                && let Some(spec) = state.get(client, id)
            {
                found.insert(*id, spec);
            }
        }
        if found.len() == distinct.len() {
            break;
        }
        if Instant::now() >= next_look && state.shares_external() {
            // Written through by another store sharing the bucket? Look before waiting, and
            // about once a second while waiting.
            let unknown: Vec<ObjectId> = distinct
                .iter()
                .filter(|id| !found.contains_key(id) && !state.knows(id))
                .copied()
                .collect();
            next_look = Instant::now() + EXTERNAL_LOOK_PERIOD;
            if !unknown.is_empty() {
                drop(state);
                let arrived = fetch_missing(shared, &unknown);
                state = shared.lock();
                if arrived {
                    continue;
                }
            }
        }
        if state.external_io_pending() {
            // Evicted objects on their way back (or memory for them on its way out): do
            // that work without the lock, then look again.
            drop(state);
            let progress = run_external_io(shared);
            state = shared.lock();
            if progress {
                continue;
            }
        }
        if timeout_ms == 0 {
            break;
        }
        let mut wait = HANGUP_POLL;
        if let Some(deadline) = deadline {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            wait = wait.min(deadline - now);
        }
        state = shared.wait(state, wait);
        if shared.is_stopping() || conn.peer_gone() {
            return Err(End::Closed);
        }
    }
    let segment = Arc::clone(state.segment());
    drop(state);
    let objects: Vec<ObjectSpec> = object_ids
        .iter()
        .map(|id| found.get(id).copied().unwrap_or(ObjectSpec::MISSING))
        .collect();
    let (store_fds, mmap_sizes) = if found.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            vec![segment.key()],
            vec![i64::try_from(segment.len() + 8).unwrap_or(i64::MAX)],
        )
    };
    reply(
        conn,
        &GetReply {
            object_ids,
            objects,
            store_fds: store_fds.clone(),
            mmap_sizes,
        },
    )?;
    for key in store_fds {
        conn.send_segment(shared, key)?;
    }
    Ok(())
}
