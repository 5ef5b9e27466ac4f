//! The real peers the cross-checks run against (current pyarrow, the Arrow C++ sparse program,
//! pyarrow 11 and the original Plasma store), found the same way by every test binary of the
//! workspace, which includes this file with `#[path]`: an environment variable when set, else
//! where `.ci/` installs the peer under `target/`.
//!
//! A check whose peer is missing fails under `CI`. Elsewhere it passes after saying so on
//! stderr and in `target/peer-skips.log`, which the test command (`bash .ci/test`) prints at
//! its end, so a skipped cross-check never passes for a run one.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// The repository root: the nearest directory above this crate holding `.ci/`.
pub fn workspace_root() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    while !dir.join(".ci").is_dir() {
        if !dir.pop() {
            return PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        }
    }
    dir
}

/// `$var` when set and not empty, else `default` (relative to the repository root) if it
/// exists.
pub fn find(var: &str, default: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let path = workspace_root().join(default);
    path.exists().then_some(path)
}

/// A Python with current pyarrow (>= 26) and numpy (>= 2): `TENSOR_IPC_PYTHON`, else
/// `target/venv-pyarrow` (made by `.ci/setup-python.sh`).
pub fn current_pyarrow() -> Option<PathBuf> {
    find("TENSOR_IPC_PYTHON", "target/venv-pyarrow/bin/python")
}

/// The Arrow C++ sparse program: `TENSOR_IPC_SPARSE_CPP`, else where `.ci/sparse-cpp.sh`
/// builds it.
pub fn sparse_cpp() -> Option<PathBuf> {
    find("TENSOR_IPC_SPARSE_CPP", "target/sparse-cpp/sparse_vectors")
}

/// Records that `check` did not run because `why`; panics under `CI`, where every
/// cross-check must run.
pub fn skipped(check: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {check} cannot run: {why}"
    );
    eprintln!("notice: skipped {check}: {why}");
    let log = workspace_root().join("target/peer-skips.log");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(file, "{check}: {why}");
    }
}
