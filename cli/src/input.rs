//! [`Input`]: the source a command reads, whichever [`Location`] it is.

use std::fs::File;
use std::path::Path;

use arrow_buffer::Buffer;
use tensor_ipc::{Result as CodecResult, TensorData, TensorSource};
use tensor_ipc_file::FileSource;
use tensor_ipc_memory::BufferSource;
use tensor_ipc_object_store::{ObjectStorage, ObjectStoreSource, TransferOptions};

use crate::error::{Error, Result, fail, io_at, io_cause};
use crate::location::Location;
use crate::plasma;

/// The window of a headers-only read: a dense tensor header is a few hundred bytes.
const HEADER_WINDOW: usize = 4 << 10;

/// A file (mapped read-only), an object (read with ranged GETs: a header never brings its
/// body), or a Plasma object (its shared memory).
pub(crate) enum Input {
    File(FileSource),
    Object(ObjectStoreSource),
    /// Bytes in memory: a Plasma object's shared memory, or bytes already read.
    Memory(BufferSource),
}

impl Input {
    /// Opens `location`; a Plasma location needs `socket`.
    pub(crate) fn open(location: &Location, socket: Option<&Path>) -> Result<Input> {
        Self::open_with(location, socket, TransferOptions::default())
    }

    /// Opens `location` to read headers only (`inspect`): an object's first read fetches a
    /// few KiB rather than the default window, since no body will follow it.
    pub(crate) fn open_for_headers(location: &Location, socket: Option<&Path>) -> Result<Input> {
        Self::open_with(
            location,
            socket,
            TransferOptions::default().with_read_ahead(HEADER_WINDOW),
        )
    }

    fn open_with(
        location: &Location,
        socket: Option<&Path>,
        transfer: TransferOptions,
    ) -> Result<Input> {
        match location {
            Location::File(path) => open_file(path).map(Input::File),
            Location::Url(url) => ObjectStorage::from_url(url)
                .and_then(|(storage, key)| {
                    ObjectStoreSource::open(&storage.with_transfer(transfer), key)
                })
                .map(Input::Object)
                .map_err(|e| Error::command(e.to_string())),
            Location::Plasma(id) => {
                let client = plasma::connect(socket, *id)?;
                Ok(Input::Memory(BufferSource::new(plasma::get(&client, *id)?)))
            }
        }
    }

    /// Bytes consumed so far: the offset of the next message.
    pub(crate) fn position(&self) -> u64 {
        match self {
            Input::File(file) => file.position() as u64,
            Input::Object(object) => object.position(),
            Input::Memory(buffer) => buffer.position() as u64,
        }
    }

    /// What an empty input is called in messages.
    pub(crate) fn empty_name(&self) -> &'static str {
        match self {
            Input::File(_) => "empty file",
            Input::Object(_) | Input::Memory(_) => "empty object",
        }
    }

    /// The whole input's size.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Input::File(file) => file.buffer().len() as u64,
            Input::Object(object) => object.size(),
            Input::Memory(buffer) => buffer.buffer().len() as u64,
        }
    }

    /// Every byte from the current position on, in memory (for an object: fetched into one
    /// aligned allocation).
    pub(crate) fn rest(&mut self, location: &Location) -> Result<Buffer> {
        let len = usize::try_from(self.size() - self.position())
            .map_err(|_| Error::command(format!("{location}: too large for this machine")))?;
        match self.take(len) {
            Ok(TensorData::Shared(buffer)) => Ok(buffer),
            Ok(TensorData::Borrowed(bytes)) => Ok(Buffer::from_slice_ref(bytes)),
            Err(e) => fail(format!("{location}: {}", io_cause(e))),
        }
    }
}

/// Maps a regular file read-only (an empty file gives an empty source).
fn open_file(path: &Path) -> Result<FileSource> {
    let file = File::open(path).map_err(io_at(path, "open"))?;
    let meta = file.metadata().map_err(io_at(path, "read"))?;
    if !meta.is_file() {
        return fail(format!("{}: not a regular file", path.display()));
    }
    FileSource::from_file(&file).map_err(|e| io_at(path, "map")(io_cause(e)))
}

impl TensorSource<'static> for Input {
    fn peek(&mut self, len: usize) -> CodecResult<&[u8]> {
        match self {
            Input::File(file) => file.peek(len),
            Input::Object(object) => object.peek(len),
            Input::Memory(buffer) => buffer.peek(len),
        }
    }

    fn take(&mut self, len: usize) -> CodecResult<TensorData<'static>> {
        match self {
            Input::File(file) => file.take(len),
            Input::Object(object) => object.take(len),
            Input::Memory(buffer) => buffer.take(len),
        }
    }

    fn skip(&mut self, len: usize) -> CodecResult<()> {
        match self {
            Input::File(file) => file.skip(len),
            Input::Object(object) => object.skip(len),
            Input::Memory(buffer) => buffer.skip(len),
        }
    }
}
