//! Positioned writes of whole messages: `pwritev` of parts from where they lie,
//! `copy_file_range` of parts that lie in another file's mapping, and gathered bodies through
//! a bounded staging buffer.

use std::fs::File;
use std::io::IoSlice;
use std::sync::Arc;

use arrow_buffer::Buffer;
use rustix::io::Errno;
use tensor_ipc::{Gather, Result};

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

/// A file whose mapping the messages' parts may lie in, copied file to file by the kernel.
///
/// `copy_file_range` moves whole page-cache pages when the source and destination offsets lie
/// at the same place within a page (and shares the blocks, where the file system can reflink
/// and the offsets are block-aligned). When they do not (a `.npy` body at offset 128 becoming a
/// tensor body at offset 256), every source page lands across two destination pages, which
/// measured 1.4-1.8x slower on ext4 than a `pread` into a small buffer followed by a `pwrite`;
/// such parts are copied that way, through the sink's staging buffer (never faulting in the
/// mapping either).
#[derive(Debug)]
pub(crate) struct KernelCopy {
    file: Arc<File>,
    /// The file's mapping, kept alive so that an address inside it keeps meaning this file.
    mapping: Buffer,
    /// Cleared when the kernel cannot copy between these files: write from the mapping.
    pub(crate) enabled: bool,
}

impl KernelCopy {
    pub(crate) fn new(file: Arc<File>, mapping: Buffer) -> Self {
        KernelCopy {
            file,
            mapping,
            enabled: true,
        }
    }

    /// The file offset of `part`, if it lies (non-empty) inside the mapping.
    fn offset_of(&self, part: &[u8]) -> Option<u64> {
        let base = self.mapping.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        let inside =
            !part.is_empty() && start >= base && start + part.len() <= base + self.mapping.len();
        inside.then(|| (start - base) as u64)
    }

    /// Writes `part`, which lies at `from` in the file, at `to` in `out`: with
    /// `copy_file_range` when the offsets agree within a page, else through `staging` (at most
    /// `staging_len` bytes at a time); from the mapping where the kernel cannot copy.
    fn copy(
        &mut self,
        out: &File,
        (mut from, mut to): (u64, u64),
        part: &[u8],
        staging: &mut Vec<u8>,
        staging_len: usize,
    ) -> Result<()> {
        if from % PAGE != to % PAGE {
            return self.bounce(out, (from, to), part, staging, staging_len);
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
