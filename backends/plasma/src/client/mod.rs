//! A Plasma client that speaks the Arrow 11 protocol to any Plasma store
//! (Arrow 11's `plasma-store-server` or this project's `plasma-store`).
//!
//! ```no_run
//! use tensor_ipc_plasma::ObjectId;
//! use tensor_ipc_plasma::client::PlasmaClient;
//!
//! let client = PlasmaClient::connect("/tmp/plasma")?;
//! let id = ObjectId([7; 20]);
//! let mut object = client.create(id, 5, b"md")?;
//! object.data_mut().copy_from_slice(b"hello");
//! object.seal()?;
//! let got = client.get_one(id, None)?.expect("sealed");
//! assert_eq!(got.data.as_slice(), b"hello");
//! # Ok::<(), tensor_ipc_plasma::client::ClientError>(())
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
//! * Segments are mapped once per client and unmapped when the client and
//!   every buffer of it are gone.
//! * Requests time out ([`ClientOptions::request_timeout`]) instead of
//!   hanging on a store that stopped answering; a closed socket gives
//!   [`ClientError::Disconnected`] at once.

mod digest;
mod error;
mod segment;
mod subscribe;
mod tensor;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arrow_buffer::Buffer;

use crate::frame::{HEADER_SIZE, RawFrame};
use crate::{MAX_MESSAGE_SIZE, Message, MessageType, ObjectId, ObjectInfo, ObjectSpec, Status};

use digest::copy_and_hash;
pub use digest::{PARALLEL_THRESHOLD, object_digest, object_hash};
pub use error::{ClientError, ClientResult};
use segment::{Region, Segment};
pub use subscribe::{Notification, Subscription};
pub use tensor::{PlasmaSink, PlasmaSource};

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
    /// a cross-CPU wake-up, which on virtual machines costs tens of microseconds. Zero: never
    /// poll. Capped at 1 s.
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

struct Inner {
    socket_path: PathBuf,
    capacity: i64,
    options: ClientOptions,
    conn: Mutex<Conn>,
    state: Mutex<State>,
}

/// The socket and what is known about it; only touched under its mutex.
struct Conn {
    stream: UnixStream,
    /// Mapped segments, keyed by the store's fd number, in lock-step with the
    /// store's per-connection "fds sent" set.
    segments: HashMap<i32, Arc<Segment>>,
    /// Set once the connection is unusable (I/O error, timeout, bad reply).
    broken: Option<String>,
    subscribed: bool,
    /// The socket's current read timeout, to skip redundant `setsockopt`s.
    read_timeout: Option<Duration>,
    /// [`ClientOptions::request_timeout`].
    request_timeout: Duration,
    /// [`ClientOptions::reply_poll`].
    reply_poll: Duration,
}

/// Local reference counts.
#[derive(Default)]
struct State {
    /// Live local holders per object: the store holds exactly one reference
    /// for this connection while the count is positive.
    holders: HashMap<ObjectId, usize>,
    /// Objects this client created and has not sealed or aborted.
    unsealed: HashSet<ObjectId>,
    /// Releases to send at the next chance (count reached 0 while another
    /// thread held the socket).
    pending_release: Vec<ObjectId>,
    /// Data and metadata regions of the sealed objects held (count > 0): a
    /// get of only such objects is answered locally, as the C++ client does.
    sealed: HashMap<ObjectId, (Region, Region)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_failure(e: io::Error, timeout: Option<Duration>) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ClientError::Timeout(timeout.unwrap_or_default())
        }
        _ => ClientError::Disconnected(e.to_string()),
    }
}

impl Conn {
    fn check(&self) -> ClientResult<()> {
        match &self.broken {
            Some(why) => Err(ClientError::Disconnected(why.clone())),
            None => Ok(()),
        }
    }

    /// Marks the connection unusable after `e` and returns `e`.
    fn fail(&mut self, e: ClientError) -> ClientError {
        if self.broken.is_none() {
            self.broken = Some(e.to_string());
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        e
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> ClientResult<()> {
        if self.read_timeout != timeout {
            if let Err(e) = self.stream.set_read_timeout(timeout) {
                return Err(self.fail(ClientError::Io(e)));
            }
            self.read_timeout = timeout;
        }
        Ok(())
    }

    fn send(&mut self, msg: &Message) -> ClientResult<()> {
        self.check()?;
        let frame = msg.encode_frame();
        if let Err(e) = self.stream.write_all(&frame) {
            return Err(self.fail(io_failure(e, None)));
        }
        Ok(())
    }

    /// Sends `msg` and reads its reply of type `expect`, waiting at most
    /// `timeout` (`None`: forever).
    fn call(
        &mut self,
        msg: &Message,
        expect: MessageType,
        timeout: Option<Duration>,
    ) -> ClientResult<Message> {
        self.send(msg)?;
        let frame = self.read_reply(timeout)?;
        if frame.kind != expect.as_i64() {
            return Err(self.fail(ClientError::InvalidReply(format!(
                "expected message type {}, got {}",
                expect.as_i64(),
                frame.kind
            ))));
        }
        Message::decode(frame.kind, &frame.body).map_err(|e| self.fail(e.into()))
    }

    /// Reads one reply frame. With `timeout == None` the wait for its first
    /// byte is unbounded (the socket keeps its request timeout, re-armed
    /// while nothing has arrived, which spares a `setsockopt` per call);
    /// once a frame has started, the rest must come within the timeout.
    fn read_reply(&mut self, timeout: Option<Duration>) -> ClientResult<RawFrame> {
        let socket_timeout = timeout.or(self.read_timeout).or(Some(self.request_timeout));
        self.set_read_timeout(socket_timeout)?;
        let mut header = [0u8; HEADER_SIZE];
        let mut got = self.poll_for_reply(&mut header);
        while got < HEADER_SIZE {
            match self.stream.read(&mut header[got..]) {
                Ok(0) => {
                    return Err(self.fail(ClientError::Disconnected(
                        "the store closed the connection".into(),
                    )));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if got == 0
                        && timeout.is_none()
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                Err(e) => return Err(self.fail(io_failure(e, socket_timeout))),
            }
        }
        let (kind, len) = crate::frame::parse_header(&header, MAX_MESSAGE_SIZE)
            .map_err(|e| self.fail(e.into()))?;
        // The body buffer grows only as bytes arrive.
        let mut body = Vec::with_capacity(len.min(1 << 16));
        match (&mut self.stream).take(len as u64).read_to_end(&mut body) {
            Ok(n) if n == len => Ok(RawFrame { kind, body }),
            Ok(_) => Err(self.fail(ClientError::Disconnected(
                "the store closed the connection inside a reply".into(),
            ))),
            Err(e) => Err(self.fail(io_failure(e, socket_timeout))),
        }
    }

    /// Polls for the first bytes of a reply for up to `reply_poll`, yielding the CPU between
    /// attempts; returns how many header bytes arrived (0: none yet, or an error left for the
    /// blocking read to report).
    fn poll_for_reply(&mut self, header: &mut [u8; HEADER_SIZE]) -> usize {
        if self.reply_poll.is_zero() {
            return 0;
        }
        let stream = &self.stream;
        let got = crate::poll::busy_poll(self.reply_poll, || {
            rustix::net::recv(stream, &mut header[..], rustix::net::RecvFlags::DONTWAIT)
                .map_err(io::Error::from)
        });
        match got {
            Some(Ok((n, _))) => n,
            // Nothing yet, end of stream or an error: the blocking read sees it too.
            _ => 0,
        }
    }

    /// Receives and maps the fd of segment `store_fd` if this connection has
    /// not seen it yet.
    fn ensure_segment(
        &mut self,
        store_fd: i32,
        mmap_size: i64,
        timeout: Duration,
    ) -> ClientResult<Arc<Segment>> {
        if let Some(s) = self.segments.get(&store_fd) {
            return Ok(s.clone());
        }
        self.set_read_timeout(Some(timeout))?;
        let fd = match crate::fdpass::recv_fd(self.stream.as_fd()) {
            Ok(fd) => fd,
            Err(crate::Error::Io(e)) => return Err(self.fail(io_failure(e, Some(timeout)))),
            Err(crate::Error::Closed) => {
                return Err(self.fail(ClientError::Disconnected(
                    "the store closed the connection".into(),
                )));
            }
            Err(e) => return Err(self.fail(e.into())),
        };
        let segment = Arc::new(Segment::map(fd, mmap_size).map_err(|e| self.fail(e))?);
        self.segments.insert(store_fd, segment.clone());
        Ok(segment)
    }
}

/// Maps a reply status to `Ok` or its typed error.
fn status_error(status: Status, id: ObjectId, size: u64) -> ClientResult<()> {
    match status {
        Status::Ok => Ok(()),
        Status::ObjectExists => Err(ClientError::ObjectExists(id)),
        Status::ObjectNotFound => Err(ClientError::ObjectNotFound(id)),
        Status::OutOfMemory => Err(ClientError::OutOfMemory { id: Some(id), size }),
        Status::ObjectNotSealed => Err(ClientError::ObjectNotSealed(id)),
        Status::ObjectInUse => Err(ClientError::ObjectInUse(id)),
    }
}

fn unexpected(what: &str, got: &Message) -> ClientError {
    ClientError::InvalidReply(format!("expected {what}, got {:?}", got.kind()))
}

impl Inner {
    /// Runs `f` with the socket, sending queued releases before and after.
    fn with_conn<R>(&self, f: impl FnOnce(&mut Conn) -> ClientResult<R>) -> ClientResult<R> {
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
            if conn.broken.is_none() {
                // A failure marks the connection broken; the store then
                // drops every reference of this client by itself.
                let _ = conn.send(&Message::ReleaseRequest { object_id });
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
    fn add_holder(state: &mut State, id: ObjectId) {
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
    fn drop_holder(&self, id: ObjectId) {
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

/// Keeps one local holder of an object (and its segment) alive; the owner of
/// the object's [`Buffer`]s.
struct ObjectPin {
    client: Arc<Inner>,
    id: ObjectId,
    _segment: Arc<Segment>,
}

impl Drop for ObjectPin {
    fn drop(&mut self) {
        self.client.drop_holder(self.id);
    }
}

/// A sealed object as returned by [`PlasmaClient::get`]: zero-copy, read-only
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

/// An object created by [`PlasmaClient::create`] and not yet sealed: a
/// writable view of exactly the requested size in shared memory.
///
/// [`seal`](CreatedObject::seal) publishes it; [`abort`](CreatedObject::abort)
/// (or dropping it unsealed) deletes it.
pub struct CreatedObject {
    client: Arc<Inner>,
    id: ObjectId,
    data: Region,
    metadata: Region,
    done: bool,
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
    /// reference: the returned buffers view the sealed object, which stays referenced in the
    /// store until the last of them (and of their clones) is dropped. What a caller needs whose
    /// views of the data outlive the seal (`pyarrow.plasma`'s `create` buffers do): without the
    /// reference, the store could evict the object and reuse its memory under them.
    pub fn seal_and_keep(self) -> ClientResult<ObjectBuffers> {
        let client = self.client.clone();
        let id = self.id;
        let (data, metadata) = (self.data.clone(), self.metadata.clone());
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
        let result = self.client.with_conn(|conn| {
            let reply = conn.call(
                &Message::SealRequest {
                    object_id: id,
                    digest: digest.to_vec(),
                },
                MessageType::SealReply,
                Some(self.client.options.request_timeout),
            )?;
            match reply {
                Message::SealReply { object_id, error } if object_id == id => {
                    status_error(error, id, 0)
                }
                other => Err(conn.fail(unexpected("SealReply for the sealed id", &other))),
            }
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
        let result = self.client.with_conn(|conn| {
            let reply = conn.call(
                &Message::AbortRequest { object_id: id },
                MessageType::AbortReply,
                Some(self.client.options.request_timeout),
            )?;
            match reply {
                Message::AbortReply { object_id } if object_id == id => Ok(()),
                other => Err(conn.fail(unexpected("AbortReply for the aborted id", &other))),
            }
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
        stream
            .set_write_timeout(Some(options.request_timeout))
            .map_err(ClientError::Io)?;
        let mut conn = Conn {
            stream,
            segments: HashMap::new(),
            broken: None,
            subscribed: false,
            read_timeout: None,
            request_timeout: options.request_timeout,
            reply_poll: options.reply_poll.min(Duration::from_secs(1)),
        };
        let capacity = match conn.call(
            &Message::ConnectRequest,
            MessageType::ConnectReply,
            Some(options.request_timeout),
        )? {
            Message::ConnectReply { memory_capacity } => memory_capacity,
            other => return Err(unexpected("ConnectReply", &other)),
        };
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
            let reply = conn.call(
                &Message::CreateRequest {
                    object_id: id,
                    evict_if_full: self.inner.options.evict_if_full,
                    data_size,
                    metadata_size,
                    device_num: 0,
                },
                MessageType::CreateReply,
                Some(timeout),
            )?;
            let Message::CreateReply {
                object_id,
                object,
                error,
                store_fd,
                mmap_size,
            } = reply
            else {
                return Err(conn.fail(unexpected("CreateReply", &reply)));
            };
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
            let data = Region::new(segment.clone(), object.data_offset, data_size);
            let meta = Region::new(segment, object.metadata_offset, metadata_size);
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
        let msg = Message::CreateAndSealRequest {
            object_id: id,
            evict_if_full: self.inner.options.evict_if_full,
            data: data.to_vec(),
            metadata: metadata.to_vec(),
            digest,
        };
        self.inner.with_conn(|conn| {
            match conn.call(&msg, MessageType::CreateAndSealReply, self.timeout())? {
                Message::CreateAndSealReply { error } => status_error(error, id, size),
                other => Err(conn.fail(unexpected("CreateAndSealReply", &other))),
            }
        })
    }

    /// Creates and seals several small objects in one request: all of them
    /// or none. Each entry is `(id, data, metadata)`.
    pub fn create_and_seal_batch(&self, objects: &[(ObjectId, &[u8], &[u8])]) -> ClientResult<()> {
        let size = objects
            .iter()
            .map(|(_, d, m)| (d.len() + m.len()) as u64)
            .sum();
        let msg = Message::CreateAndSealBatchRequest {
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
            match conn.call(&msg, MessageType::CreateAndSealBatchReply, self.timeout())? {
                Message::CreateAndSealBatchReply { error } => {
                    match status_error(error, first, size) {
                        // The batch reply names no object.
                        Err(ClientError::OutOfMemory { size, .. }) => {
                            Err(ClientError::OutOfMemory { id: None, size })
                        }
                        other => other,
                    }
                }
                other => Err(conn.fail(unexpected("CreateAndSealBatchReply", &other))),
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
        let msg = Message::GetRequest {
            object_ids: unique.to_vec(),
            timeout_ms,
        };
        self.inner.with_conn(|conn| {
            let reply = conn.call(&msg, MessageType::GetReply, read_timeout)?;
            let Message::GetReply {
                object_ids,
                objects,
                store_fds,
                mmap_sizes,
            } = reply
            else {
                return Err(conn.fail(unexpected("GetReply", &reply)));
            };
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
            match conn.call(
                &Message::ContainsRequest { object_id: id },
                MessageType::ContainsReply,
                self.timeout(),
            )? {
                Message::ContainsReply {
                    object_id,
                    has_object,
                } if object_id == id => Ok(has_object),
                other => Err(conn.fail(unexpected("ContainsReply for the id", &other))),
            }
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
            match conn.call(
                &Message::DeleteRequest {
                    object_ids: ids.to_vec(),
                },
                MessageType::DeleteReply,
                self.timeout(),
            )? {
                Message::DeleteReply { object_ids, errors } if object_ids.as_slice() == ids => {
                    Ok(errors
                        .into_iter()
                        .zip(ids)
                        .map(|(e, &id)| status_error(e, id, 0))
                        .collect())
                }
                other => Err(conn.fail(unexpected("DeleteReply for the ids", &other))),
            }
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
        self.inner.with_conn(|conn| {
            match conn.call(
                &Message::ListRequest,
                MessageType::ListReply,
                self.timeout(),
            )? {
                Message::ListReply { objects } => Ok(objects),
                other => Err(conn.fail(unexpected("ListReply", &other))),
            }
        })
    }

    /// Evicts unused objects, least recently released first, until at least
    /// `num_bytes` are freed; returns the bytes freed.
    pub fn evict(&self, num_bytes: u64) -> ClientResult<u64> {
        self.inner.with_conn(|conn| {
            match conn.call(
                &Message::EvictRequest { num_bytes },
                MessageType::EvictReply,
                self.timeout(),
            )? {
                Message::EvictReply { num_bytes } => Ok(num_bytes),
                other => Err(conn.fail(unexpected("EvictReply", &other))),
            }
        })
    }

    /// Marks unused objects as most recently used (protecting them from
    /// eviction for longer).
    pub fn refresh(&self, ids: &[ObjectId]) -> ClientResult<()> {
        self.inner.with_conn(|conn| {
            match conn.call(
                &Message::RefreshLruRequest {
                    object_ids: ids.to_vec(),
                },
                MessageType::RefreshLruReply,
                self.timeout(),
            )? {
                Message::RefreshLruReply => Ok(()),
                other => Err(conn.fail(unexpected("RefreshLRUReply", &other))),
            }
        })
    }

    /// Names this client and asks for a private memory quota; a refused
    /// quota is [`ClientError::OutOfMemory`].
    pub fn set_options(&self, client_name: &str, output_memory_quota: i64) -> ClientResult<()> {
        self.inner.with_conn(|conn| {
            match conn.call(
                &Message::SetOptionsRequest {
                    client_name: client_name.to_owned(),
                    output_memory_quota,
                },
                MessageType::SetOptionsReply,
                self.timeout(),
            )? {
                Message::SetOptionsReply { error: Status::Ok } => Ok(()),
                Message::SetOptionsReply {
                    error: Status::OutOfMemory,
                } => Err(ClientError::OutOfMemory {
                    id: None,
                    size: output_memory_quota.max(0) as u64,
                }),
                other => Err(conn.fail(unexpected("SetOptionsReply", &other))),
            }
        })
    }

    /// The store's debug text (its eviction policy state).
    pub fn debug_string(&self) -> ClientResult<String> {
        self.inner.with_conn(|conn| {
            match conn.call(
                &Message::GetDebugStringRequest,
                MessageType::GetDebugStringReply,
                self.timeout(),
            )? {
                Message::GetDebugStringReply { debug_string } => Ok(debug_string),
                other => Err(conn.fail(unexpected("GetDebugStringReply", &other))),
            }
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
            conn.send(&Message::SubscribeRequest)?;
            if let Err(e) = crate::fdpass::send_fd(conn.stream.as_fd(), theirs.as_fd()) {
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
