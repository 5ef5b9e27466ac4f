//! Shared-memory segments received from the store, and regions inside them.
//!
//! This module holds the client's `unsafe` code: turning bounds-checked
//! `(segment, offset, len)` triples into slices and Arrow [`Buffer`]s.
//!
//! A segment is mapped read-only when it arrives; objects a get returns are views of that
//! mapping, so nothing in this process can write to them by mistake. A second, writable
//! mapping of the same file is made the first time this client creates an object there, and
//! only [`WritableRegion`]s (the regions of objects this client created and has not sealed)
//! point into it.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use arrow_buffer::Buffer;
use arrow_buffer::alloc::Allocation;
use memmap2::{MmapOptions, MmapRaw};

use crate::error::{ClientError, ClientResult};

/// One segment file of the store, `mmap_size - 8` bytes long as the C++ client maps it.
/// Unmapped when the last `Arc` drops.
#[derive(Debug)]
pub(crate) struct Segment {
    file: File,
    len: usize,
    read_only: MmapRaw,
    writable: OnceLock<MmapRaw>,
}

impl Segment {
    /// Maps the segment behind `fd` read-only; its store-side record size is `mmap_size`
    /// (the mapping is 8 bytes shorter). The fd is kept for a writable mapping later.
    pub(crate) fn map(fd: OwnedFd, mmap_size: i64) -> ClientResult<Self> {
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
        let read_only = MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .map_err(ClientError::Io)?;
        Ok(Self {
            file,
            len,
            read_only,
            writable: OnceLock::new(),
        })
    }

    /// The writable mapping, made on first use.
    fn writable(&self) -> ClientResult<&MmapRaw> {
        if let Some(map) = self.writable.get() {
            return Ok(map);
        }
        let map = MmapOptions::new()
            .len(self.len)
            .map_raw(&self.file)
            .map_err(ClientError::Io)?;
        // Two threads may race here; the loser's mapping is dropped (unmapped).
        Ok(self.writable.get_or_init(|| map))
    }

    /// Checks that `[offset, offset + len)` lies inside the segment.
    fn check_range(&self, offset: u64, len: u64) -> ClientResult<(usize, usize)> {
        match offset.checked_add(len) {
            // Both fit in usize: they are at most the mapping length.
            Some(end) if end <= self.len as u64 => Ok((offset as usize, len as usize)),
            _ => Err(ClientError::InvalidReply(format!(
                "object range {offset}+{len} lies outside its segment of {} bytes",
                self.len
            ))),
        }
    }
}

/// A bounds-checked, read-only byte range of a mapped segment. Holding one keeps the
/// mapping alive.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    segment: Arc<Segment>,
    offset: usize,
    len: usize,
}

impl Region {
    /// The range `[offset, offset + len)` of `segment`, if it lies inside it.
    pub(crate) fn new(segment: Arc<Segment>, offset: u64, len: u64) -> ClientResult<Self> {
        let (offset, len) = segment.check_range(offset, len)?;
        Ok(Self {
            segment,
            offset,
            len,
        })
    }

    fn ptr(&self) -> NonNull<u8> {
        // SAFETY: `offset + len <= segment.len()` (checked in `new`), so the pointer stays
        // inside (or one past the end of) the read-only mapping, whose base is non-null.
        unsafe { NonNull::new_unchecked(self.segment.read_only.as_mut_ptr().add(self.offset)) }
    }

    /// A zero-copy, read-only Arrow buffer over the region whose owner (`owner`, which must
    /// also keep this region's segment mapped) is dropped with the last clone of the buffer.
    pub(crate) fn to_buffer(&self, owner: Arc<dyn Allocation>) -> Buffer {
        // SAFETY: the pointer is valid for `len` bytes of a mapping that `owner` keeps alive
        // (callers pass an owner holding an `Arc` of this segment), mapped PROT_READ. The
        // memory is shared with the store and other clients; Plasma's protocol makes an
        // object immutable once sealed, and this client never writes through this mapping. A
        // peer that breaks the protocol can change the bytes under us (see the trust model in
        // docs/ARCHITECTURE.md): readers copy out the metadata they validate.
        unsafe { Buffer::from_custom_allocation(self.ptr(), self.len, owner) }
    }

    /// The segment, for owners that keep it alive.
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }
}

/// A bounds-checked, writable byte range of a segment: the data or metadata of an object
/// this client created and has not sealed, which nothing else references.
#[derive(Debug)]
pub(crate) struct WritableRegion {
    segment: Arc<Segment>,
    offset: usize,
    len: usize,
}

impl WritableRegion {
    /// The range `[offset, offset + len)` of `segment`, writable, if it lies inside it.
    pub(crate) fn new(segment: Arc<Segment>, offset: u64, len: u64) -> ClientResult<Self> {
        let (offset, len) = segment.check_range(offset, len)?;
        segment.writable()?;
        Ok(Self {
            segment,
            offset,
            len,
        })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The same range, read-only (through the read-only mapping): what the object's readers
    /// see once it is sealed.
    pub(crate) fn to_region(&self) -> Region {
        Region {
            segment: self.segment.clone(),
            offset: self.offset,
            len: self.len,
        }
    }

    fn ptr(&self) -> *mut u8 {
        let map = self
            .segment
            .writable
            .get()
            .expect("mapped by WritableRegion::new");
        // SAFETY: `offset + len <= segment.len()` (checked in `new`), so the pointer stays
        // inside (or one past the end of) the writable mapping.
        unsafe { map.as_mut_ptr().add(self.offset) }
    }

    /// The bytes, read-only.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: in range of a live mapping (kept alive by `self.segment`); see `as_mut_slice`
        // for why nothing else writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }

    /// The bytes, writable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: in range of a live PROT_READ|PROT_WRITE mapping (kept alive by
        // `self.segment`). The region belongs to an unsealed object this client created: the
        // store hands unsealed objects to nobody else, this client makes one region per
        // object, and `&mut self` makes the borrow unique within this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }
}
