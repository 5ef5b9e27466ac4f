//! [`Output`]: the sink a command writes, whichever [`Location`] it is. Nothing is visible at
//! the destination before [`Output::finish`].

use std::path::Path;

use tensor_ipc::{Gather, Result as CodecResult, TensorSink};
use tensor_ipc_file::FileSink;
use tensor_ipc_object_store::ObjectStoreSink;
use tensor_ipc_plasma_client::PlasmaSink;

use crate::error::{Error, Result, io_at, io_cause};
use crate::input::Input;
use crate::location::Location;
use crate::plasma;

/// A file written as a temporary file in its destination's directory (unnamed where the file
/// system allows, see [`FileSink::create_atomic`]) and put into place, an object uploaded (one
/// PUT, or a multipart upload completed on finish), or a Plasma object created and sealed.
pub(crate) enum Output {
    File(FileSink),
    Object(ObjectStoreSink),
    Plasma(PlasmaSink),
}

impl Output {
    /// Prepares to write `location`; a Plasma location needs `socket`.
    pub(crate) fn create(location: &Location, socket: Option<&Path>) -> Result<Output> {
        match location {
            // Not synced to disk on finish (like `cp` or `np.save`).
            Location::File(path) => FileSink::create_atomic(path)
                .map(|sink| Output::File(sink.sync_on_finish(false)))
                .map_err(|e| io_at(path, "create")(io_cause(e))),
            Location::Url(url) => ObjectStoreSink::create_url(url)
                .map(Output::Object)
                .map_err(|e| Error::command(e.to_string())),
            Location::Plasma(id) => {
                let client = plasma::connect(socket, *id)?;
                Ok(Output::Plasma(plasma::sink(&client, *id)))
            }
        }
    }

    /// Bytes written unchanged from `input` (a contiguous body), when both are files, are
    /// copied file to file by the kernel without faulting in the input's mapping (see
    /// [`FileSink::copying_from`]).
    pub(crate) fn copying_from(self, input: &Input) -> Output {
        match (self, input) {
            (Output::File(sink), Input::File(source)) => Output::File(sink.copying_from(source)),
            (output, _) => output,
        }
    }

    /// Makes what was written visible at the destination.
    pub(crate) fn finish(self, location: &Location) -> Result<()> {
        match self {
            Output::File(sink) => sink.finish().map_err(|e| match location {
                Location::File(path) => io_at(path, "write")(io_cause(e)),
                other => Error::command(format!("cannot write {other}: {}", io_cause(e))),
            }),
            Output::Object(sink) => sink
                .finish()
                .map(drop)
                .map_err(|e| Error::command(e.to_string())),
            // Sealed as each message is committed.
            Output::Plasma(_) => Ok(()),
        }
    }
}

impl TensorSink for Output {
    fn reserve(&mut self, len: usize) -> CodecResult<&mut [u8]> {
        match self {
            Output::File(sink) => sink.reserve(len),
            Output::Object(sink) => sink.reserve(len),
            Output::Plasma(sink) => sink.reserve(len),
        }
    }

    fn commit(&mut self) -> CodecResult<()> {
        match self {
            Output::File(sink) => sink.commit(),
            Output::Object(sink) => sink.commit(),
            Output::Plasma(sink) => sink.commit(),
        }
    }

    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> CodecResult<()> {
        match self {
            Output::File(sink) => sink.write_parts(len, parts),
            Output::Object(sink) => sink.write_parts(len, parts),
            Output::Plasma(sink) => sink.write_parts(len, parts),
        }
    }

    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> CodecResult<()> {
        match self {
            Output::File(sink) => sink.write_gather(len, head, body),
            Output::Object(sink) => sink.write_gather(len, head, body),
            Output::Plasma(sink) => sink.write_gather(len, head, body),
        }
    }
}
