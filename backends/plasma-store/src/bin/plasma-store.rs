//! The `plasma-store` server binary.

use clap::{ArgAction, Parser};
use tensor_ipc_plasma_store::{StoreBuilder, parse_size};

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
    /// External store for evicted objects: hashtable://NAME or file://DIR.
    #[arg(short = 'e', long = "external-store")]
    external_store: Option<String>,
    /// Pre-fault the whole segment at start-up (default: when memory <= 1 GiB).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    prefault: Option<bool>,
    /// Microseconds a connection busy-polls for its client's next request
    /// before sleeping (0: never poll).
    #[arg(long, value_name = "MICROS", default_value_t = 50)]
    busy_poll: u64,
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

extern "C" fn on_terminate(_signal: libc::c_int) {
    const MSG: &[u8] = b"plasma-store: signal received, closing the store\n";
    // SAFETY: `write` and `_exit` are async-signal-safe; MSG is a static buffer.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(0);
    }
}

fn main() {
    let args = Args::parse();
    let mut builder = StoreBuilder::new()
        .socket(&args.socket)
        .hugepages(args.hugepages)
        .group_access(args.group_access)
        .busy_poll(std::time::Duration::from_micros(args.busy_poll))
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
    if let Some(p) = args.prefault {
        builder = builder.prefault(p);
    }
    // SAFETY: installing handlers that only call async-signal-safe functions;
    // SIGPIPE is ignored so a vanished client cannot kill the store.
    unsafe {
        let handler = on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    eprintln!("plasma-store: {}", builder.describe());
    match builder.spawn() {
        Ok(store) => store.wait(),
        Err(e) => {
            eprintln!("plasma-store: {e}");
            std::process::exit(1);
        }
    }
}
