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
use crate::notify::{Budget, Notification, Subscriber};
use crate::segment::Segment;
use crate::spill::{ExternalIo, Restore, Spill};
use crate::writethrough::{Published, WRITE_THROUGH_CLIENT};
use crate::{RateLimitedLog, log};

/// Most ids of objects lost from the external store remembered (see `State::is_lost`).
const MAX_LOST: usize = 1 << 16;

/// Sealed objects per notification message when a new subscriber is told of them.
const REPLAY_BATCH: usize = 1024;

/// Allocation granularity and alignment of object data.
pub(crate) const ALIGNMENT: u64 = 64;

/// Identifies a client connection.
pub(crate) type ClientId = u64;

/// One object of a batch create: id, data size, metadata size.
pub(crate) type BatchItem = (ObjectId, u64, u64);

/// Whether an eviction may drop objects spilled long ago from a full bounded external store
/// to make room there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MayDrop {
    Yes,
    No,
}

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
    /// The ticket of the spill or restore under way (`Spilling` and `Restoring`), or of the
    /// spill that put it in the external store (`Evicted`).
    ticket: Option<u64>,
    /// Its key in the order of spilled objects (`Evicted` only).
    spill_seq: u64,
    /// A copy that may be left in the external store: the object came back from there, and
    /// the copy's removal can fail (a read-only directory). Removed again when the object is
    /// deleted, so a restart does not bring back an object deleted since.
    stale_copy: Option<u64>,
}

impl Entry {
    fn size(&self) -> u64 {
        self.data_size + self.metadata_size
    }

    /// What an external copy keeps with its bytes.
    fn stored(&self) -> StoredObject {
        StoredObject {
            data_size: self.data_size,
            metadata_size: self.metadata_size,
            digest: self.digest.clone(),
            create_time: self.create_time,
            construct_duration: self.construct_duration,
        }
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
    /// The memory all subscribers' queues share.
    notification_budget: Arc<Budget>,
    external: Option<Arc<dyn ExternalStore>>,
    /// External-store work queued for the next request thread to do outside the lock.
    external_io: ExternalIo,
    /// Bytes of objects being spilled: freed once their copies are safe.
    spilling_bytes: u64,
    /// Bytes of objects in the external store or on their way there, against its limit.
    external_bytes: u64,
    /// The evicted objects (only in the external store), oldest spill first: the first
    /// dropped when the external store is full.
    spilled: BTreeMap<u64, ObjectId>,
    /// Log lines of failed spills, at most one a second.
    spill_failures: RateLimitedLog,
    /// Objects lost from the external store (their copy missing or unreadable), newest
    /// last: a Get of one answers not found at once, however long its timeout, until an
    /// object with that id is created again. At most [`MAX_LOST`] are remembered.
    lost: HashSet<ObjectId>,
    lost_order: std::collections::VecDeque<ObjectId>,
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
        let mut state = Self {
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
            notification_budget: Budget::new(crate::DEFAULT_NOTIFICATION_MEMORY),
            external,
            external_io: ExternalIo::default(),
            spilling_bytes: 0,
            external_bytes: 0,
            spilled: BTreeMap::new(),
            spill_failures: RateLimitedLog::default(),
            lost: HashSet::new(),
            lost_order: std::collections::VecDeque::new(),
            doomed: HashMap::new(),
            next_ticket: 0,
            quota_total: 0,
            num_evictions: 0,
            bytes_evicted: 0,
            write_through: None,
        };
        state.recover_spilled();
        state
    }

    /// Takes back the objects the external store held when the store started (a `file://`
    /// directory after a restart) as evicted objects.
    fn recover_spilled(&mut self) {
        let Some(external) = self.external.clone() else {
            return;
        };
        let recovered = external.recover();
        if recovered.is_empty() {
            return;
        }
        let (count, mut bytes) = (recovered.len(), 0u64);
        for (id, copy, object) in recovered {
            // Later spills are numbered above the copies already there.
            self.next_ticket = self.next_ticket.max(copy);
            let ticket = copy;
            let seq = self.next_lru;
            self.next_lru += 1;
            bytes = bytes.saturating_add(object.size());
            self.external_bytes = self.external_bytes.saturating_add(object.size());
            self.spilled.insert(seq, id);
            self.objects.insert(
                id,
                Entry {
                    state: ObjState::Evicted,
                    alloc: None,
                    offset: 0,
                    data_size: object.data_size,
                    metadata_size: object.metadata_size,
                    ref_count: 0,
                    create_time: object.create_time,
                    construct_duration: object.construct_duration,
                    digest: object.digest.clone(),
                    lru_key: None,
                    owner: None,
                    create_seq: seq,
                    ticket: Some(ticket),
                    spill_seq: seq,
                    stale_copy: None,
                },
            );
        }
        log(&format!(
            "{}: {count} objects ({bytes} bytes) spilled by a previous run are back",
            external.name()
        ));
        // A smaller limit than the last run's drops the oldest.
        self.make_external_room(0);
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

    /// Evicts what `size` needs and, as the original does, ideally up to a fifth of the
    /// capacity; true if that freed (or is spilling) something and enough. Only what is
    /// needed may push older objects out of a full bounded external store: the rest of the
    /// fifth is evicted only while it fits there as it is.
    fn require_space(&mut self, size: u64) -> bool {
        let in_use = self.allocated - self.spilling_bytes;
        let required = i128::from(in_use) + i128::from(size) - i128::from(self.capacity);
        let needed = u64::try_from(required).unwrap_or(0);
        let mut freed = self.evict_lru(needed, MayDrop::Yes);
        let ideal = needed.max(self.capacity / 5);
        freed = freed.saturating_add(self.evict_lru(ideal.saturating_sub(freed), MayDrop::No));
        if freed == 0 {
            // Fragmented, with a full external store: the room must come from somewhere.
            freed = self.evict_lru(size, MayDrop::Yes);
        }
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

    /// Evicts least recently released objects until `target` bytes are freed or the LRU is
    /// empty (or, with [`MayDrop::No`], until the next would not fit in the external store
    /// without dropping an older one). Returns the bytes freed.
    fn evict_lru(&mut self, target: u64, may_drop: MayDrop) -> u64 {
        let mut freed = 0u64;
        while freed < target {
            let Some((&key, &id)) = self.lru.first_key_value() else {
                break;
            };
            let size = self.objects.get(&id).map_or(0, Entry::size);
            if may_drop == MayDrop::No && !self.external_has_room(size) {
                break;
            }
            self.lru.remove(&key);
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
        let object = e.stored();
        self.num_evictions += 1;
        self.bytes_evicted += size;
        self.disown(&id);
        if self.external.is_some() && self.make_external_room(size) {
            let ticket = self.ticket();
            if let Some(e) = self.objects.get_mut(&id) {
                e.state = ObjState::Spilling;
                e.ticket = Some(ticket);
                if let Some(old) = e.stale_copy.take() {
                    self.external_io.removals.push((id, old));
                }
            }
            self.spilling_bytes += size;
            self.external_bytes += size;
            self.external_io.spills.push(Spill {
                id,
                ticket,
                offset,
                len: usize::try_from(size).unwrap_or(usize::MAX),
                object,
            });
            return size;
        }
        self.erase(id);
        self.deletion_cache.remove(&id);
        self.notify_deleted(id);
        size
    }

    /// Whether `size` more bytes fit in the external store as it is (always, without a
    /// bounded one).
    fn external_has_room(&self, size: u64) -> bool {
        match self.external.as_ref().and_then(|x| x.limit()) {
            Some(limit) => self.external_bytes.saturating_add(size) <= limit,
            None => true,
        }
    }

    /// Makes room for `size` more bytes in a bounded external store by dropping the objects
    /// spilled longest ago (a log line each). False (with a log line) if `size` cannot fit:
    /// the object is then deleted instead of spilled.
    fn make_external_room(&mut self, size: u64) -> bool {
        let Some(limit) = self.external.as_ref().and_then(|x| x.limit()) else {
            return true;
        };
        let name = self.external.as_ref().map_or("", |x| x.name()).to_string();
        while self.external_bytes.saturating_add(size) > limit {
            let Some((_, oldest)) = self.spilled.pop_first() else {
                log(&format!(
                    "{name} is full ({} of {limit} bytes being written): an evicted object of \
                     {size} bytes is deleted instead",
                    self.external_bytes
                ));
                return false;
            };
            let dropped = self.objects.get(&oldest).map_or(0, Entry::size);
            log(&format!(
                "{name} is full ({limit} bytes): dropping object {oldest} ({dropped} bytes), \
                 spilled longest ago"
            ));
            self.drop_spilled(oldest);
        }
        true
    }

    /// Deletes an evicted object (only in the external store): its copy is removed, the
    /// subscribers are told.
    fn drop_spilled(&mut self, id: ObjectId) {
        let Some(e) = self.objects.remove(&id) else {
            return;
        };
        self.spilled.remove(&e.spill_seq);
        self.external_bytes = self.external_bytes.saturating_sub(e.size());
        if let Some(copy) = e.ticket {
            self.external_io.removals.push((id, copy));
        }
        self.deletion_cache.remove(&id);
        self.notify_deleted(id);
    }

    /// An evicted object whose external copy was found missing (`ticket` of the spill that
    /// made it): it is gone, and says so. False if it changed meanwhile.
    pub(crate) fn lose(&mut self, id: &ObjectId, ticket: u64) -> bool {
        let still = self
            .objects
            .get(id)
            .is_some_and(|e| e.state == ObjState::Evicted && e.ticket == Some(ticket));
        if still {
            log(&format!(
                "object {id} is missing from the external store (removed behind the store's \
                 back?): it is gone"
            ));
            self.drop_spilled(*id);
            self.remember_lost(*id);
        }
        still
    }

    fn remember_lost(&mut self, id: ObjectId) {
        if self.lost.insert(id) {
            self.lost_order.push_back(id);
        }
        while self.lost_order.len() > MAX_LOST {
            if let Some(old) = self.lost_order.pop_front() {
                self.lost.remove(&old);
            }
        }
    }

    /// Whether the object was lost from the external store (and not created again since).
    pub(crate) fn is_lost(&self, id: &ObjectId) -> bool {
        self.lost.contains(id)
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

    /// Whether external-store work is queued (and nobody took it yet).
    pub(crate) fn external_io_queued(&self) -> bool {
        !self.external_io.is_empty()
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
            self.external_bytes = self.external_bytes.saturating_sub(size);
            if result.is_ok() {
                self.external_io.removals.push((spill.id, spill.ticket));
            }
            return true;
        }
        let seq = self.next_lru;
        let Some(e) = self
            .objects
            .get_mut(&spill.id)
            .filter(|e| e.ticket == Some(spill.ticket))
        else {
            return false;
        };
        match result {
            Ok(()) if e.ref_count == 0 => {
                e.state = ObjState::Evicted;
                e.spill_seq = seq;
                self.next_lru += 1;
                self.spilled.insert(seq, spill.id);
                self.free_memory(&spill.id);
                true
            }
            Ok(()) => {
                // Got again while it was being copied: it stays in memory.
                e.state = ObjState::Sealed;
                e.ticket = None;
                self.external_bytes = self.external_bytes.saturating_sub(size);
                self.external_io.removals.push((spill.id, spill.ticket));
                false
            }
            Err(err) => {
                e.state = ObjState::Sealed;
                e.ticket = None;
                self.external_bytes = self.external_bytes.saturating_sub(size);
                let unused = e.ref_count == 0;
                self.spill_failures.note(&format!(
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

    /// Reports a restore; true if the object is back, or gone (its memory freed).
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
                e.stale_copy = Some(restore.copy);
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
                self.remember_lost(restore.id);
                // Its memory is free again, and the gets waiting for it learn it is gone.
                true
            }
        }
    }

    fn release_allocation(&mut self, alloc: Allocation, size: u64) {
        self.allocator.free(alloc);
        self.allocated -= size;
    }

    // ----- notifications -----

    /// Bounds the memory of all subscribers' queues together (`--notification-memory`).
    pub(crate) fn set_notification_memory(&mut self, bytes: usize) {
        self.notification_budget = Budget::new(bytes);
    }

    /// The budget a new subscriber's queue draws on.
    pub(crate) fn notification_budget(&self) -> Arc<Budget> {
        Arc::clone(&self.notification_budget)
    }

    fn notify(&mut self, infos: &[ObjectInfo]) {
        if self.subscribers.is_empty() || infos.is_empty() {
            return;
        }
        let message: Notification = notification::encode(infos).into();
        self.make_notification_room(Budget::cost(&message));
        let mut dead = Vec::new();
        for (client, sub) in &self.subscribers {
            if !sub.push(&message) {
                dead.push(*client);
            }
        }
        for client in dead {
            if let Some(sub) = self.subscribers.remove(&client) {
                sub.close();
            }
        }
    }

    /// Makes room in the budget for one message of `cost` bytes per subscriber by dropping
    /// the slowest subscribers (the most bytes queued), with a log line each. A subscriber
    /// with nothing queued is never dropped for it.
    fn make_notification_room(&mut self, cost: usize) {
        let budget = Arc::clone(&self.notification_budget);
        while budget.used() + cost.saturating_mul(self.subscribers.len()) > budget.limit() {
            let Some(slowest) = self
                .subscribers
                .values()
                .filter(|s| s.queued_bytes() > 0)
                .max_by_key(|s| s.queued_bytes())
                .map(|s| s.client())
            else {
                return;
            };
            if let Some(sub) = self.subscribers.remove(&slowest) {
                log(&format!(
                    "dropping the subscription of client {slowest}, the slowest reader \
                     ({} notifications, {} bytes not read): the notification memory of all \
                     subscribers ({} bytes) is full",
                    sub.queued_messages(),
                    sub.queued_bytes(),
                    budget.limit()
                ));
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
        if let Some(copy) = self.objects.get(&id).and_then(|e| e.stale_copy) {
            self.external_io.removals.push((id, copy));
        }
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
            (ObjState::Evicted, _) => {
                self.drop_spilled(id);
                return;
            }
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
        if self.lost.remove(&id) {
            self.lost_order.retain(|lost| *lost != id);
        }
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
            spill_seq: 0,
            stale_copy: None,
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
            object: e.stored(),
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

    /// Whether a Get of `ids` can be answered without waiting or external-store I/O: every
    /// object is in memory and sealed or lost from the external store, or (`no_wait`, a zero
    /// timeout) the missing ones are simply unknown or unsealed.
    pub(crate) fn answerable_now(&self, ids: &[ObjectId], no_wait: bool) -> bool {
        ids.iter()
            .all(|id| match self.objects.get(id).map(|e| e.state) {
                Some(ObjState::Sealed | ObjState::Spilling) => true,
                Some(ObjState::Evicted | ObjState::Restoring) => false,
                Some(ObjState::Created) => no_wait,
                // Unknown: with a shared external store, a look there first.
                None => (no_wait && !self.shares_external()) || self.is_lost(id),
            })
    }

    /// Allocates memory for an evicted object and queues its restore (if memory can be had
    /// now; otherwise a later get tries again).
    fn begin_restore(&mut self, id: &ObjectId) {
        let Some((size, seq, copy)) = self
            .objects
            .get(id)
            .map(|e| (e.size(), e.spill_seq, e.ticket.unwrap_or(0)))
        else {
            return;
        };
        // Leaving the external store: neither dropped from it nor counted in it to make room
        // for what its restore evicts there (restores are done before spills).
        self.spilled.remove(&seq);
        self.external_bytes = self.external_bytes.saturating_sub(size);
        let Ok((alloc, offset)) = self.allocate(size, true) else {
            self.spilled.insert(seq, *id);
            self.external_bytes = self.external_bytes.saturating_add(size);
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
            copy,
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

    /// Whether the object is (only or also) in the external store: `Some(ticket)` of the
    /// spill that put it there if it is evicted.
    pub(crate) fn spilled_ticket(&self, id: &ObjectId) -> Option<u64> {
        self.objects
            .get(id)
            .filter(|e| e.state == ObjState::Evicted)
            .and_then(|e| e.ticket)
    }

    /// Whether the object is evicted or on its way back from the external store.
    pub(crate) fn is_spilled(&self, id: &ObjectId) -> bool {
        self.objects
            .get(id)
            .is_some_and(|e| matches!(e.state, ObjState::Evicted | ObjState::Restoring))
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
        self.evict_lru(num_bytes, MayDrop::Yes)
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

    /// Subscribe: registers `sub` and replays every sealed object (in messages of up to
    /// [`REPLAY_BATCH`] objects). Returns false (and registers nothing) if `client` already
    /// subscribed, or if the replay does not fit the notification memory (logged).
    pub(crate) fn subscribe(&mut self, client: ClientId, sub: Arc<Subscriber>) -> bool {
        if self.subscribers.contains_key(&client) {
            return false;
        }
        let sealed: Vec<ObjectInfo> = self
            .objects
            .iter()
            .filter(|(_, e)| e.state == ObjState::Sealed)
            .map(|(id, e)| Self::seal_info(*id, e))
            .collect();
        for batch in sealed.chunks(REPLAY_BATCH) {
            let message: Notification = notification::encode(batch).into();
            let budget = &self.notification_budget;
            if budget.used() + Budget::cost(&message) > budget.limit() {
                log(&format!(
                    "refusing the subscription of client {client}: replaying its {} sealed \
                     objects does not fit the notification memory of all subscribers \
                     ({} bytes)",
                    sealed.len(),
                    budget.limit()
                ));
                return false;
            }
            if !sub.push(&message) {
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
        let ext: Option<Arc<dyn ExternalStore>> = external
            .then(|| Arc::new(HashTableStore::new("t", u64::MAX)) as Arc<dyn ExternalStore>);
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
        for (id, copy) in &work.removals {
            external.remove(id, *copy);
        }
        for restore in work.restores {
            let bytes = external.take(&restore.id, restore.copy).unwrap();
            st.segment.write(restore.offset, &bytes);
            st.finish_restore(restore, Ok(()));
        }
        for spill in work.spills {
            let bytes = st.segment.read(spill.offset, spill.len);
            let result = external.put(&spill.id, spill.ticket, &spill.object, &bytes);
            st.finish_spill(spill, result);
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
        fn put(&self, _: &ObjectId, _: u64, _: &StoredObject, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
        fn take(&self, _: &ObjectId, _: u64) -> std::io::Result<Vec<u8>> {
            Err(std::io::ErrorKind::NotFound.into())
        }
        fn remove(&self, _: &ObjectId, _: u64) {}
        fn contains(&self, _: &ObjectId, _: u64) -> bool {
            false
        }
        fn limit(&self) -> Option<u64> {
            None
        }
        fn name(&self) -> &str {
            "broken"
        }
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
        assert_eq!(work.removals.len(), 1);
        assert_eq!(work.removals[0].0, id(1));
    }

    fn bounded_state(capacity: u64, limit: u64) -> State {
        let seg = Arc::new(Segment::create(crate::arena_len(capacity), None, false).unwrap());
        let ext = Arc::new(HashTableStore::new("hashtable://t", limit));
        State::new(capacity, seg, Some(ext))
    }

    /// [`put_released`], doing the spills that make room for it as they are queued.
    fn put_spilling(st: &mut State, n: u8, size: u64) {
        while st.create(1, id(n), size, 0, 0, true).is_err() {
            assert!(st.external_io_pending(), "no room for object {n}");
            run_io(st);
        }
        st.seal(&id(n), &[0; 8]).unwrap();
        assert!(st.release(1, &id(n)));
    }

    /// Gets an evicted object back, doing the external-store work it waits for.
    fn get_back(st: &mut State, n: u8) {
        while st.get(5, &id(n)).is_none() {
            assert!(st.external_io_pending(), "object {n} is lost");
            run_io(st);
        }
        assert!(st.release(5, &id(n)));
    }

    #[test]
    fn a_full_external_store_drops_the_objects_spilled_longest_ago() {
        let mut st = bounded_state(1000, 700);
        for n in 1..=4 {
            put_spilling(&mut st, n, 400);
        }
        // 1 was spilled for 3, then 2 for 4: 800 bytes of 700, so 1, the oldest, went.
        assert!(!st.contains(&id(1)) && !st.knows(&id(1)));
        assert!(st.contains(&id(2)) && st.is_spilled(&id(2)));
        assert_eq!(st.external_bytes, 400);
        // Getting 2 back evicts 3, which takes the room 2 leaves: nothing is dropped.
        get_back(&mut st, 2);
        assert!(st.contains(&id(3)) && st.is_spilled(&id(3)));
        assert!(st.contains(&id(4)));
        assert_eq!(st.external_bytes, 400);
        // One more object drops the one spilled longest ago, 3, to make room for 4.
        put_spilling(&mut st, 5, 400);
        assert!(!st.knows(&id(3)));
        assert!(st.is_spilled(&id(4)) && st.contains(&id(2)) && st.contains(&id(5)));
        assert_eq!(st.external_bytes, 400);
        // An object larger than the whole external store is deleted instead of spilled.
        let mut st = bounded_state(1000, 300);
        put_released(&mut st, 7, 400);
        assert!(st.create(1, id(8), 700, 0, 0, true).is_ok());
        assert!(!st.knows(&id(7)));
        assert_eq!(st.external_bytes, 0);
    }

    #[test]
    fn twice_the_capacity_fits_in_memory_and_an_external_store_of_the_capacity() {
        // pyarrow 11's own eviction test: 20 objects of a tenth of the capacity each, read
        // back in order again and again; the fifth evicted ahead never drops one.
        let mut st = bounded_state(1000, 1000);
        for n in 1..=20 {
            put_spilling(&mut st, n, 100);
        }
        assert_eq!(st.external_bytes, 1000);
        for _ in 0..3 {
            for n in 1..=20 {
                get_back(&mut st, n);
            }
        }
        assert!((1..=20).all(|n| st.knows(&id(n))));
        assert!(st.external_bytes <= 1000);
    }

    #[test]
    fn objects_spilled_by_a_previous_run_come_back_sealed_with_their_digests() {
        let dir = tempfile::tempdir().unwrap();
        let spilled = StoredObject {
            data_size: 5,
            metadata_size: 2,
            digest: vec![4; 8],
            create_time: 1_700_000_000,
            construct_duration: 3,
        };
        {
            let files = crate::FileStore::open(dir.path().into(), None).unwrap();
            files.put(&id(1), 7, &spilled, b"hellomd").unwrap();
        }
        let files = Arc::new(crate::FileStore::open(dir.path().into(), None).unwrap());
        let seg = Arc::new(Segment::create(crate::arena_len(1000), None, false).unwrap());
        let mut st = State::new(1000, seg, Some(files));
        assert!(st.contains(&id(1)));
        assert!(st.get(2, &id(1)).is_none(), "on its way back");
        run_io(&mut st);
        let spec = st.get(2, &id(1)).unwrap();
        assert_eq!(st.segment.read(spec.data_offset, 5), b"hello");
        assert_eq!(st.segment.read(spec.metadata_offset, 2), b"md");
        let info = &st.list()[0];
        assert_eq!(info.digest, vec![4; 8]);
        assert_eq!(
            (info.create_time, info.construct_duration),
            (1_700_000_000, 3)
        );
    }

    #[test]
    fn an_object_lost_from_the_external_store_is_gone() {
        let mut st = state(1000, true);
        put_released(&mut st, 1, 600);
        assert!(st.create(1, id(2), 600, 0, 0, true).is_err());
        run_io(&mut st);
        let ticket = st.spilled_ticket(&id(1)).unwrap();
        assert!(!st.lose(&id(1), ticket + 1), "another spill's ticket");
        assert!(st.lose(&id(1), ticket));
        assert!(!st.contains(&id(1)) && !st.knows(&id(1)));
        assert_eq!(st.external_bytes, 0);
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
