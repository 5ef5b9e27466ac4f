//! A Plasma client that speaks the Arrow 11 protocol to any Plasma store
//! (Arrow 11's `plasma-store-server` or this project's `plasma-store`), and the tensor-ipc
//! backend on top of it: [`PlasmaSink`] writes a tensor message straight into a new object,
//! [`PlasmaSource`] reads messages from objects zero-copy.
//!
//! ```no_run
//! use tensor_ipc_plasma_client::{ObjectId, PlasmaClient};
//!
//! let client = PlasmaClient::connect("/tmp/plasma")?;
//! let id = ObjectId([7; 20]);
//! let mut object = client.create(id, 5, b"md")?;
//! object.data_mut().copy_from_slice(b"hello");
//! object.seal()?;
//! let got = client.get_one(id, None)?.expect("sealed");
//! assert_eq!(got.data.as_slice(), b"hello");
//! # Ok::<(), tensor_ipc_plasma_client::ClientError>(())
//! ```
//!
//! * Objects come back as zero-copy [`arrow_buffer::Buffer`]s over the shared
//!   memory. Each object holds one store reference per client; it is released
//!   (one `ReleaseRequest`) when the last buffer of the object is dropped, in
//!   any thread, even after the [`PlasmaClient`] handle itself is gone.
//! * A `get` of objects this client already holds (sealed) is answered
//!   locally, without a message, as the C++ client does.
//! * The client is `Send + Sync` and cheap to clone (an `Arc`). Requests are
//!   serialised on the one socket (like the C++ client's mutex): a `get` that
//!   waits for an object blocks other requests of the same client meanwhile,
//!   so a producer and a waiting consumer should use separate clients.
//! * Segments are mapped once per client, read-only (objects from a get can never be
//!   written through this client), plus a writable mapping the first time the client
//!   creates an object; unmapped when the client and every buffer of it are gone.
//! * Socket writes pass `MSG_NOSIGNAL`: a store that died is an error, never a SIGPIPE in
//!   the host process.
//! * Requests time out ([`ClientOptions::request_timeout`]) instead of
//!   hanging on a store that stopped answering; a closed socket gives
//!   [`ClientError::Disconnected`] at once.

mod connection;
mod digest;
mod error;
mod objects;
mod segment;
mod subscribe;
mod tensor;

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tensor_ipc_plasma_protocol::fdpass;
use tensor_ipc_plasma_protocol::messages::{
    ConnectRequest, ContainsRequest, CreateAndSealBatchRequest, CreateAndSealRequest, CreateReply,
    CreateRequest, DeleteRequest, EvictRequest, GetDebugStringRequest, GetReply, GetRequest,
    ListRequest, RefreshLruReply, RefreshLruRequest, ReleaseRequest, SetOptionsRequest,
    SubscribeRequest,
};
use tensor_ipc_plasma_protocol::{ObjectSpec, Status};

use connection::{Conn, io_failure};
pub use digest::{PARALLEL_THRESHOLD, object_digest, object_hash};
pub use error::{ClientError, ClientResult};
use objects::ObjectPin;
pub use objects::{CreatedObject, ObjectBuffers};
use segment::{Region, WritableRegion};
pub use subscribe::{Notification, Subscription};
pub use tensor::{PlasmaSink, PlasmaSource};
/// The protocol crate, for its constants and message types.
pub use tensor_ipc_plasma_protocol as protocol;
pub use tensor_ipc_plasma_protocol::{ObjectId, ObjectInfo};

/// Connection and timeout settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Connection attempts before giving up (the original: 80).
    pub connect_retries: u32,
    /// Pause between attempts (the original: 100 ms).
    pub retry_delay: Duration,
    /// How long to wait for any reply (beyond a `get`'s own timeout)
    /// before failing with [`ClientError::Timeout`].
    pub request_timeout: Duration,
    /// `evict_if_full` of creates: whether the store may evict unused
    /// objects to make room (the C++ client always sends `true`).
    pub evict_if_full: bool,
    /// How long to poll the socket for a reply (yielding the CPU on each turn) before
    /// sleeping on it. Replies usually come within microseconds; catching them awake spares
    /// a cross-CPU wake-up, which on virtual machines costs tens of microseconds. Polling stops
    /// and backs off while the CPU is contended (see
    /// [`Poller`](tensor_ipc_plasma_protocol::poll::Poller)). Zero: never poll. Capped at 1 s.
    pub reply_poll: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_retries: 80,
            retry_delay: Duration::from_millis(100),
            request_timeout: Duration::from_secs(30),
            evict_if_full: true,
            reply_poll: Duration::from_micros(50),
        }
    }
}

/// A connection to a Plasma store. Cloning shares the connection.
#[derive(Clone)]
pub struct PlasmaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PlasmaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlasmaClient")
            .field("socket", &self.inner.socket_path)
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

/// What the clones of a client share.
pub(crate) struct Inner {
    socket_path: PathBuf,
    capacity: i64,
    pub(crate) options: ClientOptions,
    conn: Mutex<Conn>,
    pub(crate) state: Mutex<State>,
}

/// Local reference counts.
#[derive(Default)]
pub(crate) struct State {
    /// Live local holders per object: the store holds exactly one reference
    /// for this connection while the count is positive.
    pub(crate) holders: HashMap<ObjectId, usize>,
    /// Objects this client created and has not sealed or aborted.
    pub(crate) unsealed: HashSet<ObjectId>,
    /// Releases to send at the next chance (count reached 0 while another
    /// thread held the socket).
    pub(crate) pending_release: Vec<ObjectId>,
    /// Data and metadata regions of the sealed objects held (count > 0): a
    /// get of only such objects is answered locally, as the C++ client does.
    pub(crate) sealed: HashMap<ObjectId, (Region, Region)>,
}

/// Locks a mutex, recovering it if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Maps a reply status to `Ok` or its typed error.
pub(crate) fn status_error(status: Status, id: ObjectId, size: u64) -> ClientResult<()> {
    match status {
        Status::Ok => Ok(()),
        Status::ObjectExists => Err(ClientError::ObjectExists(id)),
        Status::ObjectNotFound => Err(ClientError::ObjectNotFound(id)),
        Status::OutOfMemory => Err(ClientError::OutOfMemory { id: Some(id), size }),
        Status::ObjectNotSealed => Err(ClientError::ObjectNotSealed(id)),
        Status::ObjectInUse => Err(ClientError::ObjectInUse(id)),
    }
}

/// Checks that a reply names the object the request named; a mismatch breaks the connection.
pub(crate) fn check_id(
    conn: &mut Conn,
    reply: &str,
    got: ObjectId,
    want: ObjectId,
) -> ClientResult<()> {
    if got == want {
        return Ok(());
    }
    Err(conn.fail(ClientError::InvalidReply(format!(
        "{reply} for {got}, asked for {want}"
    ))))
}

impl Inner {
    /// Runs `f` with the socket, sending queued releases before and after.
    pub(crate) fn with_conn<R>(
        &self,
        f: impl FnOnce(&mut Conn) -> ClientResult<R>,
    ) -> ClientResult<R> {
        let mut conn = lock(&self.conn);
        self.flush_releases(&mut conn);
        let result = f(&mut conn);
        self.flush_releases(&mut conn);
        drop(conn);
        self.flush_pending();
        result
    }

    fn flush_releases(&self, conn: &mut Conn) {
        let ids = std::mem::take(&mut lock(&self.state).pending_release);
        for object_id in ids {
            if !conn.is_broken() {
                // A failure marks the connection broken; the store then
                // drops every reference of this client by itself.
                let _ = conn.send(&ReleaseRequest { object_id });
            }
        }
    }

    /// Sends queued releases if the socket is free; if another thread holds
    /// it, that thread sends them when it is done.
    fn flush_pending(&self) {
        loop {
            if lock(&self.state).pending_release.is_empty() {
                return;
            }
            match self.conn.try_lock() {
                Ok(mut conn) => self.flush_releases(&mut conn),
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    self.flush_releases(&mut p.into_inner())
                }
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        }
    }

    /// Records one more local holder of `id`, whose store reference this
    /// connection has (just received, or still held).
    pub(crate) fn add_holder(state: &mut State, id: ObjectId) {
        let count = state.holders.entry(id).or_insert(0);
        if *count == 0 {
            // A release queued but not yet sent: the store still holds the
            // reference, which the new holder takes over.
            if let Some(i) = state.pending_release.iter().position(|p| *p == id) {
                state.pending_release.swap_remove(i);
            }
        }
        *count += 1;
    }

    /// Drops one local holder; the last one releases the store reference.
    pub(crate) fn drop_holder(&self, id: ObjectId) {
        {
            let mut state = lock(&self.state);
            let Some(count) = state.holders.get_mut(&id) else {
                return;
            };
            *count -= 1;
            if *count > 0 {
                return;
            }
            state.holders.remove(&id);
            state.sealed.remove(&id);
            state.pending_release.push(id);
        }
        self.flush_pending();
    }
}

impl PlasmaClient {
    /// Connects to the store at `socket` with the default options (80
    /// attempts 100 ms apart, 30 s request timeout).
    pub fn connect(socket: impl AsRef<Path>) -> ClientResult<Self> {
        Self::connect_with(socket, ClientOptions::default())
    }

    /// Connects with explicit options.
    pub fn connect_with(
        socket: impl AsRef<Path>,
        mut options: ClientOptions,
    ) -> ClientResult<Self> {
        // A zero socket timeout would mean "none" to the OS (std refuses it).
        options.request_timeout = options.request_timeout.max(Duration::from_millis(1));
        let path = socket.as_ref().to_path_buf();
        let mut attempt = 0;
        let stream = loop {
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) if attempt + 1 >= options.connect_retries.max(1) => {
                    return Err(ClientError::Connect { path, source: e });
                }
                Err(_) => {
                    attempt += 1;
                    std::thread::sleep(options.retry_delay);
                }
            }
        };
        let mut conn = Conn::new(stream, options.request_timeout, options.reply_poll)?;
        let capacity = conn
            .call(&ConnectRequest, Some(options.request_timeout))?
            .memory_capacity;
        Ok(Self {
            inner: Arc::new(Inner {
                socket_path: path,
                capacity,
                options,
                conn: Mutex::new(conn),
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The store's capacity in bytes (its `-m`), from the connect reply.
    pub fn capacity(&self) -> i64 {
        self.inner.capacity
    }

    /// The socket path this client connected to.
    pub fn socket_path(&self) -> &Path {
        &self.inner.socket_path
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.inner.options.request_timeout)
    }

    /// Creates an object of `data_size` data bytes followed by `metadata`
    /// (copied in now), returning its writable data view. The object is
    /// invisible to others until sealed.
    pub fn create(
        &self,
        id: ObjectId,
        data_size: usize,
        metadata: &[u8],
    ) -> ClientResult<CreatedObject> {
        let data_size = data_size as u64;
        let metadata_size = metadata.len() as u64;
        let total = data_size.saturating_add(metadata_size);
        let timeout = self.inner.options.request_timeout;
        let (data, meta) = self.inner.with_conn(|conn| {
            let request = CreateRequest {
                object_id: id,
                evict_if_full: self.inner.options.evict_if_full,
                data_size,
                metadata_size,
                device_num: 0,
            };
            let CreateReply {
                object_id,
                object,
                error,
                store_fd,
                mmap_size,
            } = conn.call(&request, Some(timeout))?;
            status_error(error, id, total)?;
            if object_id != id {
                return Err(conn.fail(ClientError::InvalidReply(format!(
                    "CreateReply for {object_id}, asked for {id}"
                ))));
            }
            // Receive the fd first (if new), so the stream stays in step even
            // if the spec turns out to be wrong.
            let segment = conn.ensure_segment(store_fd, mmap_size, timeout)?;
            if object.data_size != data_size
                || object.metadata_size != metadata_size
                || object.device_num != 0
                || object.data_offset.checked_add(data_size) != Some(object.metadata_offset)
                || object.segment_index != store_fd
            {
                return Err(conn.fail(ClientError::InvalidReply(format!(
                    "CreateReply spec {object:?} does not match the request"
                ))));
            }
            let data = WritableRegion::new(segment.clone(), object.data_offset, data_size);
            let meta = WritableRegion::new(segment, object.metadata_offset, metadata_size);
            match (data, meta) {
                (Ok(d), Ok(m)) => {
                    let mut state = lock(&self.inner.state);
                    Inner::add_holder(&mut state, id);
                    state.unsealed.insert(id);
                    Ok((d, m))
                }
                (Err(e), _) | (_, Err(e)) => Err(conn.fail(e)),
            }
        })?;
        let mut created = CreatedObject {
            client: self.inner.clone(),
            id,
            data,
            metadata: meta,
            done: false,
        };
        created.metadata_mut().copy_from_slice(metadata);
        Ok(created)
    }

    /// Creates and seals a small object in one request (the data travels
    /// inline in the message); the object is immediately unreferenced.
    pub fn create_and_seal(&self, id: ObjectId, data: &[u8], metadata: &[u8]) -> ClientResult<()> {
        let digest = object_digest(data, metadata).to_vec();
        let size = (data.len() + metadata.len()) as u64;
        let request = CreateAndSealRequest {
            object_id: id,
            evict_if_full: self.inner.options.evict_if_full,
            data: data.to_vec(),
            metadata: metadata.to_vec(),
            digest,
        };
        self.inner.with_conn(|conn| {
            let reply = conn.call(&request, self.timeout())?;
            status_error(reply.error, id, size)
        })
    }

    /// Creates and seals several small objects in one request: all of them
    /// or none. Each entry is `(id, data, metadata)`.
    pub fn create_and_seal_batch(&self, objects: &[(ObjectId, &[u8], &[u8])]) -> ClientResult<()> {
        let size = objects
            .iter()
            .map(|(_, d, m)| (d.len() + m.len()) as u64)
            .sum();
        let request = CreateAndSealBatchRequest {
            object_ids: objects.iter().map(|o| o.0).collect(),
            evict_if_full: self.inner.options.evict_if_full,
            data: objects.iter().map(|o| o.1.to_vec()).collect(),
            metadata: objects.iter().map(|o| o.2.to_vec()).collect(),
            digest: objects
                .iter()
                .map(|(_, d, m)| object_digest(d, m).to_vec())
                .collect(),
        };
        let first = objects.first().map(|o| o.0).unwrap_or_default();
        self.inner.with_conn(|conn| {
            let reply = conn.call(&request, self.timeout())?;
            match status_error(reply.error, first, size) {
                // The batch reply names no object.
                Err(ClientError::OutOfMemory { size, .. }) => {
                    Err(ClientError::OutOfMemory { id: None, size })
                }
                other => other,
            }
        })
    }

    /// Gets sealed objects, waiting up to `timeout` (`None`: forever) for
    /// those not sealed yet. Returns one entry per id, in order (duplicates
    /// included); `None` for an object still missing at the timeout.
    pub fn get(
        &self,
        ids: &[ObjectId],
        timeout: Option<Duration>,
    ) -> ClientResult<Vec<Option<ObjectBuffers>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if timeout.is_none() {
            let state = lock(&self.inner.state);
            if let Some(id) = ids.iter().find(|id| state.unsealed.contains(id)) {
                // It can only be sealed by this client, whose socket the get
                // would hold forever.
                return Err(ClientError::ObjectNotSealed(*id));
            }
        }
        let timeout_ms = match timeout {
            None => -1,
            Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        };
        let request_timeout = self.inner.options.request_timeout;
        let read_timeout = timeout.map(|d| d.saturating_add(request_timeout));
        // Duplicates are asked for once: the original store, given a
        // duplicate, waits for the whole timeout even when all are sealed.
        let mut unique: Vec<ObjectId> = Vec::with_capacity(ids.len());
        let mut slot: HashMap<ObjectId, usize> = HashMap::with_capacity(ids.len());
        let positions: Vec<usize> = ids
            .iter()
            .map(|id| {
                *slot.entry(*id).or_insert_with(|| {
                    unique.push(*id);
                    unique.len() - 1
                })
            })
            .collect();
        let local = {
            let mut state = lock(&self.inner.state);
            if unique.iter().all(|id| state.sealed.contains_key(id)) {
                // All held and sealed: the store already counts this
                // connection's reference; nothing to ask.
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some((data, metadata)) = state.sealed.get(id).cloned() {
                        Inner::add_holder(&mut state, *id);
                        out.push(Some((*id, data, metadata)));
                    }
                }
                Some(out)
            } else {
                None
            }
        };
        let found = match local {
            Some(found) => found,
            None => self.get_remote(ids, &unique, &positions, timeout_ms, read_timeout)?,
        };
        Ok(found
            .into_iter()
            .map(|entry| {
                entry.map(|(id, data, metadata)| {
                    let pin: Arc<ObjectPin> = Arc::new(ObjectPin {
                        client: self.inner.clone(),
                        id,
                        _segment: data.segment().clone(),
                    });
                    ObjectBuffers {
                        id,
                        data: data.to_buffer(pin.clone()),
                        metadata: metadata.to_buffer(pin),
                    }
                })
            })
            .collect())
    }

    /// The round trip of [`get`](PlasmaClient::get); records the holders.
    #[allow(clippy::type_complexity)]
    fn get_remote(
        &self,
        ids: &[ObjectId],
        unique: &[ObjectId],
        positions: &[usize],
        timeout_ms: i64,
        read_timeout: Option<Duration>,
    ) -> ClientResult<Vec<Option<(ObjectId, Region, Region)>>> {
        let request_timeout = self.inner.options.request_timeout;
        let request = GetRequest {
            object_ids: unique.to_vec(),
            timeout_ms,
        };
        self.inner.with_conn(|conn| {
            let GetReply {
                object_ids,
                objects,
                store_fds,
                mmap_sizes,
            } = conn.call(&request, read_timeout)?;
            // Segments first, keeping the stream in step with the store.
            for (&fd, &size) in store_fds.iter().zip(&mmap_sizes) {
                conn.ensure_segment(fd, size, request_timeout)?;
            }
            if object_ids.as_slice() != unique {
                return Err(conn.fail(ClientError::InvalidReply(
                    "GetReply lists other ids than requested".into(),
                )));
            }
            let mut regions = Vec::with_capacity(ids.len());
            for spec in &objects {
                regions.push(if spec.data_size == u64::MAX {
                    None
                } else {
                    match object_regions(conn, spec) {
                        Ok(r) => Some(r),
                        Err(e) => return Err(conn.fail(e)),
                    }
                });
            }
            // The store now holds one reference for every found object.
            let mut state = lock(&self.inner.state);
            Ok(ids
                .iter()
                .zip(positions)
                .map(|(id, &k)| {
                    regions[k].clone().map(|(data, metadata)| {
                        Inner::add_holder(&mut state, *id);
                        state
                            .sealed
                            .entry(*id)
                            .or_insert_with(|| (data.clone(), metadata.clone()));
                        (*id, data, metadata)
                    })
                })
                .collect::<Vec<_>>())
        })
    }

    /// Gets one object; see [`get`](PlasmaClient::get).
    pub fn get_one(
        &self,
        id: ObjectId,
        timeout: Option<Duration>,
    ) -> ClientResult<Option<ObjectBuffers>> {
        Ok(self.get(&[id], timeout)?.pop().flatten())
    }

    /// The digest of a sealed object as `PlasmaClient::Hash` computes it
    /// (locally, from the object's bytes): a get with timeout 0.
    pub fn hash(&self, id: ObjectId) -> ClientResult<[u8; 8]> {
        match self.get_one(id, Some(Duration::ZERO))? {
            Some(b) => Ok(object_digest(b.data.as_slice(), b.metadata.as_slice())),
            None => Err(ClientError::ObjectNotFound(id)),
        }
    }

    /// Whether the store holds the object sealed.
    pub fn contains(&self, id: ObjectId) -> ClientResult<bool> {
        self.inner.with_conn(|conn| {
            let reply = conn.call(&ContainsRequest { object_id: id }, self.timeout())?;
            check_id(conn, "ContainsReply", reply.object_id, id)?;
            Ok(reply.has_object)
        })
    }

    /// Deletes objects. Returns one result per id: `Ok`, or
    /// `ObjectNotFound`, `ObjectNotSealed` / `ObjectInUse` (then deleted by
    /// the store once sealed and released).
    pub fn delete(&self, ids: &[ObjectId]) -> ClientResult<Vec<ClientResult<()>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.with_conn(|conn| {
            let request = DeleteRequest {
                object_ids: ids.to_vec(),
            };
            let reply = conn.call(&request, self.timeout())?;
            if reply.object_ids != ids {
                return Err(conn.fail(ClientError::InvalidReply(
                    "DeleteReply lists other ids than requested".into(),
                )));
            }
            Ok(reply
                .errors
                .into_iter()
                .zip(ids)
                .map(|(e, &id)| status_error(e, id, 0))
                .collect())
        })
    }

    /// Deletes one object; see [`delete`](PlasmaClient::delete).
    pub fn delete_one(&self, id: ObjectId) -> ClientResult<()> {
        self.delete(&[id])?
            .pop()
            .unwrap_or(Err(ClientError::ObjectNotFound(id)))
    }

    /// Every object in the store, in any state (an empty digest means unsealed).
    pub fn list(&self) -> ClientResult<Vec<ObjectInfo>> {
        self.inner
            .with_conn(|conn| Ok(conn.call(&ListRequest, self.timeout())?.objects))
    }

    /// Evicts unused objects, least recently released first, until at least
    /// `num_bytes` are freed; returns the bytes freed.
    pub fn evict(&self, num_bytes: u64) -> ClientResult<u64> {
        self.inner.with_conn(|conn| {
            Ok(conn
                .call(&EvictRequest { num_bytes }, self.timeout())?
                .num_bytes)
        })
    }

    /// Marks unused objects as most recently used (protecting them from
    /// eviction for longer).
    pub fn refresh(&self, ids: &[ObjectId]) -> ClientResult<()> {
        self.inner.with_conn(|conn| {
            let request = RefreshLruRequest {
                object_ids: ids.to_vec(),
            };
            conn.call(&request, self.timeout())
                .map(|RefreshLruReply| ())
        })
    }

    /// Names this client and asks for a private memory quota; a refused
    /// quota is [`ClientError::OutOfMemory`].
    pub fn set_options(&self, client_name: &str, output_memory_quota: i64) -> ClientResult<()> {
        self.inner.with_conn(|conn| {
            let request = SetOptionsRequest {
                client_name: client_name.to_owned(),
                output_memory_quota,
            };
            match conn.call(&request, self.timeout())?.error {
                Status::Ok => Ok(()),
                Status::OutOfMemory => Err(ClientError::OutOfMemory {
                    id: None,
                    size: output_memory_quota.max(0) as u64,
                }),
                other => Err(conn.fail(ClientError::InvalidReply(format!(
                    "SetOptionsReply with status {other:?}"
                )))),
            }
        })
    }

    /// The store's debug text (its eviction policy state).
    pub fn debug_string(&self) -> ClientResult<String> {
        self.inner.with_conn(|conn| {
            Ok(conn
                .call(&GetDebugStringRequest, self.timeout())?
                .debug_string)
        })
    }

    /// Subscribes to seal and deletion notifications. The store first
    /// replays one notification per sealed object. One subscription per
    /// client (a second one would kill the original store).
    pub fn subscribe(&self) -> ClientResult<Subscription> {
        self.inner.with_conn(|conn| {
            conn.check()?;
            if conn.subscribed {
                return Err(ClientError::InvalidCall(
                    "this client is already subscribed; connect another client".into(),
                ));
            }
            let (ours, theirs) = UnixStream::pair().map_err(ClientError::Io)?;
            theirs.set_nonblocking(true).map_err(ClientError::Io)?;
            conn.send(&SubscribeRequest)?;
            if let Err(e) = fdpass::send_fd(conn.stream().as_fd(), theirs.as_fd()) {
                return Err(conn.fail(io_failure(e, None)));
            }
            conn.subscribed = true;
            Ok(Subscription::new(ours))
        })
    }

    /// Number of objects this client currently holds references to.
    pub fn held_objects(&self) -> usize {
        lock(&self.inner.state).holders.len()
    }
}

/// The data and metadata regions of a found object of a Get reply.
fn object_regions(conn: &Conn, spec: &ObjectSpec) -> ClientResult<(Region, Region)> {
    if spec.device_num != 0 {
        return Err(ClientError::InvalidReply(format!(
            "object on device {} (only host memory is supported)",
            spec.device_num
        )));
    }
    let segment = conn.segments.get(&spec.segment_index).ok_or_else(|| {
        ClientError::InvalidReply(format!(
            "object in segment {} that was never sent",
            spec.segment_index
        ))
    })?;
    if spec.data_offset.checked_add(spec.data_size) != Some(spec.metadata_offset) {
        return Err(ClientError::InvalidReply(format!(
            "metadata offset {} does not follow the data",
            spec.metadata_offset
        )));
    }
    Ok((
        Region::new(segment.clone(), spec.data_offset, spec.data_size)?,
        Region::new(segment.clone(), spec.metadata_offset, spec.metadata_size)?,
    ))
}
