//! `plasma-store`: a Plasma object store that Apache Arrow 11's own clients
//! (`libplasma`, `pyarrow.plasma`) use unchanged.
//!
//! Start one inside a process with [`StoreBuilder`]:
//!
//! ```no_run
//! let store = tensor_ipc_plasma_store::StoreBuilder::new()
//!     .socket("/tmp/my-plasma.sock")
//!     .memory(100_000_000)
//!     .spawn()?;
//! println!("serving on {}", store.socket_path().display());
//! store.shutdown();
//! # Ok::<(), tensor_ipc_plasma_store::StoreError>(())
//! ```
//!
//! A few worker threads (two per core) serve all connections from one epoll set, in turn; a
//! request that must wait (a Get for an object not sealed yet, external-store I/O, a frame
//! larger than the read-ahead buffer) gets a thread of its own for that time, so a client
//! that sends half a frame and goes silent stalls nobody. The store state sits behind one
//! mutex. Limits: [`MAX_CLIENTS`], [`MAX_OBJECTS`],
//! [`MAX_SUBSCRIBER_QUEUE`], [`MAX_MEMORY`], and the protocol crate's
//! [`tensor_ipc_plasma_protocol::MAX_MESSAGE_SIZE`] and
//! [`tensor_ipc_plasma_protocol::MAX_IDS_PER_REQUEST`].

mod affinity;
pub mod cli;
mod conn;
mod event_loop;
mod external;
mod handlers;
mod notify;
mod sched;
mod segment;
mod server;
mod spill;
mod state;
mod writethrough;

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

pub use external::{
    ExternalStore, FileStore, HashTableStore, ObjectStoreExternal, SPILL_HEADER, SPILL_MAGIC,
    SPILL_VERSION, StoredObject,
};

/// Most simultaneous client connections; more are refused (closed).
pub const MAX_CLIENTS: usize = 4096;
/// Most objects resident in shared memory at once.
pub const MAX_OBJECTS: u32 = 1 << 20;
/// Most notification messages queued for one subscriber that does not read;
/// beyond it the subscription is dropped and its socket closed.
pub const MAX_SUBSCRIBER_QUEUE: usize = 1 << 17;
/// Default bound of the memory all subscribers' notification queues hold together (see
/// [`StoreBuilder::notification_memory`]): 256 MiB.
pub const DEFAULT_NOTIFICATION_MEMORY: usize = 256 << 20;
/// Largest accepted capacity (`-m`): 200 GiB.
pub const MAX_MEMORY: u64 = 200 << 30;
/// Capacities up to this are pre-faulted by default.
pub const PREFAULT_AUTO_LIMIT: u64 = 1 << 30;
/// The nice value of the pre-faulting thread (on Linux a thread's own): the lowest priority,
/// so that zeroing the segment uses only CPU time nothing else wants.
const PREFAULT_NICE: i32 = 19;
/// How long, by default, a connection busy-polls for its client's next request before it
/// sleeps (see [`StoreBuilder::busy_poll`]).
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);
/// By default, up to this many connected clients per core are each served by a thread of
/// their own (see [`StoreBuilder::dedicated_clients`]).
pub const DEDICATED_CLIENTS_PER_CORE: usize = 4;
/// The time slice a thread serving a client asks the kernel for while at most one client per
/// core is connected (see [`StoreBuilder::time_slice`]).
pub const DEFAULT_TIME_SLICE: Duration = Duration::from_micros(100);
/// The longest busy-poll period a store accepts.
pub const MAX_BUSY_POLL: Duration = Duration::from_secs(1);

/// Errors starting a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The configuration is invalid.
    #[error("invalid plasma-store configuration: {0}")]
    Config(String),
    /// Creating the shared-memory segment failed.
    #[error("cannot create the shared-memory segment: {0}")]
    Segment(#[source] io::Error),
    /// Binding the socket failed.
    #[error("cannot listen on {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Writes one log line to stderr.
pub(crate) fn log(line: &str) {
    eprintln!("plasma-store: {line}");
}

/// Log lines about a recurring condition, at most one a second; the ones held back are
/// counted in the next line.
#[derive(Default)]
pub(crate) struct RateLimitedLog {
    last: Option<std::time::Instant>,
    held_back: u64,
}

impl RateLimitedLog {
    /// Logs `line` unless a line went out less than a second ago.
    pub(crate) fn note(&mut self, line: &str) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.held_back += 1;
            return;
        }
        match std::mem::take(&mut self.held_back) {
            0 => log(line),
            n => log(&format!("{line} ({n} more like it in the last second)")),
        }
        self.last = Some(now);
    }
}

/// Segment size for a capacity: room for an object of exactly `capacity`
/// bytes despite the allocator's size classes (at most 1/8 rounding).
fn arena_len(capacity: u64) -> u64 {
    capacity + capacity / 8 + (1 << 20)
}

/// Configures and starts a store.
#[derive(Debug, Clone)]
pub struct StoreBuilder {
    socket: PathBuf,
    memory: Option<u64>,
    directory: Option<PathBuf>,
    hugepages: bool,
    external: Option<String>,
    write_through: bool,
    prefault: Option<bool>,
    busy_poll: Duration,
    time_slice: Duration,
    follow_clients: bool,
    dedicated_clients: Option<usize>,
    notification_memory: usize,
    group_access: bool,
    verbose: bool,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreBuilder {
    /// Defaults: socket `/tmp/plasma`, memory sized to the shared memory free.
    pub fn new() -> Self {
        Self {
            socket: PathBuf::from("/tmp/plasma"),
            memory: None,
            directory: None,
            hugepages: false,
            external: None,
            write_through: false,
            prefault: None,
            busy_poll: DEFAULT_BUSY_POLL,
            time_slice: DEFAULT_TIME_SLICE,
            follow_clients: true,
            dedicated_clients: None,
            notification_memory: DEFAULT_NOTIFICATION_MEMORY,
            group_access: false,
            verbose: false,
        }
    }

    /// The socket path.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = path.into();
        self
    }

    /// The capacity in bytes (`-m`).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// A directory for the segment file (`-d`) instead of a memfd.
    pub fn directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.directory = Some(dir.into());
        self
    }

    /// Use huge pages (`-h`).
    pub fn hugepages(mut self, on: bool) -> Self {
        self.hugepages = on;
        self
    }

    /// An external store endpoint (`-e`): `hashtable://NAME`, `file://DIR`, or an
    /// object-store URL (`s3://bucket/prefix`, `gs://`, `az://`, `http(s)://`, `memory://`)
    /// configured from the environment as the object-store backend does it.
    pub fn external_store(mut self, endpoint: impl Into<String>) -> Self {
        self.external = Some(endpoint.into());
        self
    }

    /// Write every sealed object to the external store too (`--write-through`), after the
    /// seal's reply and off the request threads, with its sizes and digest; and look there
    /// for an id this store does not hold before a get waits for it. Stores sharing one
    /// bucket so serve each other's objects. Needs an object-store `-e`.
    pub fn write_through(mut self, on: bool) -> Self {
        self.write_through = on;
        self
    }

    /// Pre-fault the segment (default: only for capacities up to
    /// [`PREFAULT_AUTO_LIMIT`]).
    pub fn prefault(mut self, on: bool) -> Self {
        self.prefault = Some(on);
        self
    }

    /// How long a connection busy-polls its socket for the client's next request after a
    /// reply before it sleeps (default [`DEFAULT_BUSY_POLL`]; zero turns polling off).
    ///
    /// A client's next request usually follows its reply within microseconds; catching it
    /// awake saves a cross-CPU wake-up on each side of the round trip, which on virtual
    /// machines costs tens of microseconds. The poll yields the CPU on every turn, at most
    /// half the cores poll at once, none while more clients than cores are connected (they
    /// fill the cores themselves), and an idle store does not poll at all. When a turn shows
    /// the CPU contended (other threads ran meanwhile, as a data loader's workers do), the
    /// connection sleeps at once and the store stops polling for a back-off of 1 ms doubling
    /// up to 1 s while the contention lasts (see
    /// [`Poller`](tensor_ipc_plasma_protocol::poll::Poller)).
    ///
    /// Periods above [`MAX_BUSY_POLL`] are capped to it.
    pub fn busy_poll(mut self, period: Duration) -> Self {
        self.busy_poll = period.min(MAX_BUSY_POLL);
        self
    }

    /// The time slice a thread serving a client asks the kernel for while at most one client
    /// per core is connected (default [`DEFAULT_TIME_SLICE`]; zero keeps the kernel's).
    ///
    /// On a machine whose cores are busy with other work, a request wakes the thread that
    /// serves it, which then waits for the running process's slice to run out. Linux 6.12
    /// and later let a thread ask for a shorter slice than the default (0.1 ms at the
    /// least), and preempt a longer-sliced process when woken: the store's threads run for
    /// microseconds at a time, so the wait goes and nothing else is lost. Beyond one client
    /// per core the store's own clients fill the cores, and the threads keep the kernel's
    /// slice (preempting those clients for every request only adds context switches).
    /// Earlier kernels take the request and ignore it.
    pub fn time_slice(mut self, slice: Duration) -> Self {
        self.time_slice = slice;
        self
    }

    /// Whether a thread serving one client keeps to the CPU that client runs on while the
    /// cores are full (default on): more clients connected than cores, or other processes'
    /// work seen by busy-polling within the last half second. A request and its reply then
    /// wake a thread on the CPU that has just gone to sleep for it, instead of one where
    /// another process is running (several times faster on a busy machine). Only CPUs of
    /// the thread's own mask are used; a quiet machine gets the mask back.
    pub fn follow_clients(mut self, on: bool) -> Self {
        self.follow_clients = on;
        self
    }

    /// Up to how many connected clients each is served by a thread of its own (default
    /// [`DEDICATED_CLIENTS_PER_CORE`] per core); beyond, all are served in turn by a few
    /// worker threads from one epoll set, which keeps latency fair with many busy clients.
    /// Zero: always the workers.
    pub fn dedicated_clients(mut self, clients: usize) -> Self {
        self.dedicated_clients = Some(clients);
        self
    }

    /// The most memory the notifications queued for all subscribers may hold together
    /// (default [`DEFAULT_NOTIFICATION_MEMORY`]). A notification that would exceed it first
    /// drops the slowest subscribers (the most bytes not read), with a log line each.
    pub fn notification_memory(mut self, bytes: usize) -> Self {
        self.notification_memory = bytes;
        self
    }

    /// Make the socket group-accessible (mode 0660 instead of 0600).
    pub fn group_access(mut self, on: bool) -> Self {
        self.group_access = on;
        self
    }

    /// Log every connection and ignored request.
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// The capacity this builder will use.
    pub fn effective_memory(&self) -> u64 {
        self.memory.unwrap_or_else(default_memory)
    }

    /// A one-line description of the configuration.
    pub fn describe(&self) -> String {
        let memory = self.effective_memory();
        let why = match (self.memory, shm_free()) {
            (Some(_), _) => String::new(),
            (None, Some(free)) => format!(
                ": 80 % of /dev/shm's {:.2} GiB free; choose with -m",
                gib(free)
            ),
            (None, None) => ": /dev/shm unreadable, a default; choose with -m".to_owned(),
        };
        format!(
            "socket {}, memory {} bytes ({:.2} GiB{why}), segment in {}{}, external store {}, prefault {}, busy-poll {} us",
            self.socket.display(),
            memory,
            gib(memory),
            self.directory
                .as_ref()
                .map_or_else(|| "memfd".to_string(), |d| d.display().to_string()),
            if self.hugepages { " (hugepages)" } else { "" },
            match (&self.external, self.write_through) {
                (Some(e), true) => format!("{e} (write-through)"),
                (Some(e), false) => e.clone(),
                (None, _) => "none".to_owned(),
            },
            self.prefault.unwrap_or(memory <= PREFAULT_AUTO_LIMIT),
            self.busy_poll.as_micros(),
        )
    }

    /// Creates the segment, binds the socket and starts serving.
    pub fn spawn(self) -> Result<StoreHandle, StoreError> {
        let memory = self.effective_memory();
        if memory == 0 || memory > MAX_MEMORY {
            return Err(StoreError::Config(format!(
                "memory must be between 1 and {MAX_MEMORY} bytes, got {memory}"
            )));
        }
        if self.write_through && self.external.is_none() {
            return Err(StoreError::Config(
                "--write-through needs an external store (-e s3://bucket/prefix)".into(),
            ));
        }
        if self.hugepages && self.directory.is_none() && cfg!(not(target_os = "linux")) {
            return Err(StoreError::Config("hugepages need -d".into()));
        }
        let external = match &self.external {
            Some(endpoint) => Some(
                external::from_endpoint(endpoint, memory, self.write_through)
                    .map_err(StoreError::Config)?,
            ),
            None => None,
        };
        let segment =
            segment::Segment::create(arena_len(memory), self.directory.as_deref(), self.hugepages)
                .map_err(|e| {
                    if self.hugepages
                        && e.raw_os_error() == Some(rustix::io::Errno::NOMEM.raw_os_error())
                    {
                        StoreError::Segment(io::Error::other(format!(
                            "{e}: not enough huge pages reserved (see /proc/sys/vm/nr_hugepages)"
                        )))
                    } else {
                        StoreError::Segment(e)
                    }
                })?;
        let segment = Arc::new(segment);
        if self.prefault.unwrap_or(memory <= PREFAULT_AUTO_LIMIT) {
            let seg = Arc::clone(&segment);
            let _ = std::thread::Builder::new()
                .name("plasma-prefault".into())
                .spawn(move || {
                    // Start-up work that must never take a core from serving clients.
                    let _ = rustix::process::setpriority_process(None, PREFAULT_NICE);
                    seg.prefault()
                });
        }
        if !segment.is_sealed() && self.directory.is_none() {
            log("warning: the kernel refused to seal the segment against resizing");
        }
        let mut state = state::State::new(memory, segment, external);
        state.set_notification_memory(self.notification_memory);
        let jobs = if self.write_through {
            let (queue, jobs) = std::sync::mpsc::channel();
            state.set_write_through(queue);
            Some(jobs)
        } else {
            None
        };
        let shared = Arc::new(
            server::Shared::new(
                state,
                server::Config {
                    verbose: self.verbose,
                    busy_poll: self.busy_poll,
                    time_slice: self.time_slice,
                    follow_clients: self.follow_clients,
                    dedicated_clients: self.dedicated_clients.unwrap_or_else(|| {
                        DEDICATED_CLIENTS_PER_CORE
                            * std::thread::available_parallelism().map_or(1, |n| n.get())
                    }),
                },
            )
            .map_err(|e| StoreError::Config(format!("cannot create the event loop: {e}")))?,
        );
        if let Some(jobs) = jobs {
            writethrough::spawn_writer(Arc::clone(&shared), jobs).map_err(|e| {
                StoreError::Config(format!("cannot start the write-through thread: {e}"))
            })?;
        }
        let listener =
            bind(&self.socket, self.group_access).map_err(|source| StoreError::Socket {
                path: self.socket.clone(),
                source,
            })?;
        let mut threads = Vec::new();
        let started = (|| {
            for n in 0..event_loop::worker_count() {
                let worker = Arc::clone(&shared);
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("plasma-worker-{n}"))
                        .spawn(move || event_loop::run_worker(&worker))?,
                );
            }
            if shared.lock().external().is_some() {
                let io = Arc::clone(&shared);
                threads.push(
                    std::thread::Builder::new()
                        .name("plasma-external".into())
                        .spawn(move || spill::run_io_thread(&io))?,
                );
            }
            let accept_shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("plasma-accept".into())
                .spawn(move || server::accept_loop(accept_shared, listener))
        })();
        let mut handle = StoreHandle {
            socket: self.socket.clone(),
            capacity: memory,
            shared,
            accept: None,
            threads,
        };
        match started {
            Ok(accept) => {
                handle.accept = Some(accept);
                Ok(handle)
            }
            Err(source) => {
                handle.stop();
                Err(StoreError::Socket {
                    path: self.socket,
                    source,
                })
            }
        }
    }
}

fn bind(path: &Path, group_access: bool) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "path exists and is not a socket",
            ));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)?;
    let mode = if group_access { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// The default capacity: 80% of the free space of `/dev/shm`, at least 64 MiB (1 GiB when
/// `/dev/shm` cannot be read).
pub fn default_memory() -> u64 {
    match shm_free() {
        Some(free) => (free / 10 * 8).clamp(64 << 20, MAX_MEMORY),
        None => 1 << 30,
    }
}

/// Bytes free in `/dev/shm`.
fn shm_free() -> Option<u64> {
    let st = rustix::fs::statvfs("/dev/shm").ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// A running store. Dropping it shuts it down.
pub struct StoreHandle {
    socket: PathBuf,
    capacity: u64,
    shared: Arc<server::Shared>,
    accept: Option<JoinHandle<()>>,
    /// The workers and the external-store thread.
    threads: Vec<JoinHandle<()>>,
}

impl StoreHandle {
    /// The socket clients connect to.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of connected clients.
    pub fn client_count(&self) -> usize {
        self.shared.client_count()
    }

    /// Blocks the calling thread while the store serves.
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }

    /// Stops accepting, disconnects every client and removes the socket.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(accept) = self.accept.take() {
            let _ = UnixStream::connect(&self.socket);
            let _ = accept.join();
        }
        self.shared.disconnect_all();
        self.shared.events.wake_all();
        self.shared.sealed.notify_all();
        self.shared.io_queued.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses a byte size: a plain integer, or one with a `K`, `M`, `G` or `T`
/// suffix (powers of 1024; `KB`, `KiB` and lower case accepted).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("invalid size suffix in {text:?}")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {text:?} overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100000000"), Ok(100_000_000));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn arena_fits_full_capacity_object() {
        for cap in [10_000u64, 1_024_000, 100_000_000] {
            let seg = Arc::new(segment::Segment::create(arena_len(cap), None, false).unwrap());
            let mut st = state::State::new(cap, seg, None);
            assert!(
                st.create(
                    1,
                    tensor_ipc_plasma_protocol::ObjectId([1; 20]),
                    cap,
                    0,
                    0,
                    true
                )
                .is_ok()
            );
            assert_eq!(st.allocated(), cap);
        }
    }
}
