//! The backend's one tokio runtime and the synchronous bridge onto it.
//!
//! `object_store` is asynchronous; sinks and sources are not. Every blocking call of this
//! crate runs its future to completion on one multi-threaded runtime that the crate starts
//! on first use and keeps for the life of the process (its worker threads sleep when idle).
//! Uploads started by a sink keep going on those workers while the caller's thread copies the
//! next part.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

use crate::error::ObjectStoreError;

/// Worker threads of the runtime: transfers are I/O-bound, two threads keep several
/// requests moving and checksums computed while the caller copies.
const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The backend's runtime, started on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, ObjectStoreError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name("tensor-ipc-object-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ObjectStoreError::Runtime(std::io::Error::other(e.clone())))
}

/// Runs `future` to completion on the backend's runtime, blocking the calling thread.
///
/// Called from inside some other tokio runtime (where blocking a worker would panic), it
/// blocks a scoped helper thread instead.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, ObjectStoreError>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    if Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .map_err(|_| ObjectStoreError::Runtime(std::io::Error::other("a transfer panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_from_plain_threads_and_from_inside_another_runtime() {
        assert_eq!(block_on(async { 1 + 1 }).unwrap(), 2);
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = other.block_on(async { block_on(async { 40 + 2 }).unwrap() });
        assert_eq!(inside, 42);
    }
}
