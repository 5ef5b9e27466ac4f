//! Shared-memory segments received from the store, and regions inside them.
//!
//! This module holds the client's `unsafe` code: turning bounds-checked
//! `(segment, offset, len)` triples into slices and Arrow [`Buffer`]s.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;
use arrow_buffer::alloc::Allocation;
use memmap2::{MmapOptions, MmapRaw};

use super::error::ClientError;

/// One segment file mapped read-write and shared, as the C++ client maps it:
/// `mmap_size - 8` bytes from offset 0. Unmapped when the last `Arc` drops.
#[derive(Debug)]
pub(crate) struct Segment {
    map: MmapRaw,
}

impl Segment {
    /// Maps the segment behind `fd`, whose store-side record size is
    /// `mmap_size` (the mapping is 8 bytes shorter). The fd is closed once
    /// mapped, as the original client does.
    pub(crate) fn map(fd: OwnedFd, mmap_size: i64) -> Result<Self, ClientError> {
        let len = mmap_size
            .checked_sub(8)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l > 0)
            .ok_or_else(|| {
                ClientError::InvalidReply(format!("segment mmap_size {mmap_size} is not valid"))
            })?;
        let file = File::from(fd);
        // A segment file shorter than the mapping would fault (SIGBUS) on access.
        let file_len = file.metadata().map_err(ClientError::Io)?.len();
        if file_len < len as u64 {
            return Err(ClientError::InvalidReply(format!(
                "segment file has {file_len} bytes, the store announced {len}"
            )));
        }
        let map = MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(ClientError::Io)?;
        Ok(Self { map })
    }

    /// Mapped length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// A bounds-checked byte range of a mapped segment. Holding one keeps the
/// mapping alive.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    segment: Arc<Segment>,
    offset: usize,
    len: usize,
}

impl Region {
    /// The range `[offset, offset + len)` of `segment`, if it lies inside it.
    pub(crate) fn new(segment: Arc<Segment>, offset: u64, len: u64) -> Result<Self, ClientError> {
        let end = offset.checked_add(len);
        match end {
            Some(end) if end <= segment.len() as u64 => Ok(Self {
                segment,
                // Both fit in usize: they are at most the mapping length.
                offset: offset as usize,
                len: len as usize,
            }),
            _ => Err(ClientError::InvalidReply(format!(
                "object range {offset}+{len} lies outside its segment of {} bytes",
                segment.len()
            ))),
        }
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn ptr(&self) -> NonNull<u8> {
        // SAFETY: `offset + len <= segment.len()` (checked in `new`), so the
        // pointer stays inside (or one past the end of) the mapping, whose
        // base is non-null.
        unsafe { NonNull::new_unchecked(self.segment.map.as_mut_ptr().add(self.offset)) }
    }

    /// The bytes, read-only.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is inside a live mapping (kept alive by
        // `self.segment`). The memory is shared with the store and other
        // clients; Plasma's protocol makes it immutable once sealed, and an
        // unsealed object is written only through its unique `&mut` view.
        unsafe { std::slice::from_raw_parts(self.ptr().as_ptr(), self.len) }
    }

    /// The bytes, writable. Only called on the region of an object this
    /// client created and has not sealed, which nothing else references.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: in range of a live mapping (see `as_slice`); the mapping is
        // PROT_READ|PROT_WRITE; the caller holds the only region of this
        // unsealed object (the store hands unsealed objects to nobody else),
        // and `&mut self` makes the borrow unique within this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr().as_ptr(), self.len) }
    }

    /// A zero-copy, read-only Arrow buffer over the region whose owner
    /// (`owner`, which must also keep this region's segment mapped) is
    /// dropped with the last clone of the buffer.
    pub(crate) fn to_buffer(&self, owner: Arc<dyn Allocation>) -> Buffer {
        // SAFETY: the pointer is valid for `len` bytes of a mapping that
        // `owner` keeps alive (callers pass an owner holding an `Arc` of this
        // segment); the bytes are never written again through this client
        // (they belong to a sealed object).
        unsafe { Buffer::from_custom_allocation(self.ptr(), self.len, owner) }
    }

    /// The segment, for owners that keep it alive.
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }
}
