//! The store's bookkeeping: objects, per-client references, the LRU, the
//! deletion cache, capacity accounting and eviction. Everything here runs
//! under the store's one mutex; nothing here blocks on a socket, copies object
//! bytes or touches the external store (that work is queued for [`crate::spill`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use offset_allocator::{Allocation, Allocator};
use tensor_ipc_plasma_protocol::{ObjectId, ObjectInfo, ObjectSpec, Status, notification};

use crate::external::{ExternalStore, StoredObject};
use crate::log;
use crate::notify::Subscriber;
use crate::segment::Segment;
use crate::spill::{ExternalIo, Restore, Spill};
use crate::writethrough::{Published, WRITE_THROUGH_CLIENT};

/// Allocation granularity and alignment of object data.
pub(crate) const ALIGNMENT: u64 = 64;

/// Identifies a client connection.
pub(crate) type ClientId = u64;

/// One object of a batch create: id, data size, metadata size.
pub(crate) type BatchItem = (ObjectId, u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjState {
    Created,
    Sealed,
    /// Sealed, chosen for eviction, its bytes being copied to the external store; still in
    /// memory and readable.
    Spilling,
    /// Only in the external store.
    Evicted,
    /// Being copied back from the external store into memory allocated for it.
    Restoring,
}

struct Entry {
    state: ObjState,
    alloc: Option<Allocation>,
    offset: u64,
    data_size: u64,
    metadata_size: u64,
    ref_count: u32,
    create_time: i64,
    construct_duration: i64,
    digest: Vec<u8>,
    lru_key: Option<u64>,
    /// The quota client whose private LRU and quota hold this object.
    owner: Option<ClientId>,
    /// Creation order, for demoting a quota client's oldest objects.
    create_seq: u64,
    /// The ticket of the spill or restore under way (`Spilling` and `Restoring` only).
    ticket: Option<u64>,
}

impl Entry {
    fn size(&self) -> u64 {
        self.data_size + self.metadata_size
    }
}

#[derive(Default)]
struct Client {
    objects: HashSet<ObjectId>,
    name: String,
    quota: Option<u64>,
    /// Bytes of resident objects charged to this client's quota.
    quota_used: u64,
    /// Objects charged to the quota, by creation order.
    owned: BTreeMap<u64, ObjectId>,
    /// The private LRU of a quota client: its unreferenced sealed objects.
    lru: BTreeMap<u64, ObjectId>,
}

/// A protocol violation the original store would abort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    /// The object does not exist.
    Unknown,
    /// The object is in the wrong state for the request.
    WrongState,
    /// The client does not hold the object.
    NotHeld,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The store state.
pub(crate) struct State {
    capacity: u64,
    allocated: u64,
    allocator: Allocator,
    segment: Arc<Segment>,
    objects: HashMap<ObjectId, Entry>,
    lru: BTreeMap<u64, ObjectId>,
    next_lru: u64,
    deletion_cache: HashSet<ObjectId>,
    clients: HashMap<ClientId, Client>,
    subscribers: HashMap<ClientId, Arc<Subscriber>>,
    external: Option<Arc<dyn ExternalStore>>,
    /// External-store work queued for the next request thread to do outside the lock.
    external_io: ExternalIo,
    /// Bytes of objects being spilled: freed once their copies are safe.
    spilling_bytes: u64,
    /// Allocations of objects deleted while being spilled or restored, freed when that
    /// work reports back (keyed by its ticket).
    doomed: HashMap<u64, Allocation>,
    next_ticket: u64,
    quota_total: u64,
    num_evictions: u64,
    bytes_evicted: u64,
    /// Where sealed objects are queued for the external store (`--write-through`).
    write_through: Option<std::sync::mpsc::Sender<Published>>,
}

impl State {
    /// A store of logical `capacity` bytes over `segment`, which must hold at
    /// least `capacity * 9 / 8` bytes so an object of exactly `capacity` fits.
    pub(crate) fn new(
        capacity: u64,
        segment: Arc<Segment>,
        external: Option<Arc<dyn ExternalStore>>,
    ) -> Self {
        let units = u32::try_from(segment.len() / ALIGNMENT).unwrap_or(u32::MAX);
        Self {
            capacity,
            allocated: 0,
            allocator: Allocator::with_max_allocs(units, crate::MAX_OBJECTS),
            segment,
            objects: HashMap::new(),
            lru: BTreeMap::new(),
            next_lru: 0,
            deletion_cache: HashSet::new(),
            clients: HashMap::new(),
            subscribers: HashMap::new(),
            external,
            external_io: ExternalIo::default(),
            spilling_bytes: 0,
            doomed: HashMap::new(),
            next_ticket: 0,
            quota_total: 0,
            num_evictions: 0,
            bytes_evicted: 0,
            write_through: None,
        }
    }

    /// The segment objects live in.
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// The logical capacity (`-m`).
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes of live objects.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> u64 {
        self.allocated
    }

    fn spec(&self, e: &Entry) -> ObjectSpec {
        ObjectSpec {
            segment_index: self.segment.key(),
            data_offset: e.offset,
            data_size: e.data_size,
            metadata_offset: e.offset + e.data_size,
            metadata_size: e.metadata_size,
            device_num: 0,
        }
    }

    fn client(&mut self, client: ClientId) -> &mut Client {
        self.clients.entry(client).or_default()
    }

    // ----- memory -----

    fn try_alloc(&mut self, size: u64) -> Option<(Allocation, u64)> {
        if self.allocated.checked_add(size)? > self.capacity {
            return None;
        }
        let units = u32::try_from(size.div_ceil(ALIGNMENT).max(1)).ok()?;
        let a = self.allocator.allocate(units)?;
        self.allocated += size;
        Some((a, u64::from(a.offset) * ALIGNMENT))
    }

    /// Allocates `size` bytes, evicting unused objects if allowed. `OutOfMemory` also when
    /// the room will exist once objects being spilled are copied out: the caller then runs
    /// [`crate::spill::run_external_io`] and tries again.
    fn allocate(&mut self, size: u64, evict_if_full: bool) -> Result<(Allocation, u64), Status> {
        loop {
            if let Some(a) = self.try_alloc(size) {
                return Ok(a);
            }
            let after_spills = self.allocated - self.spilling_bytes;
            if self.spilling_bytes > 0 && after_spills.saturating_add(size) <= self.capacity {
                return Err(Status::OutOfMemory);
            }
            if !evict_if_full || !self.require_space(size) {
                return Err(Status::OutOfMemory);
            }
        }
    }

    /// Evicts at least `max(needed, capacity / 5)` bytes from the LRU, as the
    /// original does; true if that freed (or is spilling) something and enough.
    fn require_space(&mut self, size: u64) -> bool {
        let in_use = self.allocated - self.spilling_bytes;
        let required = i128::from(in_use) + i128::from(size) - i128::from(self.capacity);
        let target = required.max(i128::from(self.capacity / 5));
        let freed = self.evict_lru(u64::try_from(target).unwrap_or(u64::MAX));
        freed > 0 && i128::from(freed) >= required
    }

    fn free_memory(&mut self, id: &ObjectId) {
        if let Some(e) = self.objects.get_mut(id)
            && let Some(a) = e.alloc.take()
        {
            let size = e.size();
            self.allocator.free(a);
            self.allocated -= size;
        }
    }

    // ----- LRU -----

    fn lru_push(&mut self, id: ObjectId) {
        let key = self.next_lru;
        self.next_lru += 1;
        self.lru_remove(&id);
        if let Some(e) = self.objects.get_mut(&id) {
            e.lru_key = Some(key);
            match e.owner.and_then(|c| self.clients.get_mut(&c)) {
                Some(c) => c.lru.insert(key, id),
                None => self.lru.insert(key, id),
            };
        }
    }

    fn lru_remove(&mut self, id: &ObjectId) {
        if let Some(e) = self.objects.get_mut(id)
            && let Some(key) = e.lru_key.take()
        {
            // Keys are unique across all LRUs, so removing from both is exact.
            self.lru.remove(&key);
            if let Some(c) = e.owner.and_then(|c| self.clients.get_mut(&c)) {
                c.lru.remove(&key);
            }
        }
    }

    /// Stops charging `id` to its quota client.
    fn disown(&mut self, id: &ObjectId) {
        let Some(e) = self.objects.get_mut(id) else {
            return;
        };
        let Some(owner) = e.owner.take() else {
            return;
        };
        let (size, seq, key) = (e.size(), e.create_seq, e.lru_key.take());
        if let Some(c) = self.clients.get_mut(&owner) {
            c.quota_used = c.quota_used.saturating_sub(size);
            c.owned.remove(&seq);
            if let Some(key) = key {
                c.lru.remove(&key);
                // It stays evictable, now globally.
                self.lru.insert(key, *id);
                if let Some(e) = self.objects.get_mut(id) {
                    e.lru_key = Some(key);
                }
            }
        }
    }

    /// Makes room within a quota client's quota before it creates `size`
    /// bytes: evicts its own least recently used objects, then demotes its
    /// oldest objects still in use to the global pool.
    fn enforce_quota(
        &mut self,
        client: ClientId,
        size: u64,
        evict_if_full: bool,
    ) -> Result<(), Status> {
        let Some(quota) = self.clients.get(&client).and_then(|c| c.quota) else {
            return Ok(());
        };
        if size > quota {
            return Err(Status::OutOfMemory);
        }
        loop {
            let Some(c) = self.clients.get_mut(&client) else {
                return Ok(());
            };
            if c.quota_used + size <= quota {
                return Ok(());
            }
            if !evict_if_full {
                return Err(Status::OutOfMemory);
            }
            if let Some((_, id)) = c.lru.pop_first() {
                if let Some(e) = self.objects.get_mut(&id) {
                    e.lru_key = None;
                }
                self.evict_one(id);
            } else if let Some((_, id)) = c.owned.first_key_value().map(|(k, v)| (*k, *v)) {
                self.disown(&id);
            } else {
                return Err(Status::OutOfMemory);
            }
        }
    }

    /// Evicts least recently released objects until `target` bytes are
    /// freed or the LRU is empty. Returns the bytes freed.
    fn evict_lru(&mut self, target: u64) -> u64 {
        let mut freed = 0u64;
        while freed < target {
            let Some((_, id)) = self.lru.pop_first() else {
                break;
            };
            if let Some(e) = self.objects.get_mut(&id) {
                e.lru_key = None;
            }
            freed = freed.saturating_add(self.evict_one(id));
        }
        freed
    }

    /// Evicts an unused sealed object: with an external store it starts spilling there (its
    /// memory is freed when the copy is safe), without one it is deleted. Returns its size.
    fn evict_one(&mut self, id: ObjectId) -> u64 {
        let Some(e) = self.objects.get(&id) else {
            return 0;
        };
        let size = e.size();
        let offset = e.offset;
        let object = StoredObject {
            data_size: e.data_size,
            metadata_size: e.metadata_size,
            digest: e.digest.clone(),
        };
        self.num_evictions += 1;
        self.bytes_evicted += size;
        self.disown(&id);
        if self.external.is_some() {
            let ticket = self.ticket();
            if let Some(e) = self.objects.get_mut(&id) {
                e.state = ObjState::Spilling;
                e.ticket = Some(ticket);
            }
            self.spilling_bytes += size;
            self.external_io.spills.push(Spill {
                id,
                ticket,
                offset,
                len: usize::try_from(size).unwrap_or(usize::MAX),
                object,
            });
            return size;
        }
        self.free_memory(&id);
        self.objects.remove(&id);
        self.deletion_cache.remove(&id);
        self.notify_deleted(id);
        size
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    // ----- external store -----

    /// The external store, for the thread that does the queued work.
    pub(crate) fn external(&self) -> Option<Arc<dyn ExternalStore>> {
        self.external.clone()
    }

    /// The queued external-store work, handed to the caller to do outside the lock.
    pub(crate) fn take_external_io(&mut self) -> ExternalIo {
        std::mem::take(&mut self.external_io)
    }

    /// Whether external-store work is queued or under way.
    pub(crate) fn external_io_pending(&self) -> bool {
        !self.external_io.is_empty() || self.spilling_bytes > 0
    }

    /// Reports a spill; true if it freed memory.
    pub(crate) fn finish_spill(&mut self, spill: Spill, result: std::io::Result<()>) -> bool {
        let size = spill.len as u64;
        self.spilling_bytes = self.spilling_bytes.saturating_sub(size);
        if let Some(alloc) = self.doomed.remove(&spill.ticket) {
            // Deleted while spilling: nothing to keep.
            self.release_allocation(alloc, size);
            if result.is_ok() {
                self.external_io.removals.push(spill.id);
            }
            return true;
        }
        let Some(e) = self
            .objects
            .get_mut(&spill.id)
            .filter(|e| e.ticket == Some(spill.ticket))
        else {
            return false;
        };
        e.ticket = None;
        match result {
            Ok(()) if e.ref_count == 0 => {
                e.state = ObjState::Evicted;
                self.free_memory(&spill.id);
                true
            }
            Ok(()) => {
                // Got again while it was being copied: it stays in memory.
                e.state = ObjState::Sealed;
                self.external_io.removals.push(spill.id);
                false
            }
            Err(err) => {
                e.state = ObjState::Sealed;
                let unused = e.ref_count == 0;
                log(&format!(
                    "spilling object {} ({size} bytes) to the external store failed: {err}; \
                     it stays in memory",
                    spill.id
                ));
                if unused && self.deletion_cache.contains(&spill.id) {
                    self.delete_now(spill.id);
                } else if unused {
                    self.lru_push(spill.id);
                }
                false
            }
        }
    }

    /// Reports a restore; true if the object is back.
    pub(crate) fn finish_restore(&mut self, restore: Restore, result: std::io::Result<()>) -> bool {
        let size = restore.len as u64;
        if let Some(alloc) = self.doomed.remove(&restore.ticket) {
            self.release_allocation(alloc, size);
            return false;
        }
        let Some(e) = self
            .objects
            .get_mut(&restore.id)
            .filter(|e| e.ticket == Some(restore.ticket))
        else {
            return false;
        };
        e.ticket = None;
        match result {
            Ok(()) => {
                e.state = ObjState::Sealed;
                // Most recently used: the get that asked for it takes it next.
                self.lru_push(restore.id);
                true
            }
            Err(err) => {
                log(&format!(
                    "restoring object {} from the external store failed: {err}; it is gone",
                    restore.id
                ));
                self.free_memory(&restore.id);
                self.objects.remove(&restore.id);
                self.deletion_cache.remove(&restore.id);
                self.notify_deleted(restore.id);
                false
            }
        }
    }

    fn release_allocation(&mut self, alloc: Allocation, size: u64) {
        self.allocator.free(alloc);
        self.allocated -= size;
    }

    // ----- notifications -----

    fn notify(&mut self, infos: &[ObjectInfo]) {
        if self.subscribers.is_empty() || infos.is_empty() {
            return;
        }
        let message = notification::encode(infos);
        let mut dead = Vec::new();
        for (client, sub) in &self.subscribers {
            if !sub.push(message.clone()) {
                dead.push(*client);
            }
        }
        for client in dead {
            if let Some(sub) = self.subscribers.remove(&client) {
                sub.close();
            }
        }
    }

    fn notify_deleted(&mut self, id: ObjectId) {
        self.notify(&[ObjectInfo {
            object_id: id,
            is_deletion: true,
            ..ObjectInfo::default()
        }]);
    }

    fn seal_info(id: ObjectId, e: &Entry) -> ObjectInfo {
        ObjectInfo {
            object_id: id,
            data_size: i64::try_from(e.data_size).unwrap_or(i64::MAX),
            metadata_size: i64::try_from(e.metadata_size).unwrap_or(i64::MAX),
            digest: e.digest.clone(),
            ..ObjectInfo::default()
        }
    }

    // ----- references -----

    fn add_ref(&mut self, client: ClientId, id: ObjectId) {
        if self.client(client).objects.insert(id) {
            let first = match self.objects.get_mut(&id) {
                Some(e) => {
                    e.ref_count += 1;
                    e.ref_count == 1
                }
                None => false,
            };
            if first {
                self.lru_remove(&id);
            }
        }
    }

    /// Drops `client`'s reference. Returns false if it held none.
    pub(crate) fn release(&mut self, client: ClientId, id: &ObjectId) -> bool {
        let held = self
            .clients
            .get_mut(&client)
            .is_some_and(|c| c.objects.remove(id));
        if !held {
            return false;
        }
        self.unref(*id);
        true
    }

    fn unref(&mut self, id: ObjectId) {
        let Some(e) = self.objects.get_mut(&id) else {
            return;
        };
        e.ref_count = e.ref_count.saturating_sub(1);
        if e.ref_count > 0 {
            return;
        }
        match e.state {
            // Nobody holds an unsealed object any more: it can never be
            // sealed by its creator, so it is aborted.
            ObjState::Created => self.erase(id),
            ObjState::Sealed | ObjState::Spilling if self.deletion_cache.contains(&id) => {
                self.delete_now(id)
            }
            ObjState::Sealed => self.lru_push(id),
            // Back to `Sealed` (and the LRU) when the spill reports.
            ObjState::Spilling => {}
            ObjState::Evicted | ObjState::Restoring => {}
        }
    }

    fn erase(&mut self, id: ObjectId) {
        self.lru_remove(&id);
        self.disown(&id);
        self.free_memory(&id);
        self.objects.remove(&id);
    }

    fn delete_now(&mut self, id: ObjectId) {
        let Some(e) = self.objects.get_mut(&id) else {
            return;
        };
        match (e.state, e.ticket) {
            (ObjState::Evicted, _) => self.external_io.removals.push(id),
            // Its memory is in use by the copy under way: freed when that reports back.
            (ObjState::Spilling | ObjState::Restoring, Some(ticket)) => {
                if let Some(alloc) = e.alloc.take() {
                    self.doomed.insert(ticket, alloc);
                }
            }
            _ => {}
        }
        self.erase(id);
        self.deletion_cache.remove(&id);
        self.notify_deleted(id);
    }

    // ----- requests -----

    /// Create: allocates an unsealed object held by `client`.
    pub(crate) fn create(
        &mut self,
        client: ClientId,
        id: ObjectId,
        data_size: u64,
        metadata_size: u64,
        device_num: i32,
        evict_if_full: bool,
    ) -> Result<ObjectSpec, Status> {
        if self.objects.contains_key(&id) {
            return Err(Status::ObjectExists);
        }
        if device_num != 0 {
            return Err(Status::OutOfMemory);
        }
        let size = data_size
            .checked_add(metadata_size)
            .ok_or(Status::OutOfMemory)?;
        self.enforce_quota(client, size, evict_if_full)?;
        let (alloc, offset) = self.allocate(size, evict_if_full)?;
        let create_seq = self.next_lru;
        self.next_lru += 1;
        let owner = match self.clients.get_mut(&client) {
            Some(c) if c.quota.is_some() => {
                c.quota_used += size;
                c.owned.insert(create_seq, id);
                Some(client)
            }
            _ => None,
        };
        let entry = Entry {
            state: ObjState::Created,
            alloc: Some(alloc),
            offset,
            data_size,
            metadata_size,
            ref_count: 0,
            create_time: now_secs(),
            construct_duration: -1,
            digest: Vec::new(),
            lru_key: None,
            owner,
            create_seq,
            ticket: None,
        };
        self.objects.insert(id, entry);
        self.add_ref(client, id);
        let e = &self.objects[&id];
        Ok(self.spec(e))
    }

    fn seal_quiet(&mut self, id: &ObjectId, digest: &[u8]) -> Result<ObjectInfo, Status> {
        let info = self.mark_sealed(id, digest)?;
        self.publish(id);
        Ok(info)
    }

    fn mark_sealed(&mut self, id: &ObjectId, digest: &[u8]) -> Result<ObjectInfo, Status> {
        let e = self.objects.get_mut(id).ok_or(Status::ObjectNotFound)?;
        if e.state != ObjState::Created {
            return Err(Status::ObjectExists);
        }
        e.state = ObjState::Sealed;
        e.digest = digest.to_vec();
        e.construct_duration = now_secs().saturating_sub(e.create_time);
        Ok(Self::seal_info(*id, e))
    }

    // ----- write-through -----

    /// Queues sealed objects for the external store from now on (`--write-through`).
    pub(crate) fn set_write_through(&mut self, jobs: std::sync::mpsc::Sender<Published>) {
        self.write_through = Some(jobs);
    }

    /// Pins a just-sealed object and queues it for the writer (with write-through on).
    fn publish(&mut self, id: &ObjectId) {
        let Some(jobs) = &self.write_through else {
            return;
        };
        let Some(e) = self.objects.get(id) else {
            return;
        };
        let job = Published {
            id: *id,
            offset: e.offset,
            len: usize::try_from(e.size()).unwrap_or(usize::MAX),
            object: StoredObject {
                data_size: e.data_size,
                metadata_size: e.metadata_size,
                digest: e.digest.clone(),
            },
        };
        if jobs.send(job).is_ok() {
            self.add_ref(WRITE_THROUGH_CLIENT, *id);
        }
    }

    /// Whether the external store is shared with other stores (`--write-through`).
    pub(crate) fn shares_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.shared())
    }

    /// Whether the store has any trace of `id` (in memory, unsealed, evicted...).
    pub(crate) fn knows(&self, id: &ObjectId) -> bool {
        self.objects.contains_key(id)
    }

    /// Seals an object fetched from the shared external store (not written through again)
    /// and drops `client`'s reference to it.
    pub(crate) fn seal_fetched(&mut self, client: ClientId, id: &ObjectId, digest: &[u8]) {
        if let Ok(info) = self.mark_sealed(id, digest) {
            self.notify(&[info]);
        }
        self.release(client, id);
    }

    /// Seal: marks a created object sealed and notifies subscribers.
    /// `ObjectNotFound` for an unknown id, `ObjectExists` if already sealed.
    pub(crate) fn seal(&mut self, id: &ObjectId, digest: &[u8]) -> Result<(), Status> {
        let info = self.seal_quiet(id, digest)?;
        self.notify(&[info]);
        Ok(())
    }

    /// Abort: frees an unsealed object its creator still holds.
    pub(crate) fn abort(&mut self, client: ClientId, id: &ObjectId) -> Result<(), Violation> {
        let e = self.objects.get(id).ok_or(Violation::Unknown)?;
        if e.state != ObjState::Created {
            return Err(Violation::WrongState);
        }
        if !self
            .clients
            .get_mut(&client)
            .is_some_and(|c| c.objects.remove(id))
        {
            return Err(Violation::NotHeld);
        }
        self.erase(*id);
        self.deletion_cache.remove(id);
        Ok(())
    }

    /// Get of one id: the spec (and a reference) if the object is sealed (or being
    /// spilled, still in memory). An evicted object starts its way back from the external
    /// store and is found once [`crate::spill::run_external_io`] brought it.
    pub(crate) fn get(&mut self, client: ClientId, id: &ObjectId) -> Option<ObjectSpec> {
        let state = self.objects.get(id)?.state;
        match state {
            ObjState::Created | ObjState::Restoring => return None,
            ObjState::Sealed | ObjState::Spilling => {}
            ObjState::Evicted => {
                self.begin_restore(id);
                return None;
            }
        }
        self.add_ref(client, *id);
        let e = &self.objects[id];
        Some(self.spec(e))
    }

    /// Allocates memory for an evicted object and queues its restore (if memory can be had
    /// now; otherwise a later get tries again).
    fn begin_restore(&mut self, id: &ObjectId) {
        let Some(size) = self.objects.get(id).map(Entry::size) else {
            return;
        };
        let Ok((alloc, offset)) = self.allocate(size, true) else {
            return;
        };
        let ticket = self.ticket();
        if let Some(e) = self.objects.get_mut(id) {
            e.alloc = Some(alloc);
            e.offset = offset;
            e.state = ObjState::Restoring;
            e.ticket = Some(ticket);
        }
        self.external_io.restores.push(Restore {
            id: *id,
            ticket,
            offset,
            len: usize::try_from(size).unwrap_or(usize::MAX),
        });
    }

    /// Delete: one status per id, deferring objects in use or unsealed.
    pub(crate) fn delete(&mut self, ids: &[ObjectId]) -> Vec<Status> {
        ids.iter()
            .map(|id| {
                let Some(e) = self.objects.get(id) else {
                    return Status::ObjectNotFound;
                };
                if e.state == ObjState::Created {
                    self.deletion_cache.insert(*id);
                    Status::ObjectNotSealed
                } else if e.ref_count > 0 {
                    self.deletion_cache.insert(*id);
                    Status::ObjectInUse
                } else {
                    self.delete_now(*id);
                    Status::Ok
                }
            })
            .collect()
    }

    /// Contains: sealed (or evicted to the external store).
    pub(crate) fn contains(&self, id: &ObjectId) -> bool {
        self.objects
            .get(id)
            .is_some_and(|e| e.state != ObjState::Created)
    }

    /// List: every object.
    pub(crate) fn list(&self) -> Vec<ObjectInfo> {
        self.objects
            .iter()
            .map(|(id, e)| ObjectInfo {
                object_id: *id,
                data_size: i64::try_from(e.data_size).unwrap_or(i64::MAX),
                metadata_size: i64::try_from(e.metadata_size).unwrap_or(i64::MAX),
                ref_count: i32::try_from(e.ref_count).unwrap_or(i32::MAX),
                create_time: e.create_time,
                construct_duration: e.construct_duration,
                digest: e.digest.clone(),
                is_deletion: false,
            })
            .collect()
    }

    /// Evict: frees at least `num_bytes` from the LRU if it can.
    pub(crate) fn evict(&mut self, num_bytes: u64) -> u64 {
        self.evict_lru(num_bytes)
    }

    /// RefreshLRU: moves evictable ids to most recently used.
    pub(crate) fn refresh_lru(&mut self, ids: &[ObjectId]) {
        for id in ids {
            if self.objects.get(id).is_some_and(|e| e.lru_key.is_some()) {
                self.lru_push(*id);
            }
        }
    }

    /// The first half of CreateAndSeal(Batch): creates every object (held by `client`,
    /// unsealed) or none. The caller copies the bytes in without the lock, then calls
    /// [`seal_created`](Self::seal_created).
    pub(crate) fn create_batch(
        &mut self,
        client: ClientId,
        items: &[BatchItem],
        evict_if_full: bool,
    ) -> Result<Vec<ObjectSpec>, Status> {
        let mut created: Vec<(ObjectId, ObjectSpec)> = Vec::with_capacity(items.len());
        for &(id, data_size, metadata_size) in items {
            match self.create(client, id, data_size, metadata_size, 0, evict_if_full) {
                Ok(spec) => created.push((id, spec)),
                Err(status) => {
                    for (done, _) in &created {
                        let _ = self.abort(client, done);
                    }
                    return Err(status);
                }
            }
        }
        Ok(created.into_iter().map(|(_, spec)| spec).collect())
    }

    /// The second half of CreateAndSeal(Batch): seals the objects `create_batch` made (one
    /// notification for all) and drops the creator's references.
    pub(crate) fn seal_created(&mut self, client: ClientId, sealed: &[(ObjectId, &[u8])]) {
        let infos: Vec<ObjectInfo> = sealed
            .iter()
            .filter_map(|(id, digest)| self.seal_quiet(id, digest).ok())
            .collect();
        self.notify(&infos);
        for (id, _) in sealed {
            self.release(client, id);
        }
    }

    /// Subscribe: registers `sub` and replays every sealed object. Returns
    /// false (and registers nothing) if `client` already subscribed.
    pub(crate) fn subscribe(&mut self, client: ClientId, sub: Arc<Subscriber>) -> bool {
        if self.subscribers.contains_key(&client) {
            return false;
        }
        for (id, e) in &self.objects {
            if e.state == ObjState::Sealed
                && !sub.push(notification::encode(&[Self::seal_info(*id, e)]))
            {
                return false;
            }
        }
        self.subscribers.insert(client, sub);
        true
    }

    /// SetOptions: names the client and grants a quota if it fits.
    pub(crate) fn set_options(&mut self, client: ClientId, name: String, quota: i64) -> Status {
        let capacity = self.capacity;
        let quota_total = self.quota_total;
        let c = self.client(client);
        c.name = name;
        let Ok(quota) = u64::try_from(quota) else {
            return Status::OutOfMemory;
        };
        let remaining = i128::from(capacity) - i128::from(quota_total) - i128::from(quota);
        if c.quota.is_some() || remaining * 10 < i128::from(capacity) * 3 {
            return Status::OutOfMemory;
        }
        c.quota = Some(quota);
        self.quota_total += quota;
        Status::Ok
    }

    /// Cleanup when a client goes away.
    pub(crate) fn disconnect(&mut self, client: ClientId) {
        if let Some(sub) = self.subscribers.remove(&client) {
            sub.close();
        }
        let Some(c) = self.clients.remove(&client) else {
            return;
        };
        if let Some(q) = c.quota {
            self.quota_total -= q;
        }
        // A quota client's objects go back to the global pool, in LRU order.
        for id in c.owned.values() {
            if let Some(e) = self.objects.get_mut(id) {
                e.owner = None;
            }
        }
        self.lru.extend(c.lru);
        for id in c.objects {
            self.unref(id);
        }
    }

    /// GetDebugString: a summary in the spirit of the original's.
    pub(crate) fn debug_string(&self) -> String {
        let mut s = String::new();
        let with_quota = self.clients.values().filter(|c| c.quota.is_some()).count();
        let lru_capacity = self.capacity - self.quota_total;
        let lru_bytes: u64 = self
            .lru
            .values()
            .filter_map(|id| self.objects.get(id))
            .map(Entry::size)
            .sum();
        let pinned: u64 = self
            .objects
            .values()
            .filter(|e| e.ref_count > 0 && e.alloc.is_some())
            .map(Entry::size)
            .sum();
        let _ = writeln!(s, "num clients with quota: {with_quota}");
        let _ = writeln!(s, "quota map size: 0");
        let _ = writeln!(s, "pinned quota map size: 0");
        let _ = writeln!(s, "allocated bytes: {}", self.allocated);
        let _ = writeln!(s, "allocation limit: {}", self.capacity);
        let _ = writeln!(s, "pinned bytes: {pinned}");
        let _ = writeln!(s, "(global lru) capacity: {lru_capacity}");
        let used = (lru_bytes * 100).checked_div(lru_capacity).unwrap_or(0);
        let _ = writeln!(s, "(global lru) used: {used}%");
        let _ = writeln!(s, "(global lru) num objects: {}", self.lru.len());
        let _ = writeln!(s, "(global lru) num evictions: {}", self.num_evictions);
        let _ = writeln!(s, "(global lru) bytes evicted: {}", self.bytes_evicted);
        for c in self.clients.values() {
            if let Some(q) = c.quota {
                let _ = writeln!(s, "({}) capacity: {q}", c.name);
                let used = (c.quota_used * 100).checked_div(q).unwrap_or(0);
                let _ = writeln!(s, "({}) used: {used}%", c.name);
                let _ = writeln!(s, "({}) num objects: {}", c.name, c.lru.len());
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::HashTableStore;

    fn state(capacity: u64, external: bool) -> State {
        let seg = Arc::new(Segment::create(crate::arena_len(capacity), None, false).unwrap());
        let ext: Option<Arc<dyn ExternalStore>> =
            external.then(|| Arc::new(HashTableStore::default()) as Arc<dyn ExternalStore>);
        State::new(capacity, seg, ext)
    }

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 20])
    }

    /// Creates, seals and releases an object of `size` bytes.
    fn put_released(st: &mut State, n: u8, size: u64) {
        st.create(1, id(n), size, 0, 0, true).unwrap();
        st.seal(&id(n), &[0; 8]).unwrap();
        assert!(st.release(1, &id(n)));
    }

    #[test]
    fn eviction_frees_at_least_a_fifth() {
        let mut st = state(1000, false);
        for n in 1..=4 {
            put_released(&mut st, n, 100);
        }
        // Needs 100 more bytes, but frees max(100, 1000/5) = 200: two objects.
        st.create(2, id(9), 700, 0, 0, true).unwrap();
        assert!(!st.contains(&id(1)) && !st.contains(&id(2)));
        assert!(st.contains(&id(3)) && st.contains(&id(4)));
        assert_eq!(st.allocated(), 900);
    }

    #[test]
    fn hopeless_create_evicts_and_fails() {
        let mut st = state(1000, false);
        put_released(&mut st, 1, 100);
        assert_eq!(
            st.create(2, id(9), 5000, 0, 0, true),
            Err(Status::OutOfMemory)
        );
        assert!(!st.contains(&id(1)));
        assert!(!st.objects.contains_key(&id(9)));
        assert_eq!(st.allocated(), 0);
    }

    #[test]
    fn no_eviction_without_evict_if_full() {
        let mut st = state(1000, false);
        put_released(&mut st, 1, 600);
        assert_eq!(
            st.create(2, id(9), 600, 0, 0, false),
            Err(Status::OutOfMemory)
        );
        assert!(st.contains(&id(1)));
    }

    #[test]
    fn references_are_per_client() {
        let mut st = state(1000, false);
        st.create(1, id(1), 10, 0, 0, true).unwrap();
        st.seal(&id(1), &[0; 8]).unwrap();
        assert!(st.get(2, &id(1)).is_some());
        assert!(st.get(2, &id(1)).is_some());
        assert_eq!(st.list()[0].ref_count, 2);
        assert!(st.release(2, &id(1)));
        assert!(!st.release(2, &id(1)), "a second release is not held");
        assert_eq!(st.evict(1000), 0, "still held by its creator");
        assert!(st.release(1, &id(1)));
        assert_eq!(st.evict(1), 10);
    }

    #[test]
    fn releasing_an_unsealed_object_aborts_it() {
        let mut st = state(1000, false);
        st.create(1, id(1), 10, 0, 0, true).unwrap();
        assert!(st.release(1, &id(1)));
        assert!(st.list().is_empty());
        assert_eq!(st.allocated(), 0);
    }

    #[test]
    fn abort_rules() {
        let mut st = state(1000, false);
        st.create(1, id(1), 10, 0, 0, true).unwrap();
        assert_eq!(st.abort(2, &id(1)), Err(Violation::NotHeld));
        assert_eq!(st.abort(1, &id(2)), Err(Violation::Unknown));
        assert_eq!(st.delete(&[id(1)]), vec![Status::ObjectNotSealed]);
        assert_eq!(st.abort(1, &id(1)), Ok(()));
        assert!(st.deletion_cache.is_empty());
        put_released(&mut st, 3, 1);
        assert_eq!(st.abort(1, &id(3)), Err(Violation::WrongState));
    }

    #[test]
    fn batch_is_all_or_nothing() {
        let mut st = state(1000, false);
        put_released(&mut st, 2, 1);
        let items = [(id(1), 1, 0), (id(2), 1, 0)];
        assert_eq!(st.create_batch(1, &items, true), Err(Status::ObjectExists));
        assert!(!st.objects.contains_key(&id(1)));
        let items = [(id(4), 3, 1), (id(5), 0, 0)];
        let specs = st.create_batch(1, &items, true).unwrap();
        assert_eq!(specs.len(), 2);
        // Created, not yet visible.
        assert!(!st.contains(&id(4)));
        st.seal_created(1, &[(id(4), &[0; 8]), (id(5), &[0; 8])]);
        assert!(st.contains(&id(4)) && st.contains(&id(5)));
        // Not held by the creator any more: evictable.
        assert_eq!(st.evict(u64::MAX), 1 + 4);
    }

    /// Does the queued external-store work as `spill::run_external_io` does, inline.
    fn run_io(st: &mut State) {
        let external = st.external().unwrap();
        let work = st.take_external_io();
        for id in &work.removals {
            external.remove(id);
        }
        for spill in work.spills {
            let bytes = st.segment.read(spill.offset, spill.len);
            let result = external.put(&spill.id, &bytes, &spill.object);
            st.finish_spill(spill, result);
        }
        for restore in work.restores {
            let bytes = external.take(&restore.id).unwrap();
            st.segment.write(restore.offset, &bytes);
            st.finish_restore(restore, Ok(()));
        }
    }

    #[test]
    fn external_store_roundtrip() {
        let mut st = state(1000, true);
        let spec = st.create(1, id(1), 600, 2, 0, true).unwrap();
        st.segment.write(spec.data_offset, &[9; 600]);
        st.segment.write(spec.metadata_offset, b"md");
        st.seal(&id(1), &[0; 8]).unwrap();
        assert!(st.release(1, &id(1)));
        // No room until object 1 is spilled: that work is queued, not done under the lock.
        assert_eq!(
            st.create(1, id(2), 600, 0, 0, true),
            Err(Status::OutOfMemory)
        );
        assert!(st.external_io_pending());
        run_io(&mut st);
        assert!(!st.external_io_pending());
        st.create(1, id(2), 600, 0, 0, true).unwrap();
        st.seal(&id(2), &[0; 8]).unwrap();
        assert!(st.release(1, &id(2)));
        // Object 1 was spilled, not deleted.
        assert!(st.contains(&id(1)));
        assert_eq!(st.allocated(), 600);
        // A get starts its restore, which first needs object 2 spilled in turn.
        assert!(st.get(3, &id(1)).is_none());
        run_io(&mut st);
        assert!(st.get(3, &id(1)).is_none());
        run_io(&mut st);
        let back = st.get(3, &id(1)).unwrap();
        assert!(st.contains(&id(2)));
        assert_eq!(st.allocated(), 602);
        assert_eq!(st.segment.read(back.data_offset, 600), vec![9; 600]);
        assert_eq!(st.segment.read(back.metadata_offset, 2), b"md");
    }

    /// An external store that refuses every write.
    struct Broken;

    impl ExternalStore for Broken {
        fn put(&self, _: &ObjectId, _: &[u8], _: &StoredObject) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
        fn take(&self, _: &ObjectId) -> std::io::Result<Vec<u8>> {
            Err(std::io::ErrorKind::NotFound.into())
        }
        fn remove(&self, _: &ObjectId) {}
    }

    #[test]
    fn a_failed_spill_keeps_the_object() {
        let seg = Arc::new(Segment::create(crate::arena_len(1000), None, false).unwrap());
        let mut st = State::new(1000, seg, Some(Arc::new(Broken)));
        put_released(&mut st, 1, 600);
        assert_eq!(
            st.create(1, id(2), 600, 0, 0, true),
            Err(Status::OutOfMemory)
        );
        run_io(&mut st);
        // Still there, still sealed, evictable again later; the create was refused.
        assert!(st.contains(&id(1)));
        assert!(st.get(4, &id(1)).is_some());
        assert_eq!(st.allocated(), 600);
        assert!(!st.external_io_pending());
    }

    #[test]
    fn write_through_pins_sealed_objects_until_written() {
        let mut st = state(1000, true);
        let (queue, jobs) = std::sync::mpsc::channel();
        st.set_write_through(queue);
        put_released(&mut st, 1, 600);
        let job = jobs.try_recv().unwrap();
        assert_eq!((job.id, job.len, job.object.data_size), (id(1), 600, 600));
        // Pinned while it is written: not evictable, a delete waits.
        assert_eq!(st.evict(u64::MAX), 0);
        assert_eq!(st.delete(&[id(1)]), [Status::ObjectInUse]);
        assert!(st.release(WRITE_THROUGH_CLIENT, &id(1)));
        assert!(!st.contains(&id(1)), "deleted once written");
        // An object fetched from the shared store is not written through again.
        st.create(WRITE_THROUGH_CLIENT, id(2), 10, 0, 0, true)
            .unwrap();
        st.seal_fetched(WRITE_THROUGH_CLIENT, &id(2), &[5; 8]);
        assert!(jobs.try_recv().is_err());
        assert!(st.contains(&id(2)));
        assert_eq!(st.evict(u64::MAX), 10, "unpinned: evictable");
    }

    #[test]
    fn deleting_a_spilling_object_frees_it_when_the_spill_reports() {
        let mut st = state(1000, true);
        put_released(&mut st, 1, 600);
        assert_eq!(
            st.create(1, id(2), 600, 0, 0, true),
            Err(Status::OutOfMemory)
        );
        assert_eq!(st.delete(&[id(1)]), vec![Status::Ok]);
        assert!(!st.contains(&id(1)));
        assert_eq!(st.allocated(), 600, "its memory is still being copied");
        run_io(&mut st);
        assert_eq!(st.allocated(), 0);
        // The copy the spill made is queued for removal.
        let work = st.take_external_io();
        assert_eq!(work.removals, vec![id(1)]);
    }

    #[test]
    fn quota_rules() {
        let mut st = state(1000, false);
        assert_eq!(st.set_options(1, "a".into(), 100), Status::Ok);
        assert_eq!(st.set_options(1, "a".into(), 100), Status::OutOfMemory);
        assert_eq!(st.set_options(2, "b".into(), 800), Status::OutOfMemory);
        assert_eq!(st.set_options(3, "c".into(), -1), Status::OutOfMemory);
        assert_eq!(
            st.create(1, id(1), 101, 0, 0, true),
            Err(Status::OutOfMemory)
        );
        assert!(st.debug_string().contains("(a) capacity: 100"));
        st.disconnect(1);
        assert_eq!(st.set_options(2, "b".into(), 700), Status::Ok);
    }

    #[test]
    fn quota_objects_use_a_private_lru() {
        let mut st = state(1000, false);
        assert_eq!(st.set_options(1, "q".into(), 300), Status::Ok);
        // A global object and two quota objects, all released.
        st.create(2, id(1), 100, 0, 0, true).unwrap();
        st.seal(&id(1), &[0; 8]).unwrap();
        st.release(2, &id(1));
        put_released(&mut st, 2, 100);
        put_released(&mut st, 3, 100);
        // Global eviction does not touch the quota client's objects.
        assert_eq!(st.evict(u64::MAX), 100);
        assert!(st.contains(&id(2)) && st.contains(&id(3)));
        // A quota create that does not fit its quota evicts its own oldest.
        st.create(1, id(4), 150, 0, 0, true).unwrap();
        assert!(!st.contains(&id(2)) && st.contains(&id(3)));
        // Without evict_if_full it fails instead.
        assert_eq!(
            st.create(1, id(5), 100, 0, 0, false),
            Err(Status::OutOfMemory)
        );
        // An object still in use is demoted to the global pool, not evicted.
        assert!(st.get(7, &id(3)).is_some());
        st.seal(&id(4), &[0; 8]).unwrap();
        assert!(st.get(7, &id(4)).is_some());
        st.create(1, id(6), 300, 0, 0, true).unwrap();
        assert!(st.contains(&id(3)) && st.contains(&id(4)));
        assert!(st.release(7, &id(3)));
        assert_eq!(st.evict(1), 100, "demoted object is globally evictable");
        // On disconnect its objects join the global LRU.
        st.seal(&id(6), &[0; 8]).unwrap();
        st.release(1, &id(6));
        st.disconnect(1);
        assert_eq!(st.evict(u64::MAX), 300);
        assert!(st.release(7, &id(4)));
        assert_eq!(st.evict(u64::MAX), 150);
        assert_eq!(st.allocated(), 0);
    }
}
