//! The file backend of tensor-ipc: a sink that writes messages into a file through a writable
//! mapping (one copy of each body), and a source that maps a file read-only so every tensor
//! read from it is a zero-copy view of the page cache.
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

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use arrow_buffer::Buffer;
use memmap2::MmapMut;
use tensor_ipc::{Error, Result, TensorData, TensorSink, TensorSource};
use tensor_ipc_memory::BufferSource;

/// How a [`FileSink`] treats the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Write in place (the file was created or truncated, or is being appended to).
    InPlace,
    /// Write a temporary file beside the target and rename it over the target on `finish`.
    Atomic,
}

/// A sink that writes tensor messages into a file, back to back.
///
/// Each [`reserve`](TensorSink::reserve) grows the file by exactly the message size and maps
/// that range writable, so the writer copies the body once, straight into the page cache.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    /// Where the file will be when finished.
    target: PathBuf,
    /// The file being written (equal to `target` unless atomic).
    written: PathBuf,
    mode: Mode,
    /// Bytes of committed messages (the file length).
    len: u64,
    /// The mapping lent by the last `reserve`, until committed.
    pending: Option<MmapMut>,
    /// Whether `finish` forces the bytes (and the rename) to disk.
    sync: bool,
    finished: bool,
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
        Ok(Self::with_file(
            file,
            path.to_owned(),
            path.to_owned(),
            Mode::InPlace,
            0,
        ))
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
        Ok(Self::with_file(
            file,
            path.to_owned(),
            path.to_owned(),
            Mode::InPlace,
            len,
        ))
    }

    /// Writes into a temporary file in the same directory and, on [`finish`](Self::finish),
    /// renames it over `path`: readers see the old file or the complete new one, never a
    /// partial one. Dropping the sink without finishing removes the temporary file.
    pub fn create_atomic(path: impl AsRef<Path>) -> Result<FileSink> {
        let path = path.as_ref();
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
        let mut attempt = 0u32;
        loop {
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{}.{attempt}.tmp", std::process::id()));
            let temp = dir.join(temp_name);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(Self::with_file(
                        file,
                        path.to_owned(),
                        temp,
                        Mode::Atomic,
                        0,
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn with_file(file: File, target: PathBuf, written: PathBuf, mode: Mode, len: u64) -> Self {
        FileSink {
            file,
            target,
            written,
            mode,
            len,
            pending: None,
            sync: true,
            finished: false,
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

    /// Whether [`finish`](Self::finish) forces the bytes to disk (the default, `true`). With
    /// `false`, `finish` only completes the file (renaming it into place in atomic mode):
    /// other processes see it whole at once, as with `cp`, but a crash may lose it.
    pub fn sync_on_finish(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Flushes the file to disk and, in atomic mode, renames it into place (then syncs the
    /// directory so the rename is durable). Without [`sync_on_finish`](Self::sync_on_finish)
    /// only the rename is done.
    pub fn finish(mut self) -> Result<()> {
        if self.pending.is_some() {
            return Err(Error::SinkState(
                "finish with a reserved, uncommitted message",
            ));
        }
        if self.sync {
            self.file.sync_all()?;
        }
        if self.mode == Mode::Atomic {
            std::fs::rename(&self.written, &self.target)?;
            if let Some(dir) = self
                .target
                .parent()
                .filter(|p| self.sync && !p.as_os_str().is_empty())
            {
                File::open(dir)?.sync_all()?;
            }
        }
        self.finished = true;
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.mode == Mode::Atomic && !self.finished {
            let _ = std::fs::remove_file(&self.written);
        }
    }
}

impl TensorSink for FileSink {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        if let Some(uncommitted) = self.pending.take() {
            // A message reserved but never committed is discarded.
            drop(uncommitted);
            self.file.set_len(self.len)?;
        }
        if len == 0 {
            return Err(Error::SinkState("a message is never empty"));
        }
        let end = self.len.checked_add(len as u64).ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the file length would overflow",
        })?;
        self.file.set_len(end)?;
        allocate_blocks(&self.file, self.len, len as u64)?;
        let map = map::map_writable(&self.file, self.len, len)?;
        Ok(&mut self.pending.insert(map)[..])
    }

    fn commit(&mut self) -> Result<()> {
        let map = self
            .pending
            .take()
            .ok_or(Error::SinkState("commit without reserve"))?;
        self.len += map.len() as u64;
        Ok(())
    }
}

/// Reserves disk blocks for `len` bytes from `offset`, so that a full disk is an error now
/// rather than a SIGBUS when the mapping is written. File systems without `fallocate` keep the
/// sparse file `set_len` made.
fn allocate_blocks(file: &File, offset: u64, len: u64) -> Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    use rustix::io::Errno;
    match fallocate(file, FallocateFlags::empty(), offset, len) {
        Ok(()) | Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(()),
        Err(errno) => Err(std::io::Error::from(errno).into()),
    }
}

/// A source that maps a whole file read-only; tensors read from it share the mapping, which
/// stays alive as long as any of them does.
#[derive(Clone, Debug)]
pub struct FileSource {
    /// The mapping, read as a shared buffer.
    inner: BufferSource,
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
        let buffer = if len == 0 {
            Buffer::from_vec(Vec::<u8>::new())
        } else {
            let map = map::map_readonly(file)?;
            Buffer::from(bytes::Bytes::from_owner(map))
        };
        Ok(FileSource {
            inner: BufferSource::new(buffer),
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
