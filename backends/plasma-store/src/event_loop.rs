//! The workers that serve connections: a few threads (two per core) waiting on one epoll
//! set, each taking a ready connection, serving the frames it has sent, and putting it back.
//!
//! Why not a thread per connection: with a thousand busy clients, a thousand store threads
//! fight for the state lock; a thread preempted while holding it makes all the others queue,
//! and a woken waiter loses the lock again to the threads already running, so some clients
//! wait seconds while others go round hundreds of times. Here at most a few threads take the
//! lock, and the ready connections wait in the kernel's ready list, which epoll serves in
//! order (each connection is armed with `EPOLLONESHOT` and re-armed at the back once
//! served), so every client gets its turn.
//!
//! A worker never blocks on one client: a connection whose request must wait (a Get for an
//! object not sealed yet, external-store I/O, a frame larger than the read-ahead buffer) is
//! handed to a thread of its own for that request and comes back afterwards; replies a client
//! does not read are kept until its socket is writable. Workers sleep in `epoll_wait` and
//! never busy-poll: with this many clients a ready connection is usually waiting already, and
//! a poll would take a core the clients need (`--busy-poll` is for threads serving one
//! client).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::{EventfdFlags, eventfd};
use tensor_ipc_plasma_protocol::frame::read_frame;
use tensor_ipc_plasma_protocol::{AnyRequest, Error, MAX_MESSAGE_SIZE};

use crate::affinity::{self, FollowClient};
use crate::conn::{Buffered, Conn};
use crate::handlers::handle;
use crate::log;
use crate::sched::ThreadSlice;
use crate::server::{End, Shared};
use crate::state::ClientId;

/// The epoll data word of the wake-up eventfd (client ids start at 1).
const WAKER: u64 = 0;
/// Most events taken per `epoll_wait`: few, so that a worker preempted in the middle of a
/// batch holds few clients up (the other workers serve the rest).
const BATCH: usize = 16;

/// The epoll set of all connections waiting to be served, and an eventfd that wakes the
/// workers when the store stops.
pub(crate) struct EventLoop {
    epoll: OwnedFd,
    waker: OwnedFd,
}

impl EventLoop {
    pub(crate) fn new() -> std::io::Result<Self> {
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        let waker = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(&epoll, &waker, EventData::new_u64(WAKER), EventFlags::IN)?;
        Ok(Self { epoll, waker })
    }

    /// Starts watching a new connection's socket.
    pub(crate) fn watch(
        &self,
        socket: BorrowedFd<'_>,
        client: ClientId,
        interest: EventFlags,
    ) -> std::io::Result<()> {
        epoll::add(&self.epoll, socket, EventData::new_u64(client), interest)?;
        Ok(())
    }

    /// Arms a connection again once served, with [`interest`](Self::interest).
    pub(crate) fn rearm(
        &self,
        socket: BorrowedFd<'_>,
        client: ClientId,
        interest: EventFlags,
    ) -> std::io::Result<()> {
        epoll::modify(&self.epoll, socket, EventData::new_u64(client), interest)?;
        Ok(())
    }

    /// Stops watching a connection that is going away.
    pub(crate) fn forget(&self, socket: BorrowedFd<'_>) {
        let _ = epoll::delete(&self.epoll, socket);
    }

    /// What a new connection waits for: its first request.
    pub(crate) fn first_interest() -> EventFlags {
        EventFlags::IN | EventFlags::RDHUP | EventFlags::ONESHOT
    }

    /// What a served connection waits for: its next request, or room to send the replies it
    /// has not taken (then nothing else is read from it).
    pub(crate) fn interest(conn: &Conn) -> EventFlags {
        let wanted = if conn.has_pending() {
            EventFlags::OUT
        } else {
            EventFlags::IN
        };
        wanted | EventFlags::RDHUP | EventFlags::ONESHOT
    }

    /// Wakes every worker for good (the store is stopping).
    pub(crate) fn wake_all(&self) {
        let _ = rustix::io::write(&self.waker, &1u64.to_ne_bytes());
    }
}

/// How many workers serve connections: two per core, so that a worker preempted by a client
/// process (the clients run on the same cores) leaves others to serve.
pub(crate) fn worker_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).clamp(2, 32)
}

/// A worker: serves ready connections until the store stops.
pub(crate) fn run_worker(shared: &Arc<Shared>) {
    let mut events = Vec::with_capacity(BATCH);
    while !shared.is_stopping() {
        events.clear();
        match epoll::wait(&shared.events.epoll, spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                log(&format!("epoll_wait failed: {e}"));
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        }
        for event in &events {
            let client = event.data.u64();
            if client != WAKER {
                serve_ready(shared, client);
            }
        }
    }
}

/// Serves a connection epoll reported ready, then gives it back to the epoll set (or, now
/// that few clients are connected, to a thread of its own).
fn serve_ready(shared: &Arc<Shared>, client: ClientId) {
    let Some(mut conn) = shared.take_conn(client) else {
        return;
    };
    match serve_buffered(shared, &mut conn) {
        Ok(Next::Wait) if shared.few_clients() && !conn.has_pending() => {
            to_thread(shared, conn, None)
        }
        Ok(Next::Wait) => shared.put_back(conn),
        Ok(Next::Thread(request)) => to_thread(shared, conn, request),
        Err(end) => shared.finish(&conn, end),
    }
}

/// What becomes of a connection after a worker served what it had sent.
enum Next {
    /// Back to the epoll set, for more bytes or room to send.
    Wait,
    /// To a thread of its own, for a request that must wait (or for a large frame when
    /// `None`).
    Thread(Option<AnyRequest>),
}

/// Sends pending replies, reads what arrived, and serves each complete frame, never
/// blocking.
fn serve_buffered(shared: &Shared, conn: &mut Conn) -> Result<Next, End> {
    if conn.has_pending() && !conn.flush()? {
        return Ok(Next::Wait);
    }
    conn.fill()?;
    loop {
        match conn.buffered() {
            Buffered::Partial => break,
            Buffered::Large => return Ok(Next::Thread(None)),
            Buffered::Frame => {}
        }
        let request = next_request(conn)?;
        match handle(shared, conn, request) {
            Ok(()) => {}
            Err(End::Blocked(request)) => return Ok(Next::Thread(Some(*request))),
            Err(end) => return Err(end),
        }
        if conn.has_pending() {
            // The client is not reading: its next requests wait until it does.
            return Ok(Next::Wait);
        }
    }
    if conn.at_eof() {
        return Err(if conn.mid_frame() {
            End::Violation("connection closed in the middle of a frame".into())
        } else {
            End::Closed
        });
    }
    Ok(Next::Wait)
}

/// Reads and decodes the next frame.
fn next_request(conn: &mut Conn) -> Result<AnyRequest, End> {
    let frame = match read_frame(conn, MAX_MESSAGE_SIZE) {
        Ok(frame) => frame,
        Err(Error::Closed) => return Err(End::Closed),
        Err(e) => return Err(End::Violation(e.to_string())),
    };
    AnyRequest::decode(frame.kind, &frame.body).map_err(|e| End::Violation(e.to_string()))
}

/// Serves a connection on a thread of its own, where it may block: `request` (one that must
/// wait) and the frames buffered behind it, reading a large one whole; then, as long as few
/// clients are connected, every next request as it comes (busy-polling for it briefly before
/// sleeping); then it gives the connection back to the workers.
pub(crate) fn to_thread(shared: &Arc<Shared>, mut conn: Box<Conn>, request: Option<AnyRequest>) {
    let client = conn.client;
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name(format!("plasma-client-{client}"))
        .spawn(move || {
            conn.set_may_block(true);
            let served = serve_on_thread(&worker, &mut conn, request);
            conn.set_may_block(false);
            match served {
                Ok(()) => worker.put_back(conn),
                Err(end) => worker.finish(&conn, end),
            }
        });
    if let Err(e) = spawned {
        // The connection was dropped with the closure (closing its socket, which leaves the
        // epoll set with it): only its state is left to clean up.
        log(&format!(
            "cannot start a thread for client {client}: {e}; disconnecting it"
        ));
        shared.remove_client(client);
    }
}

/// Whether no core is likely idle: the clients alone are more than the cores, or busy-polling
/// saw other processes' work lately.
fn cores_full(shared: &Shared, few_per_core: bool) -> bool {
    !few_per_core
        || shared
            .polling
            .poller
            .contended_within(affinity::BUSY_WINDOW)
}

fn serve_on_thread(
    shared: &Shared,
    conn: &mut Conn,
    request: Option<AnyRequest>,
) -> Result<(), End> {
    let mut slice = ThreadSlice::new(shared.time_slice);
    let mut follow = FollowClient::new();
    if let Some(request) = request {
        handle(shared, conn, request)?;
    }
    loop {
        let buffered = matches!(conn.buffered(), Buffered::Frame | Buffered::Large);
        if !buffered && (!shared.few_clients() || shared.is_stopping()) {
            return Ok(());
        }
        let few_per_core = shared.at_most_one_client_per_core();
        slice.set(few_per_core);
        if shared.follow_clients {
            follow.update(conn.socket(), cores_full(shared, few_per_core));
        }
        // Polling only while waiting for a new request (a client trickling a frame byte by
        // byte cannot keep the store polling), and only with at most one client per core:
        // with more, the clients fill the cores and a polling thread takes a core from them.
        conn.set_may_poll(!buffered && few_per_core);
        let request = next_request(conn)?;
        handle(shared, conn, request)?;
    }
}
