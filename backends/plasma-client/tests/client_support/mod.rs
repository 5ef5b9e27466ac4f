//! Shared helpers of the client tests: the external peers (stores, pyarrow 11,
//! the C++ reader), found through environment variables.
//!
//! * `PLASMA_STORE_ORIGINAL`: Arrow 11's `plasma-store-server` (from the pyarrow 11 wheel).
//! * `PLASMA_STORE_OURS`: this project's `plasma-store` binary.
//! * `PLASMA_PYTHON11`: a Python with pyarrow 11.0.0 (`pyarrow.plasma`).
//! * `PLASMA_CPP_READER`: the C++ libplasma reader built by `.ci/plasma-client.sh`.
//!
//! Unset, a variable falls back to where `.ci/plasma-client.sh` puts the peer
//! (`target/venv-pyarrow11`, `target/release/plasma-store`,
//! `target/plasma-client/`). If the peer is still missing the test prints a
//! notice and passes, except under `CI`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tensor_ipc_plasma_client::ObjectId;
use tensor_ipc_plasma_client::{ClientOptions, PlasmaClient};

pub use crate::peers::workspace_root;

fn defaults(var: &str) -> Option<PathBuf> {
    let root = workspace_root();
    let p = match var {
        "PLASMA_STORE_ORIGINAL" => root
            .join("target/venv-pyarrow11/lib/python3.11/site-packages/pyarrow/plasma-store-server"),
        "PLASMA_STORE_OURS" => root.join("target/release/plasma-store"),
        "PLASMA_PYTHON11" => root.join("target/venv-pyarrow11/bin/python"),
        "PLASMA_CPP_READER" => root.join("target/plasma-client/plasma_reader"),
        _ => return None,
    };
    p.exists().then_some(p)
}

/// The peer named by `var`, or `None` (after a notice) when it is not
/// available outside CI. Panics under CI when it is missing.
pub fn peer(var: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    if let Some(p) = defaults(var) {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        // Under CI, install the peers once (idempotent) before giving up.
        static SETUP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let ok = *SETUP.get_or_init(|| {
            Command::new("bash")
                .arg(workspace_root().join(".ci/plasma-client.sh"))
                .arg("--setup-only")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if let (true, Some(p)) = (ok, defaults(var)) {
            return Some(p);
        }
        panic!(
            "{var} is not set and its default location is empty; run .ci/plasma-client.sh \
             (it installs the peers and exports the variables)"
        );
    }
    crate::peers::skipped(
        "a Plasma client cross-check",
        &format!("{var} is not set and its default location is empty (run .ci/plasma-client.sh)"),
    );
    None
}

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Arrow 11's plasma-store-server.
    Original,
    /// Our plasma-store.
    Ours,
}

impl Kind {
    pub fn var(self) -> &'static str {
        match self {
            Kind::Original => "PLASMA_STORE_ORIGINAL",
            Kind::Ours => "PLASMA_STORE_OURS",
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A store process on a private socket, killed on drop.
pub struct Store {
    pub kind: Kind,
    pub child: Child,
    /// Holds the socket's directory for the store's life.
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Store {
    /// Starts a store of `kind` with `memory` bytes, or `None` if that store
    /// is not available (outside CI).
    pub fn start(kind: Kind, memory: u64) -> Option<Store> {
        let bin = peer(kind.var())?;
        eprintln!("starting {kind:?} store: {}", bin.display());
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join(format!(
            "plasma-{}.sock",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let child = Command::new(&bin)
            .arg("-s")
            .arg(&socket)
            .arg("-m")
            .arg(memory.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Some(Store {
            kind,
            child,
            _dir: dir,
            socket,
        })
    }

    pub fn client(&self) -> PlasmaClient {
        PlasmaClient::connect(&self.socket).expect("connect")
    }

    pub fn client_with(&self, options: ClientOptions) -> PlasmaClient {
        PlasmaClient::connect_with(&self.socket, options).expect("connect")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the store process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every store available: `(kind, store)` pairs.
pub fn stores(memory: u64) -> Vec<Store> {
    [Kind::Original, Kind::Ours]
        .into_iter()
        .filter_map(|k| Store::start(k, memory))
        .collect()
}

/// A fresh id unique within the test process (and distinct across tests by `tag`).
pub fn fresh_id(tag: u8) -> ObjectId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [tag; 20];
    id[..4].copy_from_slice(&n.to_le_bytes());
    id[4..8].copy_from_slice(&std::process::id().to_le_bytes());
    ObjectId(id)
}

/// Runs `python -c script args...`, panicking with its output on failure.
pub fn python(py: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    check(out, "python")
}

pub fn check(out: Output, what: &str) -> String {
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn hex(id: &ObjectId) -> String {
    id.hex()
}

pub const SECOND: Option<Duration> = Some(Duration::from_secs(1));
