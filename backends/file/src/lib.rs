//! The file backend of tensor-ipc: a sink that writes messages into a file with `pwritev`
//! straight from the tensor's memory (one copy of each body, by the kernel, into the page
//! cache), and a source that maps a file read-only so every tensor read from it is a zero-copy
//! view of the page cache.
//!
//! ```
//! use tensor_ipc::{Tensor, TensorSinkExt, TensorSourceExt};
//! use tensor_ipc_file::{FileSink, FileSource};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("t.arrow_tensor");
//! let mut sink = FileSink::create(&path)?;
//! sink.write_tensor(&Tensor::from_vec(vec![2.0f32; 1000], vec![1000])?)?;
//! sink.finish()?;
//!
//! let tensor = FileSource::open(&path)?.read_tensor()?; // points into the mapping
//! assert_eq!(tensor.values::<f32>()?[999], 2.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Mapped files
//! A mapping shows whatever the file holds. If another process truncates or rewrites a file
//! while a tensor read from it is alive, reads of that tensor may fault or see new bytes; use
//! [`FileSink::create_atomic`] to replace files (readers keep the old inode).

#![warn(missing_docs)]

mod map;
mod temporary;
mod write;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_buffer::Buffer;
use tensor_ipc::{
    Error, Gather, Result, TensorData, TensorSink, TensorSource, check_gather_len, check_parts_len,
};
use tensor_ipc_memory::BufferSource;

use temporary::Temporary;
pub use temporary::{NAMED_TEMPORARIES_VAR, remove_temporaries_on_signals};

/// The most bytes of a gathered (non-contiguous) body staged in memory at once: the body is
/// gathered a piece at a time into a buffer of this size, each piece written before the next.
pub const STAGING_LEN: usize = 1 << 20;

/// How a [`FileSink`] treats the file.
#[derive(Debug)]
enum Mode {
    /// Write in place (the file was created or truncated, or is being appended to).
    InPlace,
    /// Write a temporary file (see [`temporary`]) and put it over the target on `finish`.
    Atomic(Temporary),
}

/// A sink that writes tensor messages into a file, back to back.
///
/// Each message is written the cheapest way a file allows, at the offset after the last one:
///
/// * a whole message in memory ([`write_parts`](TensorSink::write_parts): a contiguous tensor,
///   a sparse tensor) goes to the kernel with `pwritev` from the tensor's own memory, its
///   parts as they are: no copy in user space;
/// * a gathered body ([`write_gather`](TensorSink::write_gather)) is gathered
///   [`STAGING_LEN`] bytes at a time into a reused staging buffer, each piece written with
///   `pwritev` while it is in cache;
/// * [`reserve`](TensorSink::reserve) lends a heap buffer of the message's size, written on
///   [`commit`](TensorSink::commit) (the writers of this crate never need it).
///
/// With [`copying_from`](FileSink::copying_from), parts that lie in a [`FileSource`]'s
/// mapping (a tensor read from another file, its body unchanged) are copied file to file by the
/// kernel (`copy_file_range`, a reflink where the file system can) without reading the
/// mapping.
///
/// The output is never mapped. If a write fails (a full disk), the file is cut back to the end
/// of the last complete message. A reservation that is not committed never reaches the file.
/// Nothing is synced until [`finish`](FileSink::finish).
#[derive(Debug)]
pub struct FileSink {
    file: File,
    /// Where the file will be when finished.
    target: PathBuf,
    mode: Mode,
    /// Bytes of committed messages (the file length).
    len: u64,
    /// The buffer lent by the last `reserve`, until committed.
    pending: Option<Vec<u8>>,
    /// The staging buffer of gathered bodies, kept for the next message.
    staging: Vec<u8>,
    /// Whether `finish` forces the bytes (and the rename) to disk.
    sync: bool,
    /// The source whose mapped bytes are copied with `copy_file_range`.
    kernel_copy: Option<write::KernelCopy>,
}

impl FileSink {
    /// Creates (or truncates) `path` and writes messages into it.
    pub fn create(path: impl AsRef<Path>) -> Result<FileSink> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::with_file(file, path.to_owned(), Mode::InPlace, 0))
    }

    /// Opens `path` (creating it if needed) and appends messages after its current end, to
    /// extend a stream of tensors.
    pub fn append(path: impl AsRef<Path>) -> Result<FileSink> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Self::with_file(file, path.to_owned(), Mode::InPlace, len))
    }

    /// Writes into a temporary file in the same directory and, on [`finish`](Self::finish),
    /// puts it over `path`: readers see the old file or the complete new one, never a
    /// partial one. The temporary file has no name at all where the file system allows it
    /// (`O_TMPFILE`), so a process killed at any moment leaves nothing; elsewhere it is
    /// `.NAME.PID.N.tmp` beside `path`, removed when the sink is dropped unfinished and, in a
    /// program that called [`remove_temporaries_on_signals`], on `SIGINT`/`SIGTERM`/`SIGHUP`.
    pub fn create_atomic(path: impl AsRef<Path>) -> Result<FileSink> {
        let path = path.as_ref();
        let (dir, name) = dir_and_name(path)?;
        let (file, temporary) = temporary::create(dir, name)?;
        Ok(Self::with_file(
            file,
            path.to_owned(),
            Mode::Atomic(temporary),
            0,
        ))
    }

    fn with_file(file: File, target: PathBuf, mode: Mode, len: u64) -> Self {
        FileSink {
            file,
            target,
            mode,
            len,
            pending: None,
            staging: Vec::new(),
            sync: true,
            kernel_copy: None,
        }
    }

    /// Bytes in the file so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The path the file will have once finished.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Copies the parts of messages that lie in `source`'s mapping straight from its file
    /// (`copy_file_range`: the kernel copies page cache to page cache, or shares the blocks
    /// where the file system can), instead of writing them from the mapping, which would fault
    /// every page of it in. Where the kernel cannot copy between the two files, the bytes are
    /// written from the mapping as usual. The sink keeps the mapping alive.
    pub fn copying_from(mut self, source: &FileSource) -> Self {
        self.kernel_copy = source
            .file
            .as_ref()
            .map(|(file, map)| write::KernelCopy::new(file.clone(), map.clone()));
        self
    }

    /// Whether [`finish`](Self::finish) forces the bytes to disk (the default, `true`). With
    /// `false`, `finish` only completes the file (renaming it into place in atomic mode):
    /// other processes see it whole at once, as with `cp`, but a crash may lose it.
    pub fn sync_on_finish(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Completes the file and makes it durable: syncs its data and metadata to disk (`fsync`)
    /// and, in atomic mode, renames it over the target and syncs the directory so that the
    /// rename is durable too. This is the only place the sink syncs; without
    /// [`sync_on_finish`](Self::sync_on_finish) only the rename is done. A reservation not
    /// committed is discarded.
    pub fn finish(mut self) -> Result<()> {
        self.pending = None;
        if self.sync {
            self.file.sync_all()?;
        }
        if let Mode::Atomic(temporary) = std::mem::replace(&mut self.mode, Mode::InPlace) {
            // Known good: `create_atomic` split the same path.
            let (dir, name) = dir_and_name(&self.target).expect("checked on creation");
            temporary.persist(&self.file, dir, name, &self.target)?;
            if let Some(dir) = self
                .target
                .parent()
                .filter(|p| self.sync && !p.as_os_str().is_empty())
            {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    }

    /// The file length after a message of `len` bytes.
    fn end_after(&self, len: usize) -> Result<u64> {
        if len == 0 {
            return Err(Error::SinkState("a message is never empty"));
        }
        self.len.checked_add(len as u64).ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the file length would overflow",
        })
    }

    /// Runs `write` (which writes one message of `len` bytes at the end of the file, given
    /// the file, that offset and the staging buffer); on success the message is committed, on
    /// failure the file is cut back to its end before. Any pending reservation is discarded.
    fn append_message(
        &mut self,
        len: usize,
        write: impl FnOnce(&File, u64, &mut Vec<u8>, Option<&mut write::KernelCopy>) -> Result<()>,
    ) -> Result<()> {
        let end = self.end_after(len)?;
        self.pending = None;
        let kernel_copy = self.kernel_copy.as_mut();
        match write(&self.file, self.len, &mut self.staging, kernel_copy) {
            Ok(()) => {
                self.len = end;
                Ok(())
            }
            Err(e) => {
                // Best effort: the write's error is the one to report.
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Mode::Atomic(temporary) = &self.mode {
            temporary.discard();
        }
    }
}

/// The directory (`.` for a bare name) and the file name of `path`.
fn dir_and_name(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the target path has no file name",
        ))
    })?;
    Ok((dir, name))
}

impl TensorSink for FileSink {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        self.pending = None;
        self.end_after(len)?;
        let mut buffer = Vec::new();
        buffer
            .try_reserve_exact(len)
            .map_err(|_| Error::AllocationFailed { bytes: len as u64 })?;
        buffer.resize(len, 0);
        Ok(self.pending.insert(buffer))
    }

    fn commit(&mut self) -> Result<()> {
        let buffer = self
            .pending
            .take()
            .ok_or(Error::SinkState("commit without reserve"))?;
        self.append_message(buffer.len(), |file, offset, _, _| {
            write::write_all_at(file, &[&buffer], offset)
        })
    }

    /// Writes the parts with `pwritev` from where they lie (those in the mapping of the
    /// [`copying_from`](FileSink::copying_from) source with `copy_file_range`).
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        check_parts_len(len, parts)?;
        self.append_message(len, |file, offset, staging, kernel_copy| {
            write::write_parts_at(file, parts, offset, kernel_copy, staging, STAGING_LEN)
        })
    }

    /// Gathers the body [`STAGING_LEN`] bytes at a time into the staging buffer, writing each
    /// piece (the first one together with `head`) before gathering the next.
    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> Result<()> {
        check_gather_len(len, head, body)?;
        self.append_message(len, |file, offset, staging, _| {
            write::write_gathered_at(file, head, body, offset, staging, STAGING_LEN)
        })
    }
}

/// A source that maps a whole file read-only; tensors read from it share the mapping, which
/// stays alive as long as any of them does.
#[derive(Clone, Debug)]
pub struct FileSource {
    /// The mapping, read as a shared buffer.
    inner: BufferSource,
    /// The file and its mapping (`None` when empty), for sinks that copy from it.
    file: Option<(Arc<File>, map::SharedMap)>,
}

impl FileSource {
    /// Maps `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<FileSource> {
        let file = File::open(path)?;
        Self::from_file(&file)
    }

    /// Maps an open file read-only.
    pub fn from_file(file: &File) -> Result<FileSource> {
        let len = file.metadata()?.len();
        let (buffer, file) = if len == 0 {
            (Buffer::from_vec(Vec::<u8>::new()), None)
        } else {
            let map = map::SharedMap::readonly(file)?;
            let buffer = Buffer::from(bytes::Bytes::from_owner(map.clone()));
            (buffer, Some((Arc::new(file.try_clone()?), map)))
        };
        Ok(FileSource {
            inner: BufferSource::new(buffer),
            file,
        })
    }

    /// The whole mapped file.
    pub fn buffer(&self) -> &Buffer {
        self.inner.buffer()
    }

    /// Bytes consumed so far: the file offset of the next message.
    pub fn position(&self) -> usize {
        self.inner.position()
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.inner.remaining()
    }
}

impl TensorSource<'static> for FileSource {
    fn peek(&mut self, len: usize) -> Result<&[u8]> {
        self.inner.peek(len)
    }

    fn take(&mut self, len: usize) -> Result<TensorData<'static>> {
        self.inner.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor_ipc::conformance::{Backend, run_all};
    use tensor_ipc::{Tensor, TensorSinkExt, TensorSourceExt};

    /// Each sink writes a new file in a temporary directory.
    struct Files {
        dir: tempfile::TempDir,
        next: u32,
    }

    impl Files {
        fn new() -> Self {
            Files {
                dir: tempfile::tempdir().expect("tempdir"),
                next: 0,
            }
        }
        fn path(&mut self) -> PathBuf {
            self.next += 1;
            self.dir.path().join(format!("{}.arrow_tensor", self.next))
        }
    }

    impl Backend for Files {
        type Sink = FileSink;
        type Source = FileSource;
        fn sink(&mut self) -> FileSink {
            FileSink::create(self.path()).expect("create")
        }
        fn source(&mut self, sink: FileSink) -> FileSource {
            let path = sink.path().to_owned();
            sink.finish().expect("finish");
            FileSource::open(path).expect("open")
        }
        fn source_from_bytes(&mut self, bytes: &[u8]) -> FileSource {
            let path = self.path();
            std::fs::write(&path, bytes).expect("write");
            FileSource::open(path).expect("open")
        }
    }

    #[test]
    fn file_backend_conforms() {
        run_all(&mut Files::new());
    }

    fn tensor(n: usize) -> Tensor<'static> {
        Tensor::from_vec((0..n as u32).collect::<Vec<_>>(), vec![n]).unwrap()
    }

    #[test]
    fn append_extends_a_stream() {
        let mut files = Files::new();
        let path = files.path();
        let mut sink = FileSink::create(&path).unwrap();
        sink.write_tensor(&tensor(3)).unwrap();
        sink.finish().unwrap();
        let mut sink = FileSink::append(&path).unwrap();
        sink.write_tensor(&tensor(5)).unwrap();
        sink.finish().unwrap();
        let mut source = FileSource::open(&path).unwrap();
        let lens: Vec<usize> = source
            .tensors(Default::default())
            .map(|t| t.unwrap().len())
            .collect();
        assert_eq!(lens, [3, 5]);
    }

    #[test]
    fn atomic_sink_replaces_only_when_finished() {
        let mut files = Files::new();
        let path = files.path();
        std::fs::write(&path, b"old").unwrap();
        let mut sink = FileSink::create_atomic(&path).unwrap();
        sink.write_tensor(&tensor(4)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(sink);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(files.dir.path()).unwrap().count(),
            1,
            "temp removed"
        );
        let mut sink = FileSink::create_atomic(&path).unwrap();
        sink.write_tensor(&tensor(4)).unwrap();
        sink.finish().unwrap();
        let t = FileSource::open(&path).unwrap().read_tensor().unwrap();
        assert_eq!(t.to_vec::<u32>().unwrap(), [0, 1, 2, 3]);
        assert_eq!(std::fs::read_dir(files.dir.path()).unwrap().count(), 1);
    }

    /// A `(rows, 64, 16)` f32 transpose of more than [`STAGING_LEN`] bytes: gathered in
    /// several pieces.
    fn big_transposed_view() -> Tensor<'static> {
        let rows = 3 * STAGING_LEN / (64 * 16 * 4) + 7;
        let base = Tensor::from_vec(
            (0..rows * 64 * 16).map(|i| i as f32).collect::<Vec<_>>(),
            vec![64, rows, 16],
        )
        .unwrap();
        Tensor::with_layout(
            tensor_ipc::DType::Float32,
            base.data().clone(),
            vec![rows, 64, 16],
            vec![64, rows * 64, 4],
            Vec::new(),
        )
        .unwrap()
    }

    #[test]
    fn gathered_bodies_go_through_the_staging_buffer() {
        let mut files = Files::new();
        let path = files.path();
        let view = big_transposed_view();
        let mut sink = FileSink::create(&path).unwrap();
        sink.write_tensor(&tensor(5)).unwrap();
        let written = sink.write_tensor(&view).unwrap();
        assert!(written > 3 * STAGING_LEN);
        assert!(
            sink.staging.capacity() <= 2 * STAGING_LEN,
            "the staging stays small"
        );
        sink.finish().unwrap();
        let mut expected = Vec::new();
        tensor_ipc::write_tensor(&tensor(5), &mut expected).unwrap();
        tensor_ipc::write_tensor(&view, &mut expected).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn abandoned_reservations_never_reach_the_file() {
        let mut files = Files::new();
        let path = files.path();
        let mut sink = FileSink::create(&path).unwrap();
        sink.write_tensor(&tensor(3)).unwrap();
        let len = sink.len();
        TensorSink::reserve(&mut sink, 1000).unwrap().fill(0xAB);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        // The next message replaces it; a later one abandoned is discarded by finish.
        sink.write_tensor(&tensor(4)).unwrap();
        TensorSink::reserve(&mut sink, 10).unwrap();
        sink.finish().unwrap();
        let mut source = FileSource::open(&path).unwrap();
        let lens: Vec<usize> = source
            .tensors(Default::default())
            .map(|t| t.unwrap().len())
            .collect();
        assert_eq!(lens, [3, 4]);
        // reserve + commit still works, through the heap buffer.
        let mut sink = FileSink::append(&path).unwrap();
        TensorSink::reserve(&mut sink, 4)
            .unwrap()
            .copy_from_slice(b"\0\0\0\0");
        sink.commit().unwrap();
        assert!(sink.commit().is_err(), "commit without reserve");
        sink.finish().unwrap();
        let four = tensor_ipc::tensor_size(&tensor(4)).unwrap() as u64;
        assert_eq!(std::fs::read(&path).unwrap().len() as u64, len + four + 4);
    }

    #[test]
    fn parts_in_a_source_mapping_are_copied_by_the_kernel() {
        let mut files = Files::new();
        let (input, output) = (files.path(), files.path());
        let mut sink = FileSink::create(&input).unwrap();
        sink.write_tensor(&tensor(1000)).unwrap();
        sink.write_tensor(&tensor(3000)).unwrap();
        sink.finish().unwrap();
        let mut source = FileSource::open(&input).unwrap();
        let first = source.read_tensor().unwrap();
        let second = source.read_tensor().unwrap();
        let mut sink = FileSink::create(&output).unwrap().copying_from(&source);
        drop(source);
        // A tensor from the mapping (copied by the kernel), one from memory, then the body of
        // the first again, as a part among others.
        sink.write_tensor(&second).unwrap();
        sink.write_tensor(&tensor(7)).unwrap();
        let body = &first.as_bytes()[..4000];
        sink.write_parts(4 + 4000 + 3, &[b"head", body, b"end"])
            .unwrap();
        // The same body at an offset that agrees with its source offset within a page: the
        // copy_file_range path (the others went through the staging buffer).
        let pad = vec![0u8; ((192 + 4096) - (sink.len() % 4096) as usize) % 4096];
        sink.write_parts(pad.len() + 4000, &[&pad, body]).unwrap();
        assert!(
            sink.kernel_copy.as_ref().unwrap().enabled,
            "copy_file_range worked"
        );
        sink.finish().unwrap();
        let mut expected = Vec::new();
        tensor_ipc::write_tensor(&tensor(3000), &mut expected).unwrap();
        tensor_ipc::write_tensor(&tensor(7), &mut expected).unwrap();
        expected.extend_from_slice(b"head");
        let values = tensor(1000).to_row_major_bytes().unwrap();
        expected.extend_from_slice(&values);
        expected.extend_from_slice(b"end");
        expected.extend_from_slice(&pad);
        assert_eq!(expected.len() % 4096, 192);
        expected.extend_from_slice(&values);
        assert_eq!(std::fs::read(&output).unwrap(), expected);
    }

    #[test]
    fn a_body_shifted_within_a_page_is_written_from_the_mapping_window_by_window() {
        let mut files = Files::new();
        let (input, output) = (files.path(), files.path());
        // More than two windows, and not a whole number of them.
        let n = (2 * write::WINDOW + 12_345) / 4;
        let mut sink = FileSink::create(&input).unwrap();
        sink.write_tensor(&tensor(n)).unwrap();
        sink.finish().unwrap();
        let mut source = FileSource::open(&input).unwrap();
        let read = source.read_tensor().unwrap();
        let mut sink = FileSink::create(&output).unwrap().copying_from(&source);
        // The body lands 5 bytes after where it lies in its page: neither copy_file_range's
        // page-aligned path nor a whole-page copy.
        sink.write_parts(5 + read.as_bytes().len(), &[b"head5", read.as_bytes()])
            .unwrap();
        sink.finish().unwrap();
        let written = std::fs::read(&output).unwrap();
        assert_eq!(&written[..5], b"head5");
        assert!(written[5..] == *read.as_bytes(), "the body, byte for byte");
        // The windows released from this process's view read the same bytes again.
        assert_eq!(
            read.to_vec::<u32>().unwrap(),
            (0..n as u32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_failed_write_is_an_error() {
        if !Path::new("/dev/full").exists() {
            eprintln!("skipped: no /dev/full");
            return;
        }
        let mut sink = FileSink::append("/dev/full").unwrap();
        let err = sink.write_tensor(&tensor(1000)).unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.raw_os_error() == Some(28)),
            "{err}"
        );
        let err = sink.write_tensor(&big_transposed_view()).unwrap_err();
        assert!(matches!(&err, Error::Io(_)), "{err}");
        assert_eq!(sink.len(), 0);
    }

    #[test]
    fn tensors_outlive_the_source_and_share_the_mapping() {
        let mut files = Files::new();
        let path = files.path();
        let mut sink = FileSink::create(&path).unwrap();
        sink.write_tensor(&tensor(1000)).unwrap();
        sink.finish().unwrap();
        let mut source = FileSource::open(&path).unwrap();
        let mapping = source.buffer().as_ptr() as usize;
        let t = source.read_tensor().unwrap();
        drop(source);
        let data = t.as_bytes().as_ptr() as usize;
        assert_eq!(data - mapping, 192, "the tensor points into the mapping");
        let handle = std::thread::spawn(move || t.to_vec::<u32>().unwrap()[999]);
        assert_eq!(handle.join().unwrap(), 999);
    }
}
