//! One function per request: what the store does for it and what it answers.
//!
//! Each takes the state lock only for bookkeeping. Object bytes (inline data of
//! CreateAndSeal) are copied into the segment, and the external store is written and read,
//! with the lock released.
//!
//! On a connection served by the event loop ([`Conn::may_block`] false) nothing may wait: a
//! request that would (a Get for objects not ready, a create that needs spills to finish, a
//! Subscribe whose fd has not arrived) returns [`End::Blocked`] before changing anything and
//! runs again on a thread of its own; external-store work it queued goes to the
//! external-store thread.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{AnyRequest, ObjectId, ObjectSpec, Status};

use crate::conn::Conn;
use crate::log;
use crate::notify::Subscriber;
use crate::server::{End, Shared};
use crate::spill::run_external_io;
use crate::state::{BatchItem, ClientId};
use crate::writethrough::fetch_missing;

/// Serves one request of the connection's client.
pub(crate) fn handle(shared: &Shared, conn: &mut Conn, request: AnyRequest) -> Result<(), End> {
    use AnyRequest as R;
    let client = conn.client;
    match request {
        R::Connect(_) => connect(shared, conn),
        R::Create(r) => create(shared, conn, client, r),
        R::CreateAndSeal(r) => create_and_seal(shared, conn, r),
        R::CreateAndSealBatch(r) => create_and_seal_batch(shared, conn, r),
        R::Abort(r) => abort(shared, conn, client, r),
        R::Seal(r) => seal(shared, conn, r),
        R::Get(r) => get(shared, conn, client, r),
        R::Release(r) => {
            release(shared, client, r);
            Ok(())
        }
        R::Delete(r) => {
            let errors = shared.lock().delete(&r.object_ids);
            shared.external_io(conn);
            reply(
                conn,
                &DeleteReply {
                    object_ids: r.object_ids,
                    errors,
                },
            )
        }
        R::Contains(r) => contains(shared, conn, r),
        R::List(_) => {
            let objects = shared.lock().list();
            reply(conn, &ListReply { objects })
        }
        R::Evict(r) => {
            let num_bytes = shared.lock().evict(r.num_bytes);
            shared.external_io(conn);
            reply(conn, &EvictReply { num_bytes })
        }
        R::RefreshLru(r) => {
            shared.lock().refresh_lru(&r.object_ids);
            reply(conn, &RefreshLruReply)
        }
        R::Subscribe(r) => subscribe(shared, conn, client, r),
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

fn reply<M: tensor_ipc_plasma_protocol::Message>(conn: &mut Conn, m: &M) -> Result<(), End> {
    conn.send(m)?;
    Ok(())
}

/// The request must wait: it runs again on a thread of its own.
fn blocked(request: impl Into<AnyRequest>) -> End {
    End::Blocked(Box::new(request.into()))
}

/// A digest must be 8 bytes (the original store aborts on anything else).
fn check_digest(digest: &[u8]) -> Result<(), End> {
    if digest.len() == 8 {
        return Ok(());
    }
    Err(End::Violation(format!("digest of {} bytes", digest.len())))
}

fn connect(shared: &Shared, conn: &mut Conn) -> Result<(), End> {
    let capacity = shared.lock().capacity();
    reply(
        conn,
        &ConnectReply {
            memory_capacity: i64::try_from(capacity).unwrap_or(i64::MAX),
        },
    )
}

fn create(shared: &Shared, conn: &mut Conn, client: ClientId, r: CreateRequest) -> Result<(), End> {
    let result = shared.with_space(conn.may_block(), |state| {
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
        Err(None) => Err(blocked(r)),
        Err(Some(error)) => reply(
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
/// seals them. `None` when that must wait for spills (on a connection that may not).
fn create_inline(
    shared: &Shared,
    conn: &Conn,
    objects: &[Inline<'_>],
    evict_if_full: bool,
) -> Option<Status> {
    let client = conn.client;
    let sizes: Vec<BatchItem> = objects
        .iter()
        .map(|(id, data, metadata, _)| (*id, data.len() as u64, metadata.len() as u64))
        .collect();
    let created = shared.with_space(conn.may_block(), |state| {
        Ok((
            state.create_batch(client, &sizes, evict_if_full)?,
            state.segment().clone(),
        ))
    });
    let (specs, segment) = match created {
        Ok(created) => created,
        Err(None) => return None,
        Err(Some(status)) => return Some(status),
    };
    // The objects are unsealed and held by this connection only: nobody else sees them.
    for (spec, (_, data, metadata, _)) in specs.iter().zip(objects) {
        segment.write(spec.data_offset, data);
        segment.write(spec.metadata_offset, metadata);
    }
    let sealed: Vec<(ObjectId, &[u8])> = objects.iter().map(|(id, _, _, d)| (*id, *d)).collect();
    shared.lock().seal_created(client, &sealed);
    shared.wake_waiters();
    Some(Status::Ok)
}

fn create_and_seal(shared: &Shared, conn: &mut Conn, r: CreateAndSealRequest) -> Result<(), End> {
    check_digest(&r.digest)?;
    let object = (r.object_id, &r.data[..], &r.metadata[..], &r.digest[..]);
    match create_inline(shared, conn, &[object], r.evict_if_full) {
        Some(error) => reply(conn, &CreateAndSealReply { error }),
        None => Err(blocked(r)),
    }
}

fn create_and_seal_batch(
    shared: &Shared,
    conn: &mut Conn,
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
    match create_inline(shared, conn, &objects, r.evict_if_full) {
        Some(error) => reply(conn, &CreateAndSealBatchReply { error }),
        None => Err(blocked(r)),
    }
}

fn abort(shared: &Shared, conn: &mut Conn, client: ClientId, r: AbortRequest) -> Result<(), End> {
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

fn seal(shared: &Shared, conn: &mut Conn, r: SealRequest) -> Result<(), End> {
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

fn subscribe(
    shared: &Shared,
    conn: &mut Conn,
    client: ClientId,
    r: SubscribeRequest,
) -> Result<(), End> {
    let fd = match conn.recv_fd() {
        Ok(Some(fd)) => fd,
        Ok(None) => return Err(blocked(r)),
        Err(e) => return Err(End::Violation(format!("subscribe: {e}"))),
    };
    let budget = shared.lock().notification_budget();
    let sub = Subscriber::start(client, fd, budget);
    if !shared.lock().subscribe(client, Arc::clone(&sub)) {
        // A second subscription: its socket is closed, the first stays.
        sub.close();
    }
    Ok(())
}

/// Contains: sealed, or evicted to the external store and still there (checked without the
/// lock; an object whose copy is missing is dropped and answered not contained).
fn contains(shared: &Shared, conn: &mut Conn, r: ContainsRequest) -> Result<(), End> {
    let (mut has_object, spilled, external) = {
        let state = shared.lock();
        let id = &r.object_id;
        (
            state.contains(id),
            state.spilled_ticket(id),
            state.external(),
        )
    };
    if let (Some(ticket), Some(external)) = (spilled, external) {
        if !conn.may_block() {
            return Err(blocked(r));
        }
        if !external.contains(&r.object_id, ticket) {
            let mut state = shared.lock();
            state.lose(&r.object_id, ticket);
            has_object = state.contains(&r.object_id);
            drop(state);
            shared.external_io(conn);
        }
    }
    reply(
        conn,
        &ContainsReply {
            object_id: r.object_id,
            has_object,
        },
    )
}

/// How often a waiting Get looks for its missing objects in a shared external store.
const EXTERNAL_LOOK_PERIOD: Duration = Duration::from_secs(1);

/// Longest a waiting Get sleeps before checking whether its client hung up.
const HANGUP_POLL: Duration = Duration::from_millis(100);

fn get(shared: &Shared, conn: &mut Conn, client: ClientId, r: GetRequest) -> Result<(), End> {
    let mut distinct: Vec<ObjectId> = Vec::new();
    let mut seen = HashSet::new();
    for id in &r.object_ids {
        if seen.insert(*id) {
            distinct.push(*id);
        }
    }
    let mut found: HashMap<ObjectId, ObjectSpec> = HashMap::new();
    let mut state = shared.lock();
    if !conn.may_block() && !state.answerable_now(&distinct, r.timeout_ms == 0) {
        drop(state);
        return Err(blocked(r));
    }
    let GetRequest {
        object_ids,
        timeout_ms,
    } = r;
    let deadline = (timeout_ms > 0).then(|| {
        Instant::now()
            + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX).min(1 << 40))
    });
    // Ids seen in the external store: one that then disappears could not be restored (or
    // was deleted) and is answered not found at once, however long the timeout.
    let mut spilled: HashSet<ObjectId> = HashSet::new();
    let mut next_look = Instant::now();
    loop {
        let mut lost = 0;
        for id in &distinct {
            if found.contains_key(id) {
                continue;
            }
            if let Some(spec) = state.get(client, id) {
                found.insert(*id, spec);
            } else if state.is_spilled(id) {
                spilled.insert(*id);
            } else if state.is_lost(id) || (spilled.contains(id) && !state.knows(id)) {
                lost += 1;
            }
        }
        if found.len() + lost == distinct.len() {
            break;
        }
        if !conn.may_block() {
            // Answerable now (checked above): the missing ones are unknown, timeout 0.
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
