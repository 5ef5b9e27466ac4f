//! The only `unsafe` of the file backend: creating memory maps.

use std::fs::File;

use memmap2::{Mmap, MmapMut, MmapOptions};
use tensor_ipc::Result;

/// Maps `len` bytes of `file` from `offset`, writable and shared (writes reach the file).
pub(crate) fn map_writable(file: &File, offset: u64, len: usize) -> Result<MmapMut> {
    // SAFETY: the range lies inside the file (the caller has just set its length to cover it),
    // and the sink owns the file handle and does not shrink the file while the mapping lives.
    // Another process truncating the file concurrently is outside what we can prevent; it is
    // documented on the crate.
    let map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
    Ok(map)
}

/// Maps all of `file` read-only.
pub(crate) fn map_readonly(file: &File) -> Result<Mmap> {
    // SAFETY: the mapping is read-only; the crate documents that a file changed or truncated by
    // another process while mapped may show new bytes or fault, as with every mapped reader.
    let map = unsafe { Mmap::map(file)? };
    Ok(map)
}
