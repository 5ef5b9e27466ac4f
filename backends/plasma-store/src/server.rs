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
use tensor_ipc_plasma_protocol::fdpass::{recv_with_fds_flags, send_fd};
use tensor_ipc_plasma_protocol::frame::{read_frame, send_all};
use tensor_ipc_plasma_protocol::poll::busy_poll;
use tensor_ipc_plasma_protocol::{AnyRequest, Error, MAX_MESSAGE_SIZE, Message, Status};

use crate::handlers::handle;
use crate::spill::run_external_io;
use crate::state::{ClientId, State};
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
    pub(crate) waiters: AtomicUsize,
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

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes waiting requests after objects were sealed or memory was freed. A waiter
    /// registers while holding the state lock, before it sleeps, so a change made under that
    /// lock afterwards always sees it.
    pub(crate) fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.sealed.notify_all();
        }
    }

    /// Sleeps on the state for at most `wait` (or until woken), giving the lock back.
    pub(crate) fn wait<'a>(
        &self,
        state: MutexGuard<'a, State>,
        wait: Duration,
    ) -> MutexGuard<'a, State> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let state = self
            .sealed
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        state
    }

    /// Whether the store is shutting down.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Runs `allocating` (a request that needs memory) under the lock. When it ran out of
    /// memory while evicted objects are on their way to the external store, does that work
    /// (without the lock), or waits for the request doing it, and runs `allocating` again as
    /// long as memory is being freed. The work it queued is always done before it returns.
    pub(crate) fn with_space<T>(
        &self,
        mut allocating: impl FnMut(&mut State) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let deadline = Instant::now() + SPILL_WAIT;
        loop {
            let mut state = self.lock();
            let result = allocating(&mut state);
            let retry = matches!(result, Err(Status::OutOfMemory)) && state.external_io_pending();
            drop(state);
            let progress = run_external_io(self);
            if !retry {
                return result;
            }
            if progress || self.wait_for_spills(deadline) {
                continue;
            }
            return result;
        }
    }

    /// Waits (until `deadline`) for spills other requests are doing; true if there were some
    /// and they have all reported.
    fn wait_for_spills(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        if !state.external_io_pending() {
            return false;
        }
        while state.external_io_pending() {
            let now = Instant::now();
            if now >= deadline || self.is_stopping() {
                return false;
            }
            state = self.wait(state, (deadline - now).min(Duration::from_millis(100)));
        }
        true
    }
}

/// Longest a request waits for other requests' spills to make room for it.
const SPILL_WAIT: Duration = Duration::from_secs(60);

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
pub(crate) struct Conn<'s> {
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

    /// Sends one reply (never raising SIGPIPE).
    pub(crate) fn send<M: Message>(&mut self, message: &M) -> io::Result<()> {
        send_all(&self.stream, &message.encode_frame())
    }

    /// Sends the segment fd if this connection has not seen it yet.
    pub(crate) fn send_segment(&mut self, shared: &Shared, key: i32) -> io::Result<()> {
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
    pub(crate) fn recv_fd(&mut self) -> Result<OwnedFd, Error> {
        let mut byte = [0u8; 1];
        if self.read(&mut byte)? == 0 {
            return Err(Error::Closed);
        }
        self.fds.pop().ok_or(Error::FdCount { count: 0 })
    }

    pub(crate) fn peer_gone(&self) -> bool {
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
pub(crate) enum End {
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
        let request = match AnyRequest::decode(frame.kind, &frame.body) {
            Ok(r) => r,
            Err(e) => break End::Violation(e.to_string()),
        };
        if let Err(end) = handle(shared, &mut conn, client, request) {
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
