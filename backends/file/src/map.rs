//! The only `unsafe` of the file backend: mapping a file for reading (the sink writes with
//! `pwritev`, never through a mapping).

use std::fs::File;

use memmap2::Mmap;
use tensor_ipc::Result;

/// Maps all of `file` read-only.
pub(crate) fn map_readonly(file: &File) -> Result<Mmap> {
    // SAFETY: the mapping is read-only; the crate documents that a file changed or truncated by
    // another process while mapped may show new bytes or fault, as with every mapped reader.
    let map = unsafe { Mmap::map(file)? };
    Ok(map)
}
