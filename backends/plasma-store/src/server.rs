//! What all the store's threads share: the state behind one mutex, the condition variable
//! waiting requests sleep on, the table of connections, and the accept loop that fills it.
//! The workers that serve the connections are in [`crate::event_loop`].

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tensor_ipc_plasma_protocol::poll::Poller;
use tensor_ipc_plasma_protocol::{AnyRequest, Status};

use crate::conn::Conn;
use crate::event_loop::{EventLoop, to_thread};
use crate::spill::run_external_io;
use crate::state::{ClientId, State};
use crate::{MAX_CLIENTS, RateLimitedLog, log};

/// A connection in the table: its socket (to shut it down when the store stops) and, while
/// it waits in the epoll set, the connection itself (taken by whoever serves it).
struct Slot {
    stream: Arc<UnixStream>,
    conn: Option<Box<Conn>>,
}

/// State shared by all threads of one store.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) sealed: Condvar,
    /// Wakes the external-store thread when work is queued (with the state mutex).
    pub(crate) io_queued: Condvar,
    pub(crate) stopping: AtomicBool,
    clients: Mutex<HashMap<ClientId, Slot>>,
    next_client: AtomicU64,
    pub(crate) verbose: bool,
    /// Requests currently waiting on `sealed` (so seals skip a useless wake-up).
    pub(crate) waiters: AtomicUsize,
    /// The busy-polling of connections on threads of their own.
    pub(crate) polling: Arc<Polling>,
    /// Clients connected (the table's size, read without its lock).
    connected: AtomicUsize,
    /// Up to this many clients, each is served on a thread of its own.
    max_dedicated: usize,
    /// The time slice serving threads ask for while few clients are connected.
    pub(crate) time_slice: Duration,
    /// Whether serving threads keep to their client's CPU while the cores are full.
    pub(crate) follow_clients: bool,
    cores: usize,
    pub(crate) events: EventLoop,
}

/// How a store serves its clients (from [`crate::StoreBuilder`]).
pub(crate) struct Config {
    pub(crate) verbose: bool,
    pub(crate) busy_poll: Duration,
    pub(crate) time_slice: Duration,
    pub(crate) follow_clients: bool,
    pub(crate) dedicated_clients: usize,
}

impl Shared {
    pub(crate) fn new(state: State, config: Config) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let verbose = config.verbose;
        Ok(Self {
            polling: Arc::new(Polling {
                poller: Poller::new(config.busy_poll),
                pollers: AtomicUsize::new(0),
                max_pollers: (cores / 2).max(1),
            }),
            connected: AtomicUsize::new(0),
            max_dedicated: config.dedicated_clients,
            time_slice: config.time_slice,
            follow_clients: config.follow_clients,
            cores,
            state: Mutex::new(state),
            sealed: Condvar::new(),
            io_queued: Condvar::new(),
            stopping: AtomicBool::new(false),
            clients: Mutex::default(),
            next_client: AtomicU64::new(1),
            verbose,
            waiters: AtomicUsize::new(0),
            events: EventLoop::new()?,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<ClientId, Slot>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of connected clients.
    pub(crate) fn client_count(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Whether few enough clients are connected for each to have a thread of its own.
    pub(crate) fn few_clients(&self) -> bool {
        self.client_count() <= self.max_dedicated
    }

    /// Whether at most one client per core is connected: only then does a serving thread
    /// have the short time slice (see [`crate::sched::ThreadSlice`]) and busy-poll; with more,
    /// the store's own clients fill the cores.
    pub(crate) fn at_most_one_client_per_core(&self) -> bool {
        self.client_count() <= self.cores
    }

    /// Shuts every client's socket down (the store is stopping).
    pub(crate) fn disconnect_all(&self) {
        for slot in self.clients().values() {
            let _ = slot.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Takes a connection epoll reported ready out of the table, to serve it.
    pub(crate) fn take_conn(&self, client: ClientId) -> Option<Box<Conn>> {
        self.clients().get_mut(&client)?.conn.take()
    }

    /// Puts a served connection back and arms it again.
    pub(crate) fn put_back(&self, mut conn: Box<Conn>) {
        let client = conn.client;
        let mut clients = self.clients();
        let Some(slot) = clients.get_mut(&client) else {
            return;
        };
        let stream = Arc::clone(&slot.stream);
        let interest = EventLoop::interest(&conn);
        let watched = std::mem::replace(&mut conn.watched, true);
        slot.conn = Some(conn);
        drop(clients);
        // Armed only once it is back in the table, so the worker the event goes to finds it.
        let armed = if watched {
            self.events.rearm(stream.as_fd(), client, interest)
        } else {
            self.events.watch(stream.as_fd(), client, interest)
        };
        if let Err(e) = armed {
            log(&format!("cannot watch client {client} again: {e}"));
            if let Some(conn) = self.take_conn(client) {
                self.finish(&conn, End::Closed);
            }
        }
    }

    /// Ends a connection (which the caller then drops, closing its socket): logs why, drops the
    /// client's references, forgets it.
    pub(crate) fn finish(&self, conn: &Conn, end: End) {
        match end {
            End::Violation(why) => log(&format!("disconnecting client {}: {why}", conn.client)),
            End::Blocked(_) | End::Closed if self.verbose => {
                log(&format!("client {} disconnected", conn.client))
            }
            End::Blocked(_) | End::Closed => {}
        }
        self.events.forget(conn.socket());
        self.remove_client(conn.client);
    }

    /// Drops a client's references and its table entry (closing its socket once the
    /// connection itself is dropped too).
    pub(crate) fn remove_client(&self, client: ClientId) {
        self.lock().disconnect(client);
        if self.clients().remove(&client).is_some() {
            self.connected.fetch_sub(1, Ordering::Relaxed);
        }
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
    ///
    /// Unless it `may_block`, `Err(None)` instead of doing or waiting for that work: the
    /// request goes to a thread of its own and runs again there.
    pub(crate) fn with_space<T>(
        &self,
        may_block: bool,
        mut allocating: impl FnMut(&mut State) -> Result<T, Status>,
    ) -> Result<T, Option<Status>> {
        let deadline = Instant::now() + SPILL_WAIT;
        loop {
            let mut state = self.lock();
            let result = allocating(&mut state);
            let retry = matches!(result, Err(Status::OutOfMemory)) && state.external_io_pending();
            drop(state);
            if !may_block {
                self.kick_external_io();
                return match result {
                    Err(_) if retry => Err(None),
                    other => other.map_err(Some),
                };
            }
            let progress = run_external_io(self);
            if !retry {
                return result.map_err(Some);
            }
            if progress || self.wait_for_spills(deadline) {
                continue;
            }
            return result.map_err(Some);
        }
    }

    /// Does the external-store work a request queued: itself on a connection that may
    /// block, otherwise on the external-store thread.
    pub(crate) fn external_io(&self, conn: &Conn) {
        if conn.may_block() {
            run_external_io(self);
        } else {
            self.kick_external_io();
        }
    }

    /// Wakes the external-store thread (if there is work for it).
    pub(crate) fn kick_external_io(&self) {
        self.io_queued.notify_one();
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

/// Why a connection's serving stopped.
pub(crate) enum End {
    /// The client hung up.
    Closed,
    /// The client broke the protocol (or its socket failed): it is disconnected.
    Violation(String),
    /// The request must wait, which the event loop never does: it runs again on a thread
    /// of its own. Handlers return it before changing anything.
    Blocked(Box<AnyRequest>),
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> Self {
        End::Violation(format!("socket error: {e}"))
    }
}

impl From<tensor_ipc_plasma_protocol::Error> for End {
    fn from(e: tensor_ipc_plasma_protocol::Error) -> Self {
        match e {
            tensor_ipc_plasma_protocol::Error::Closed => End::Closed,
            e => End::Violation(e.to_string()),
        }
    }
}

/// Accepts connections until the store stops, refusing them at once (with a log line) when
/// [`MAX_CLIENTS`] are connected or the process is out of file descriptors.
pub(crate) fn accept_loop(shared: Arc<Shared>, listener: UnixListener) {
    let mut spare = Spare::open();
    let mut refusals = RateLimitedLog::default();
    while !shared.is_stopping() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if is_out_of_descriptors(&e) => {
                // The one spare descriptor makes room to take the client off the backlog
                // and close it, instead of leaving it waiting with no answer.
                if spare.release() {
                    if let Ok((stream, _)) = listener.accept() {
                        drop(stream);
                        refusals.note(&format!("refusing a client: out of file descriptors ({e})"));
                    }
                    spare = Spare::open();
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.is_stopping() {
            break;
        }
        if shared.client_count() >= MAX_CLIENTS {
            refusals.note(&format!(
                "refusing a client: {MAX_CLIENTS} clients connected"
            ));
            continue;
        }
        let client = shared.next_client.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(stream);
        let mut conn = Box::new(Conn::new(
            client,
            Arc::clone(&stream),
            Arc::clone(&shared.polling),
        ));
        shared.connected.fetch_add(1, Ordering::Relaxed);
        if shared.few_clients() {
            shared.clients().insert(client, Slot { stream, conn: None });
            to_thread(&shared, conn, None);
            continue;
        }
        conn.watched = true;
        shared.clients().insert(
            client,
            Slot {
                stream: Arc::clone(&stream),
                conn: Some(conn),
            },
        );
        // Watched only once it is in the table, so the worker the first event goes to finds it.
        if let Err(e) = shared
            .events
            .watch(stream.as_fd(), client, EventLoop::first_interest())
        {
            refusals.note(&format!("refusing a client: cannot watch its socket ({e})"));
            shared.remove_client(client);
        }
    }
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    let errno = e.raw_os_error();
    errno == Some(rustix::io::Errno::MFILE.raw_os_error())
        || errno == Some(rustix::io::Errno::NFILE.raw_os_error())
}

/// A descriptor kept open for the moment the process has none left.
struct Spare(Option<OwnedFd>);

impl Spare {
    fn open() -> Self {
        Self(
            rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok(),
        )
    }

    /// Closes the spare; false if there was none.
    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }
}

/// Busy-polling: how a connection on a thread of its own polls its socket for the client's
/// next request before sleeping (one [`Poller`] for the store, which backs off while the CPU
/// is contended: contention is the machine's), and how many may poll at once (half the
/// cores).
pub(crate) struct Polling {
    pub(crate) poller: Poller,
    pollers: AtomicUsize,
    max_pollers: usize,
}

impl Polling {
    /// One of the polling slots, if this store polls, is not backing off, and one is free;
    /// given back on drop.
    pub(crate) fn slot(&self) -> Option<PollSlot<'_>> {
        if self.poller.period().is_zero() || self.poller.backing_off() {
            return None;
        }
        let mut now = self.pollers.load(Ordering::Relaxed);
        while now < self.max_pollers {
            match self.pollers.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(PollSlot(&self.pollers)),
                Err(seen) => now = seen,
            }
        }
        None
    }
}

/// A taken busy-polling slot.
pub(crate) struct PollSlot<'a>(&'a AtomicUsize);

impl Drop for PollSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
