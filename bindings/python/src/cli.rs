//! The package's commands, run in-process from the Rust libraries: `plasma-store` (the store,
//! [`tensor_ipc_plasma_store::cli::run`], the binary's flags) and `tensor-ipc` (the CLI,
//! [`tensor_ipc_cli::run`]).
//!
//! Each entry takes the full argument list (`sys.argv`: the program name, then the arguments)
//! and returns the exit status.

use std::process::ExitCode;

use pyo3::prelude::*;

/// The number behind an [`ExitCode`] (which does not expose it): the commands return
/// `SUCCESS`, `FAILURE` or `ExitCode::from(n)`.
fn status(code: ExitCode) -> i32 {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .map_or(1, i32::from)
}

/// Runs the Plasma store in this process until SIGTERM or SIGINT; returns the exit status.
#[pyfunction]
pub fn run_plasma_store(py: Python<'_>, args: Vec<String>) -> i32 {
    py.detach(|| status(tensor_ipc_plasma_store::cli::run(args)))
}

/// Runs the `tensor-ipc` CLI; returns the exit status.
#[pyfunction]
pub fn run_tensor_ipc(py: Python<'_>, args: Vec<String>) -> i32 {
    py.detach(|| status(tensor_ipc_cli::run(args)))
}
