//! The `plasma-store` command: its flags, and running a store until SIGTERM or SIGINT.
//!
//! [`run`] is the whole command, so other programs (the Python package's `plasma-store`
//! script) run the store in-process with the same flags as the binary.

use clap::{ArgAction, Parser};
use signal_hook::consts::{SIGINT, SIGTERM, SIGXFSZ};
use signal_hook::iterator::Signals;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::{StoreBuilder, parse_size};

/// A Plasma object store compatible with Apache Arrow 11 clients.
#[derive(Parser, Debug)]
#[command(name = "plasma-store", version, disable_help_flag = true)]
struct Args {
    /// Socket path clients connect to.
    #[arg(short = 's', long = "socket", default_value = "/tmp/plasma")]
    socket: std::path::PathBuf,
    /// Capacity in bytes; suffixes K, M, G, T allowed (default: 80% of free /dev/shm).
    #[arg(short = 'm', long = "memory", value_parser = parse_size)]
    memory: Option<u64>,
    /// Directory for the (unlinked) segment file instead of a memfd.
    #[arg(short = 'd', long = "directory")]
    directory: Option<std::path::PathBuf>,
    /// Use huge pages (with -d: a hugetlbfs mount).
    #[arg(short = 'h', long = "hugepages")]
    hugepages: bool,
    /// External store for evicted objects: hashtable://NAME, file://DIR, or an object-store
    /// URL (s3://bucket/prefix, gs://, az://, http(s)://; configured from AWS_ENDPOINT,
    /// AWS_ACCESS_KEY_ID, ... as the object-store backend reads them).
    #[arg(short = 'e', long = "external-store")]
    external_store: Option<String>,
    /// Also write every sealed object to the external store (after the seal's reply), and
    /// look there for an id this store does not hold before a get waits: stores sharing one
    /// bucket serve each other's objects.
    #[arg(long)]
    write_through: bool,
    /// Pre-fault the whole segment at start-up (default: when memory <= 1 GiB).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    prefault: Option<bool>,
    /// Microseconds a connection busy-polls for its client's next request
    /// before sleeping (0: never poll).
    #[arg(long, value_name = "MICROS", default_value_t = 50)]
    busy_poll: u64,
    /// Time slice, in microseconds, that a thread serving a client asks the kernel for while
    /// at most one client per core is connected, so that a request preempts other work on a
    /// busy machine at once (Linux 6.12 and later; 0: the kernel's default).
    #[arg(long, value_name = "MICROS", default_value_t = 100)]
    time_slice: u64,
    /// Never keep a thread serving a client on that client's CPU (by default it does while
    /// the cores are full: more clients than cores, or other processes' work).
    #[arg(long)]
    no_follow_clients: bool,
    /// Up to this many connected clients, each is served by a thread of its own; beyond,
    /// all by a few workers in turn (default: 4 per core; 0: always the workers).
    #[arg(long, value_name = "CLIENTS")]
    dedicated_clients: Option<usize>,
    /// Most memory the notifications queued for all subscribers hold together; beyond, the
    /// slowest subscribers are dropped (default 256M; suffixes K, M, G, T).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    notification_memory: Option<u64>,
    /// Make the socket group-accessible (0660) instead of owner-only (0600).
    #[arg(long)]
    group_access: bool,
    /// Log connections and ignored requests.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// Runs the `plasma-store` command with `args` (the first is the program name, as in
/// `std::env::args_os`): parses the flags, starts the store, serves until SIGTERM or SIGINT,
/// then shuts it down (socket removed, clients disconnected). Returns the exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mut builder = StoreBuilder::new()
        .socket(&args.socket)
        .hugepages(args.hugepages)
        .group_access(args.group_access)
        .busy_poll(std::time::Duration::from_micros(args.busy_poll))
        .time_slice(std::time::Duration::from_micros(args.time_slice))
        .follow_clients(!args.no_follow_clients)
        .verbose(args.verbose);
    if let Some(m) = args.memory {
        builder = builder.memory(m);
    }
    if let Some(d) = &args.directory {
        builder = builder.directory(d);
    }
    if let Some(e) = &args.external_store {
        builder = builder.external_store(e);
    }
    if let Some(n) = args.notification_memory {
        builder = builder.notification_memory(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(n) = args.dedicated_clients {
        builder = builder.dedicated_clients(n);
    }
    builder = builder.write_through(args.write_through);
    if let Some(p) = args.prefault {
        builder = builder.prefault(p);
    }
    // SIGTERM and SIGINT end up in this iterator, whichever thread the kernel delivers them
    // to; the main thread then shuts the store down cleanly (socket file removed, clients
    // disconnected). SIGPIPE is already ignored by the Rust runtime, and every socket write
    // passes MSG_NOSIGNAL as well.
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("plasma-store: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A spill file written past a file-size limit (RLIMIT_FSIZE) must fail that write
    // (EFBIG: the object stays in memory), not kill the store with SIGXFSZ.
    if let Err(e) = signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false))) {
        eprintln!("plasma-store: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("plasma-store: {}", builder.describe());
    let store = match builder.spawn() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("plasma-store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signal = signals.forever().next().unwrap_or(SIGTERM);
    let name = if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    eprintln!("plasma-store: {name} received, closing the store");
    // Close the socket and disconnect the clients, but never hang on the way out.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        store.shutdown();
        let _ = done.send(());
    });
    let _ = finished.recv_timeout(std::time::Duration::from_secs(2));
    ExitCode::SUCCESS
}
