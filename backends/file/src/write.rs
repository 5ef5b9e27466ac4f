//! Positioned writes of whole messages: `pwritev` of parts from where they lie,
//! `copy_file_range` (or a windowed write from the mapping) of parts that lie in another
//! file's mapping, and gathered bodies through a bounded staging buffer.

use std::fs::File;
use std::io::IoSlice;
use std::sync::Arc;

use rustix::io::Errno;
use tensor_ipc::{Gather, Result};

use crate::map::SharedMap;

/// The most parts handed to one `pwritev` (Linux's `IOV_MAX` is 1024).
const MAX_SLICES: usize = 1024;

/// Writes `parts`, one after another, at `offset`, retrying short and interrupted writes.
pub(crate) fn write_all_at(file: &File, parts: &[&[u8]], mut offset: u64) -> Result<()> {
    // The first part not completely written, and how much of it is.
    let mut first = 0;
    let mut done = 0;
    loop {
        while first < parts.len() && done == parts[first].len() {
            first += 1;
            done = 0;
        }
        if first == parts.len() {
            return Ok(());
        }
        let slices: Vec<IoSlice<'_>> = std::iter::once(&parts[first][done..])
            .chain(parts[first + 1..].iter().copied())
            .filter(|p| !p.is_empty())
            .take(MAX_SLICES)
            .map(IoSlice::new)
            .collect();
        let mut written = match rustix::io::pwritev(file, &slices, offset) {
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(std::io::Error::from(errno).into()),
        };
        offset += written as u64;
        // Advance over what was written.
        while written > 0 {
            let left = parts[first].len() - done;
            if written < left {
                done += written;
                written = 0;
            } else {
                written -= left;
                first += 1;
                done = 0;
            }
        }
    }
}

/// Writes `head` then `body` at `offset`: the body gathered `staging_len` bytes at a time into
/// `staging` (reused, so its memory stays in cache), the first piece written together with the
/// head.
pub(crate) fn write_gathered_at(
    file: &File,
    head: &[u8],
    body: &Gather<'_>,
    mut offset: u64,
    staging: &mut Vec<u8>,
    staging_len: usize,
) -> Result<()> {
    let mut head = Some(head);
    for piece in body.chunks(staging_len) {
        staging.clear();
        piece.append_to(staging)?;
        match head.take() {
            Some(h) => {
                write_all_at(file, &[h, staging], offset)?;
                offset += h.len() as u64;
            }
            None => write_all_at(file, &[staging], offset)?,
        }
        offset += staging.len() as u64;
    }
    if let Some(h) = head {
        write_all_at(file, &[h], offset)?;
    }
    Ok(())
}

/// Offsets whose remainders modulo this differ put every page of a kernel copy across two
/// pages of the destination (the page and file-system block size of Linux on x86-64).
const PAGE: u64 = 4096;

/// The bytes of a source mapping written (and kept mapped) at a time when the offsets of a
/// copy disagree within a page: small enough to keep the resident memory of a conversion a
/// few MiB, large enough that the two `madvise` calls per window cost nothing.
pub(crate) const WINDOW: usize = 2 << 20;

/// A file whose mapping the messages' parts may lie in, copied file to file by the kernel.
///
/// `copy_file_range` moves whole page-cache pages when the source and destination offsets lie
/// at the same place within a page (and shares the blocks, where the file system can reflink
/// and the offsets are block-aligned). When they do not (a `.npy` body at offset 128 becoming a
/// tensor body at offset 256), every source page lands across two destination pages, which
/// measured 1.3-1.8x slower on ext4 than `cp`; so does a `pread` into a buffer and `pwrite`
/// (two copies). Such parts are written with `pwrite` straight from the mapping, one copy,
/// [`WINDOW`] bytes at a time: each window's pages mapped in by one `madvise` beforehand (no
/// page fault per page) and unmapped after (resident memory stays one window), which measured
/// within 1.1x of `cp`. Where the kernel cannot populate a mapping, through the staging buffer.
#[derive(Debug)]
pub(crate) struct KernelCopy {
    file: Arc<File>,
    /// The file's mapping, kept alive so that an address inside it keeps meaning this file.
    mapping: SharedMap,
    /// Cleared when the kernel cannot copy between these files: write from the mapping.
    pub(crate) enabled: bool,
}

impl KernelCopy {
    pub(crate) fn new(file: Arc<File>, mapping: SharedMap) -> Self {
        KernelCopy {
            file,
            mapping,
            enabled: true,
        }
    }

    /// The file offset of `part`, if it lies (non-empty) inside the mapping.
    fn offset_of(&self, part: &[u8]) -> Option<u64> {
        let mapped = self.mapping.bytes();
        let base = mapped.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        let inside = !part.is_empty() && start >= base && start + part.len() <= base + mapped.len();
        inside.then(|| (start - base) as u64)
    }

    /// Writes `part`, which lies at `from` in the file, at `to` in `out`: with
    /// `copy_file_range` when the offsets agree within a page, else from the mapping a window
    /// at a time (or through `staging`, at most `staging_len` bytes at a time); from the
    /// mapping where the kernel cannot copy.
    fn copy(
        &mut self,
        out: &File,
        (mut from, mut to): (u64, u64),
        part: &[u8],
        staging: &mut Vec<u8>,
        staging_len: usize,
    ) -> Result<()> {
        if from % PAGE != to % PAGE {
            return match self.write_windows(out, (from, to), part)? {
                0 => self.bounce(out, (from, to), part, staging, staging_len),
                _ => Ok(()),
            };
        }
        let mut done = 0;
        while self.enabled && done < part.len() {
            match rustix::fs::copy_file_range(
                &*self.file,
                Some(&mut from),
                out,
                Some(&mut to),
                part.len() - done,
            ) {
                Ok(0) => break, // the file is shorter than its mapping: write the rest
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM) => {
                    self.enabled = false
                }
                Err(errno) => return Err(std::io::Error::from(errno).into()),
            }
        }
        write_all_at(out, &[&part[done..]], to)
    }

    /// Writes `part` (at `from` in the mapping) to `to` in `out` from the mapping, [`WINDOW`]
    /// bytes at a time, each window populated before its write and released after. Returns the
    /// bytes handled: all of them, or 0 when the kernel cannot populate the first window (the
    /// caller then copies another way).
    fn write_windows(&self, out: &File, (from, to): (u64, u64), part: &[u8]) -> Result<usize> {
        let start = from as usize; // inside the mapping: fits
        for (i, window) in part.chunks(WINDOW).enumerate() {
            let at = start + i * WINDOW;
            if !self.mapping.populate(at, window.len()) && i == 0 {
                return Ok(0);
            }
            let written = write_all_at(out, &[window], to + (i * WINDOW) as u64);
            self.mapping.release(at, window.len());
            written?;
        }
        Ok(part.len())
    }

    /// Copies `part` (at `from` in the file) to `to` in `out` by `pread` into `staging` and
    /// `pwrite`; what cannot be read (the file shorter than its mapping) is written from the
    /// mapping.
    fn bounce(
        &self,
        out: &File,
        (from, to): (u64, u64),
        part: &[u8],
        staging: &mut Vec<u8>,
        staging_len: usize,
    ) -> Result<()> {
        let size = staging_len.min(part.len()).max(1);
        if staging.len() < size {
            staging.resize(size, 0);
        }
        let mut done = 0;
        while done < part.len() {
            let want = size.min(part.len() - done);
            let offset = from + done as u64;
            let got = match rustix::io::pread(&*self.file, &mut staging[..want], offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(std::io::Error::from(errno).into()),
            };
            write_all_at(out, &[&staging[..got]], to + done as u64)?;
            done += got;
        }
        write_all_at(out, &[&part[done..]], to + done as u64)
    }
}

/// Writes `parts` at `offset` as [`write_all_at`] does, except that the parts lying in the
/// mapping of `kernel_copy` are copied from its file.
pub(crate) fn write_parts_at(
    file: &File,
    parts: &[&[u8]],
    mut offset: u64,
    mut kernel_copy: Option<&mut KernelCopy>,
    staging: &mut Vec<u8>,
    staging_len: usize,
) -> Result<()> {
    let mut from = 0;
    for (i, part) in parts.iter().enumerate() {
        let Some(copy) = kernel_copy.as_deref_mut() else {
            break;
        };
        let Some(at) = copy.offset_of(part) else {
            continue;
        };
        let before = &parts[from..i];
        write_all_at(file, before, offset)?;
        offset += before.iter().map(|p| p.len() as u64).sum::<u64>();
        copy.copy(file, (at, offset), part, staging, staging_len)?;
        offset += part.len() as u64;
        from = i + 1;
    }
    write_all_at(file, &parts[from..], offset)
}
