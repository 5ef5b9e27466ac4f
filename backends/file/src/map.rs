//! The only `unsafe` of the file backend: mapping a file for reading (the sink writes with
//! `pwritev`, never through a mapping), and dropping this process's view of mapped pages.

use std::fs::File;
use std::sync::Arc;

use memmap2::{Advice, Mmap, UncheckedAdvice};
use tensor_ipc::Result;

/// A read-only shared mapping of a whole file, shared by a source's buffers and the sinks that
/// copy from it.
#[derive(Clone, Debug)]
pub(crate) struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl SharedMap {
    /// Maps all of `file` read-only.
    pub(crate) fn readonly(file: &File) -> Result<SharedMap> {
        // SAFETY: the mapping is read-only; the crate documents that a file changed or
        // truncated by another process while mapped may show new bytes or fault, as with every
        // mapped reader.
        let map = unsafe { Mmap::map(file)? };
        Ok(SharedMap(Arc::new(map)))
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Maps the pages of `len` bytes from `offset` into this process ahead of a read by the
    /// kernel (`MADV_POPULATE_READ`, one call instead of a page fault per page). `false` where
    /// the kernel cannot (before Linux 5.14, or pages beyond the end of a truncated file).
    pub(crate) fn populate(&self, offset: usize, len: usize) -> bool {
        self.0
            .advise_range(Advice::PopulateRead, offset, len)
            .is_ok()
    }

    /// Unmaps the pages of `len` bytes from `offset` from this process (the page cache keeps
    /// them), so that copying a large file keeps little of it resident.
    pub(crate) fn release(&self, offset: usize, len: usize) {
        // SAFETY: the mapping is shared and never written, so MADV_DONTNEED discards no data:
        // it drops this process's page-table entries, and the next access maps the same
        // page-cache pages again, showing every reference into the mapping the same bytes.
        // Failure only means the pages stay mapped.
        let _ = unsafe {
            self.0
                .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len)
        };
    }
}
