//! The shared-memory segment: one memfd (or an unlinked file in a directory,
//! hugetlbfs with hugepages), sealed against resizing where the kernel allows,
//! mapped once into the store.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use memmap2::MmapRaw;
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

/// Page size used to round segment sizes.
const PAGE: u64 = 4096;
/// Huge page size used to round segment sizes with hugepages.
const HUGE_PAGE: u64 = 2 << 20;

/// A mapped shared-memory segment.
pub(crate) struct Segment {
    fd: OwnedFd,
    map: MmapRaw,
    len: u64,
    sealed: bool,
    /// Whether the pages live in memory only (memfd, tmpfs, hugetlbfs), not on a disk.
    in_memory: bool,
}

impl Segment {
    /// Creates a segment of at least `len` bytes, in `dir` when given
    /// (an `O_TMPFILE`, never linked) or as a memfd otherwise.
    pub(crate) fn create(len: u64, dir: Option<&Path>, hugepages: bool) -> io::Result<Self> {
        let unit = if hugepages { HUGE_PAGE } else { PAGE };
        let len = len
            .max(unit)
            .checked_next_multiple_of(unit)
            .ok_or_else(|| io::Error::other("segment size overflows"))?;
        let (fd, sealable) = match dir {
            Some(dir) => (open_unlinked(dir)?, false),
            None => {
                let mut flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
                if hugepages {
                    flags |= MemfdFlags::HUGETLB;
                }
                (rustix::fs::memfd_create("plasma-store", flags)?, true)
            }
        };
        rustix::fs::ftruncate(&fd, len)?;
        let sealed = sealable
            && rustix::fs::fcntl_add_seals(
                &fd,
                SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
            )
            .is_ok();
        let map = MmapRaw::map_raw(&fd)?;
        // Where the kernel offers transparent huge pages for shared memory on request
        // (`shmem_enabled` = `advise`), ask for them: the pages are then allocated huge, and
        // clients map them 2 MiB at a time. Elsewhere this advice changes nothing.
        let _ = map.advise(memmap2::Advice::HugePage);
        let in_memory = dir.is_none() || is_memory_fs(&fd);
        Ok(Self {
            fd,
            map,
            len,
            sealed,
            in_memory,
        })
    }

    /// Allocates and zeroes the backing pages up front (best effort), so
    /// that a client's first write to an object only maps pages that already
    /// exist. `MADV_POPULATE_WRITE` (Linux 5.14) does it in one call, for
    /// memory file systems only (on a disk it would write the whole segment
    /// out as zeros); `fallocate` is the fallback, which allocates blocks but
    /// leaves the zeroing to the first fault.
    pub(crate) fn prefault(&self) {
        let populated = self.in_memory && self.map.advise(memmap2::Advice::PopulateWrite).is_ok();
        if !populated {
            let _ =
                rustix::fs::fallocate(&self.fd, rustix::fs::FallocateFlags::empty(), 0, self.len);
        }
    }

    /// Mapped length (the size clients map).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the segment is sealed against shrinking and growing.
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The segment's fd, sent to clients.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The key clients use for this segment (`store_fd`): the store's fd
    /// number, stable for the segment's life.
    pub(crate) fn key(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn check(&self, offset: u64, len: usize) -> usize {
        let end = offset
            .checked_add(len as u64)
            .expect("segment range overflows");
        assert!(
            end <= self.len,
            "segment range {offset}+{len} outside {}",
            self.len
        );
        offset as usize
    }

    /// Copies `bytes` into the segment at `offset`.
    ///
    /// Panics if the range is outside the segment (the store only passes
    /// ranges of live allocations).
    pub(crate) fn write(&self, offset: u64, bytes: &[u8]) {
        let at = self.check(offset, bytes.len());
        // SAFETY: `check` proved `at..at+len` lies inside the mapping, which
        // lives as long as `self`; the mapping is shared memory that clients
        // may also write, so only raw byte copies touch it (no references).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(at),
                bytes.len(),
            );
        }
    }

    /// Copies `len` bytes at `offset` out of the segment.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let at = self.check(offset, len);
        let mut out = vec![0u8; len];
        // SAFETY: as in `write`: the range is inside the live mapping and is
        // copied bytewise into memory we own.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(at), out.as_mut_ptr(), len);
        }
        out
    }
}

/// `f_type` of tmpfs and of hugetlbfs in `statfs`.
const TMPFS_MAGIC: u64 = 0x0102_1994;
const HUGETLBFS_MAGIC: u64 = 0x9584_58f6;

/// Whether `fd` lives on tmpfs or hugetlbfs.
fn is_memory_fs(fd: &OwnedFd) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|st| {
        let kind = st.f_type as u64;
        kind == TMPFS_MAGIC || kind == HUGETLBFS_MAGIC
    })
}

/// Opens an anonymous file in `dir`: `O_TMPFILE` where supported, else a
/// uniquely named file that is unlinked at once.
fn open_unlinked(dir: &Path) -> io::Result<OwnedFd> {
    let mode = Mode::from_raw_mode(0o600);
    match rustix::fs::open(dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, mode) {
        Ok(fd) => return Ok(fd),
        Err(e) if e == rustix::io::Errno::NOTDIR || e == rustix::io::Errno::NOENT => {
            return Err(e.into());
        }
        Err(_) => {}
    }
    for attempt in 0..100u32 {
        let name = dir.join(format!(
            "plasma-{}-{}-{attempt}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        match rustix::fs::open(
            &name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
            mode,
        ) {
            Ok(fd) => {
                rustix::fs::unlink(&name)?;
                return Ok(fd);
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("could not create a segment file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfd_segment_is_sealed_and_readable() {
        let seg = Segment::create(10_000, None, false).unwrap();
        assert_eq!(seg.len(), 12_288);
        assert!(seg.is_sealed());
        seg.write(100, b"hello");
        assert_eq!(seg.read(100, 5), b"hello");
        // A client cannot shrink it.
        assert!(rustix::fs::ftruncate(seg.fd(), 10).is_err());
    }

    #[test]
    fn dir_segment_is_unlinked() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(5000, Some(dir.path()), false).unwrap();
        seg.write(0, b"x");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn only_memory_segments_are_populated() {
        let memfd = Segment::create(1 << 20, None, false).unwrap();
        assert!(memfd.in_memory);
        memfd.prefault();
        assert_eq!(memfd.read(12_345, 3), [0, 0, 0]);
        if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
            assert!(
                Segment::create(5000, Some(shm.path()), false)
                    .unwrap()
                    .in_memory
            );
        }
        // The checkout is on a disk here (if it is on tmpfs, the file must count as memory).
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let checkout_on_tmpfs =
            rustix::fs::statfs(disk.path()).unwrap().f_type as u64 == TMPFS_MAGIC;
        let seg = Segment::create(1 << 20, Some(disk.path()), false).unwrap();
        assert_eq!(seg.in_memory, checkout_on_tmpfs);
        seg.prefault();
        assert_eq!(seg.read(12_345, 3), [0, 0, 0]);
    }
}
