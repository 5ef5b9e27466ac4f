//! The package's commands, run in-process from the Rust libraries: `plasma-store` (the store,
//! with the flags of the Rust binary) and `tensor-ipc` (the CLI).
//!
//! Each entry takes the full argument list (`sys.argv`: the program name, then the arguments)
//! and returns the exit status; a signal that ends the store exits the process.

use pyo3::prelude::*;

/// Runs the Plasma store in this process until SIGTERM or SIGINT; returns the exit status.
#[pyfunction]
pub fn run_plasma_store(py: Python<'_>, args: Vec<String>) -> i32 {
    py.detach(|| store::run(args))
}

/// Runs the `tensor-ipc` CLI; returns the exit status.
#[pyfunction]
pub fn run_tensor_ipc(py: Python<'_>, args: Vec<String>) -> i32 {
    py.detach(|| {
        let _ = args;
        eprintln!("tensor-ipc: error: the CLI is not available in this build of the package");
        2
    })
}

/// The store's command line, as the `plasma-store` binary parses it.
mod store {
    use clap::{ArgAction, Parser};
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
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
        /// Microseconds a connection busy-polls for its client's next request before
        /// sleeping (0: never poll).
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

    pub(super) fn run(args: Vec<String>) -> i32 {
        let args = match Args::try_parse_from(args) {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return e.exit_code();
            }
        };
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
        let mut signals = match Signals::new([SIGTERM, SIGINT]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("plasma-store: cannot install signal handlers: {e}");
                return 1;
            }
        };
        eprintln!("plasma-store: {}", builder.describe());
        let store = match builder.spawn() {
            Ok(store) => store,
            Err(e) => {
                eprintln!("plasma-store: {e}");
                return 1;
            }
        };
        let signal = signals.forever().next().unwrap_or(SIGTERM);
        let name = if signal == SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        eprintln!("plasma-store: {name} received, closing the store");
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            store.shutdown();
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(std::time::Duration::from_secs(2));
        0
    }
}
