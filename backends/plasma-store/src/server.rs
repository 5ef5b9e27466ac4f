//! Connections: one thread per client, the state behind one mutex, and a
//! condition variable that wakes waiting Gets when objects are sealed.
//!
//! Each connection reads through its own buffer (one `recvmsg` usually brings a
//! whole request, often two), and after a reply it busy-polls its socket for a
//! short while before sleeping: a client's next request usually follows within
//! microseconds, and catching it awake saves the store a cross-CPU wake-up.
//! The poll yields the CPU on every turn, and only half the cores may poll at
//! once, so clients are never starved of CPU by it.

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;
use tensor_ipc_plasma::fdpass::{recv_with_fds_flags, send_fd};
use tensor_ipc_plasma::frame::read_frame;
use tensor_ipc_plasma::poll::busy_poll;
use tensor_ipc_plasma::{Error, MAX_MESSAGE_SIZE, Message, ObjectId, ObjectSpec, Status};

use crate::notify::Subscriber;
use crate::state::{BatchItem, ClientId, State};
use crate::{MAX_CLIENTS, log};

/// State shared by all threads of one store.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) sealed: Condvar,
    pub(crate) stopping: AtomicBool,
    pub(crate) clients: Mutex<std::collections::HashMap<ClientId, UnixStream>>,
    next_client: AtomicU64,
    pub(crate) verbose: bool,
    /// Gets currently waiting on `sealed` (so seals skip a useless wake-up).
    waiters: AtomicUsize,
    /// How long a connection busy-polls for its next request before sleeping.
    busy_poll: Duration,
    /// Connections busy-polling right now, and how many may at once.
    pollers: AtomicUsize,
    max_pollers: usize,
}

impl Shared {
    pub(crate) fn new(state: State, verbose: bool, busy_poll: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            busy_poll,
            pollers: AtomicUsize::new(0),
            max_pollers: (cores / 2).max(1),
            state: Mutex::new(state),
            sealed: Condvar::new(),
            stopping: AtomicBool::new(false),
            clients: Mutex::default(),
            next_client: AtomicU64::new(1),
            verbose,
            waiters: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes waiting Gets after objects were sealed. A waiter registers
    /// while holding the state lock, before it sleeps, so a seal made under
    /// that lock afterwards always sees it.
    fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.sealed.notify_all();
        }
    }
}

/// Accepts connections until the store stops.
pub(crate) fn accept_loop(shared: Arc<Shared>, listener: UnixListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // EMFILE and friends: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let id = shared.next_client.fetch_add(1, Ordering::Relaxed);
        {
            let mut clients = shared.clients.lock().unwrap_or_else(|e| e.into_inner());
            if clients.len() >= MAX_CLIENTS {
                log(&format!(
                    "refusing a client: {MAX_CLIENTS} clients connected"
                ));
                continue;
            }
            if let Ok(clone) = stream.try_clone() {
                clients.insert(id, clone);
            }
        }
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("plasma-client-{id}"))
            .spawn(move || serve(&worker, stream, id));
        if spawned.is_err() {
            shared
                .clients
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

/// A taken busy-polling slot.
struct PollSlot<'a>(&'a AtomicUsize);

impl Drop for PollSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One of the store's busy-polling slots, if one is free; given back on drop.
fn busy_poll_slot(shared: &Shared) -> Option<PollSlot<'_>> {
    let pollers = &shared.pollers;
    let mut now = pollers.load(Ordering::Relaxed);
    while now < shared.max_pollers {
        match pollers.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Some(PollSlot(pollers)),
            Err(seen) => now = seen,
        }
    }
    None
}

/// Bytes a connection reads ahead of the frame it is parsing.
const READ_BUFFER: usize = 16 << 10;

/// One client connection.
struct Conn<'s> {
    shared: &'s Shared,
    stream: UnixStream,
    /// Descriptors that arrived with frame bytes (only Subscribe expects one).
    fds: Vec<OwnedFd>,
    /// Segments whose fd this connection has been sent.
    sent_segments: HashSet<i32>,
    /// Bytes received but not parsed yet: `buffer[start..end]`.
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// Whether the next wait may busy-poll: only the first wait for a new
    /// request, so a client trickling a frame byte by byte cannot keep the
    /// store polling.
    may_poll: bool,
}

impl Read for Conn<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if out.len() >= self.buffer.len() {
                // A large body: straight into its destination.
                return self.recv(out);
            }
            let mut buffer = std::mem::take(&mut self.buffer);
            let got = self.recv(&mut buffer);
            self.buffer = buffer;
            (self.start, self.end) = (0, got?);
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Conn<'_> {
    /// One `recvmsg` into `out` that waits for data: first by busy-polling
    /// (when this store polls and a polling slot is free), then asleep.
    fn recv(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let shared = self.shared;
        let may_poll = std::mem::take(&mut self.may_poll);
        // The polling slot is held while the poll runs, and given back before sleeping.
        if may_poll
            && !shared.busy_poll.is_zero()
            && let Some(_slot) = busy_poll_slot(shared)
            && let Some(got) = busy_poll(shared.busy_poll, || {
                self.recv_once(out, RecvFlags::DONTWAIT)
            })
        {
            return got;
        }
        self.recv_once(out, RecvFlags::empty())
    }

    fn recv_once(&mut self, out: &mut [u8], flags: RecvFlags) -> io::Result<usize> {
        let n = recv_with_fds_flags(self.stream.as_fd(), out, &mut self.fds, flags)?;
        // Never hoard descriptors a client pushes at us: keep only the newest,
        // the one that came with the bytes just read.
        if self.fds.len() > 1 {
            self.fds.drain(..self.fds.len() - 1);
        }
        Ok(n)
    }

    fn send(&mut self, message: &Message) -> io::Result<()> {
        let bytes = message.encode_frame();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            match rustix::net::send(&self.stream, rest, rustix::net::SendFlags::NOSIGNAL) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sends the segment fd if this connection has not seen it yet.
    fn send_segment(&mut self, shared: &Shared, key: i32) -> io::Result<()> {
        if self.sent_segments.insert(key) {
            let state = shared.lock();
            let segment = Arc::clone(state.segment());
            drop(state);
            send_fd(self.stream.as_fd(), segment.fd())?;
        }
        Ok(())
    }

    /// Receives the descriptor that follows a Subscribe request: it travels
    /// with a 1-byte message, which may already sit in the read buffer.
    fn recv_fd(&mut self) -> Result<OwnedFd, Error> {
        let mut byte = [0u8; 1];
        if self.read(&mut byte)? == 0 {
            return Err(Error::Closed);
        }
        self.fds.pop().ok_or(Error::FdCount { count: 0 })
    }

    fn peer_gone(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::new(&self.stream, PollFlags::RDHUP)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
            Err(_) => true,
        }
    }
}

/// Why a connection ended.
enum End {
    Closed,
    Violation(String),
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Violation(format!("socket error: {e}"))
    }
}

fn serve(shared: &Arc<Shared>, stream: UnixStream, client: ClientId) {
    let mut conn = Conn {
        shared,
        stream,
        fds: Vec::new(),
        sent_segments: HashSet::new(),
        buffer: vec![0u8; READ_BUFFER].into_boxed_slice(),
        start: 0,
        end: 0,
        may_poll: false,
    };
    let end = loop {
        if shared.stopping.load(Ordering::SeqCst) {
            break End::Closed;
        }
        if conn.start == conn.end {
            // Nothing is pending that a descriptor could belong to.
            conn.fds.clear();
        }
        conn.may_poll = true;
        let frame = match read_frame(&mut conn, MAX_MESSAGE_SIZE) {
            Ok(frame) => frame,
            Err(Error::Closed) => break End::Closed,
            Err(e) => break End::Violation(e.to_string()),
        };
        let message = match Message::decode(frame.kind, &frame.body) {
            Ok(m) => m,
            Err(e) => break End::Violation(e.to_string()),
        };
        if let Err(end) = handle(shared, &mut conn, client, message) {
            break end;
        }
    };
    if let End::Violation(why) = end {
        log(&format!("disconnecting client {client}: {why}"));
    } else if shared.verbose {
        log(&format!("client {client} disconnected"));
    }
    shared.lock().disconnect(client);
    shared
        .clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&client);
}

fn bad_digest(digest: &[u8]) -> bool {
    digest.len() != 8
}

fn handle(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    message: Message,
) -> Result<(), End> {
    match message {
        Message::ConnectRequest => {
            let capacity = shared.lock().capacity();
            conn.send(&Message::ConnectReply {
                memory_capacity: i64::try_from(capacity).unwrap_or(i64::MAX),
            })?;
        }
        Message::CreateRequest {
            object_id,
            evict_if_full,
            data_size,
            metadata_size,
            device_num,
        } => {
            let mut state = shared.lock();
            let result = state.create(
                client,
                object_id,
                data_size,
                metadata_size,
                device_num,
                evict_if_full,
            );
            let (mmap_size, key) = (state.segment().len() + 8, state.segment().key());
            drop(state);
            match result {
                Ok(object) => {
                    conn.send(&Message::CreateReply {
                        object_id,
                        object,
                        error: Status::Ok,
                        store_fd: key,
                        mmap_size: i64::try_from(mmap_size).unwrap_or(i64::MAX),
                    })?;
                    conn.send_segment(shared, key)?;
                }
                Err(error) => conn.send(&Message::CreateReply {
                    object_id,
                    object: ObjectSpec::default(),
                    error,
                    store_fd: 0,
                    mmap_size: 0,
                })?,
            }
        }
        Message::CreateAndSealRequest {
            object_id,
            evict_if_full,
            data,
            metadata,
            digest,
        } => {
            if bad_digest(&digest) {
                return Err(End::Violation(format!("digest of {} bytes", digest.len())));
            }
            let error = shared.lock().create_and_seal(
                client,
                object_id,
                evict_if_full,
                &data,
                &metadata,
                &digest,
            );
            shared.wake_waiters();
            conn.send(&Message::CreateAndSealReply { error })?;
        }
        Message::CreateAndSealBatchRequest {
            object_ids,
            evict_if_full,
            data,
            metadata,
            digest,
        } => {
            if let Some(d) = digest.iter().find(|d| bad_digest(d)) {
                return Err(End::Violation(format!("digest of {} bytes", d.len())));
            }
            let items: Vec<BatchItem<'_>> = object_ids
                .iter()
                .zip(&data)
                .zip(&metadata)
                .zip(&digest)
                .map(|(((id, d), m), g)| (*id, &d[..], &m[..], &g[..]))
                .collect();
            let error = shared
                .lock()
                .create_and_seal_batch(client, &items, evict_if_full);
            shared.wake_waiters();
            conn.send(&Message::CreateAndSealBatchReply { error })?;
        }
        Message::AbortRequest { object_id } => {
            let result = shared.lock().abort(client, &object_id);
            match result {
                Ok(()) => conn.send(&Message::AbortReply { object_id })?,
                Err(v) => {
                    return Err(End::Violation(format!("abort of {object_id}: {v:?}")));
                }
            }
        }
        Message::SealRequest { object_id, digest } => {
            if bad_digest(&digest) {
                return Err(End::Violation(format!("digest of {} bytes", digest.len())));
            }
            let result = shared.lock().seal(&object_id, &digest);
            shared.wake_waiters();
            let error = result.err().unwrap_or(Status::Ok);
            conn.send(&Message::SealReply { object_id, error })?;
        }
        Message::GetRequest {
            object_ids,
            timeout_ms,
        } => get(shared, conn, client, object_ids, timeout_ms)?,
        Message::ReleaseRequest { object_id } => {
            if !shared.lock().release(client, &object_id) && shared.verbose {
                log(&format!(
                    "client {client} released {object_id} it does not hold; ignored"
                ));
            }
        }
        Message::DeleteRequest { object_ids } => {
            let errors = shared.lock().delete(&object_ids);
            conn.send(&Message::DeleteReply { object_ids, errors })?;
        }
        Message::ContainsRequest { object_id } => {
            let has_object = shared.lock().contains(&object_id);
            conn.send(&Message::ContainsReply {
                object_id,
                has_object,
            })?;
        }
        Message::ListRequest => {
            let objects = shared.lock().list();
            conn.send(&Message::ListReply { objects })?;
        }
        Message::EvictRequest { num_bytes } => {
            let num_bytes = shared.lock().evict(num_bytes);
            conn.send(&Message::EvictReply { num_bytes })?;
        }
        Message::RefreshLruRequest { object_ids } => {
            shared.lock().refresh_lru(&object_ids);
            conn.send(&Message::RefreshLruReply)?;
        }
        Message::SubscribeRequest => {
            let fd = conn
                .recv_fd()
                .map_err(|e| End::Violation(format!("subscribe: {e}")))?;
            let sub = Subscriber::start(fd);
            if !shared.lock().subscribe(client, Arc::clone(&sub)) {
                // A second subscription: its socket is closed, the first stays.
                sub.close();
            }
        }
        Message::SetOptionsRequest {
            client_name,
            output_memory_quota,
        } => {
            let error = shared
                .lock()
                .set_options(client, client_name, output_memory_quota);
            conn.send(&Message::SetOptionsReply { error })?;
        }
        Message::GetDebugStringRequest => {
            let debug_string = shared.lock().debug_string();
            conn.send(&Message::GetDebugStringReply { debug_string })?;
        }
        other => {
            return Err(End::Violation(format!(
                "unexpected message {:?}",
                other.kind()
            )));
        }
    }
    Ok(())
}

/// Longest a waiting Get sleeps before checking whether its client hung up.
const HANGUP_POLL: Duration = Duration::from_millis(100);

fn get(
    shared: &Shared,
    conn: &mut Conn<'_>,
    client: ClientId,
    object_ids: Vec<ObjectId>,
    timeout_ms: i64,
) -> Result<(), End> {
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
    let mut found: std::collections::HashMap<ObjectId, ObjectSpec> = Default::default();
    let mut state = shared.lock();
    loop {
        for id in &distinct {
            if !found.contains_key(id)
                && let Some(spec) = state.get(client, id)
            {
                found.insert(*id, spec);
            }
        }
        if found.len() == distinct.len() || timeout_ms == 0 {
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
        shared.waiters.fetch_add(1, Ordering::SeqCst);
        state = shared
            .sealed
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        shared.waiters.fetch_sub(1, Ordering::SeqCst);
        if shared.stopping.load(Ordering::SeqCst) || conn.peer_gone() {
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
    conn.send(&Message::GetReply {
        object_ids,
        objects,
        store_fds: store_fds.clone(),
        mmap_sizes,
    })?;
    for key in store_fds {
        conn.send_segment(shared, key)?;
    }
    Ok(())
}
