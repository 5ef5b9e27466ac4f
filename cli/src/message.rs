//! What `inspect` and `convert` share: opening an input, reading tensor messages leniently,
//! and naming layouts on one line.

use std::fmt;
use std::fs::File;
use std::path::Path;

use tensor_ipc::{Error as CodecError, Framing, Header, Message, ReadOptions, Tensor, layout};
use tensor_ipc_file::FileSource;

use crate::error::{Result, fail, io_at, io_cause};
use crate::npy;

/// Maps a regular file read-only (an empty file gives an empty source).
pub(crate) fn open_input(path: &Path) -> Result<FileSource> {
    let file = File::open(path).map_err(io_at(path, "open"))?;
    let meta = file.metadata().map_err(io_at(path, "read"))?;
    if !meta.is_file() {
        return fail(format!("{}: not a regular file", path.display()));
    }
    FileSource::from_file(&file).map_err(|e| io_at(path, "map")(io_cause(e)))
}

/// The options messages are read with, refusing misaligned data (which [`tensor_of`] then
/// accepts in place).
pub(crate) fn strict() -> ReadOptions {
    ReadOptions::default().with_require_alignment(true)
}

/// The tensor of a dense tensor message, validated as `read_tensor` validates it but never
/// copied: data that is misaligned for its element type is used where it lies (the CLI only
/// copies bytes).
pub(crate) fn tensor_of<'a>(message: &Message<'a>) -> tensor_ipc::Result<Tensor<'a>> {
    match message.clone().into_tensor(&strict()) {
        Ok(tensor) => Ok(tensor),
        Err(CodecError::Misaligned { .. }) => {
            // Every other check passed (alignment is checked last), so the strides are the
            // ones the reader accepts: negative strides only where they address nothing.
            let Header::Tensor(header) = &message.header else {
                return Err(CodecError::UnexpectedHeader {
                    found: message.header.type_name(),
                    expected: "Tensor",
                });
            };
            let width = header.dtype.byte_width();
            let strides = match &header.strides {
                None => layout::row_major_strides(&header.shape, width)?,
                Some(raw) => raw.iter().map(|&s| s.max(0) as usize).collect(),
            };
            Tensor::with_layout(
                header.dtype,
                message.body.clone(),
                header.shape.clone(),
                strides,
                header.dim_names.clone(),
            )
        }
        Err(e) => Err(e),
    }
}

/// `continuation` or `legacy`.
pub(crate) fn framing_name(framing: Framing) -> &'static str {
    match framing {
        Framing::Continuation => "continuation",
        Framing::Legacy => "legacy",
    }
}

/// `V5` for metadata version code 4.
pub(crate) fn version_name(code: i16) -> String {
    format!("V{}", i32::from(code) + 1)
}

/// `[a,b,c]`.
pub(crate) fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// Dimension names, quoted and escaped so the line stays one line; `-` for none.
pub(crate) fn names(names: &[String]) -> String {
    if names.is_empty() {
        return "-".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("[{}]", quoted.join(","))
}

/// `row-major`, `column-major` or `strided`.
pub(crate) fn layout_name(tensor: &Tensor<'_>) -> &'static str {
    if tensor.is_row_major() {
        "row-major"
    } else if tensor.is_column_major() {
        "column-major"
    } else {
        "strided"
    }
}

/// Hints for inputs that are plainly something else.
pub(crate) fn not_a_tensor_file_hint(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(npy::MAGIC) {
        Some("this is a NumPy .npy file, not an Arrow IPC tensor file")
    } else if bytes.starts_with(b"ARROW1") {
        Some("this is an Arrow IPC file-format (Feather v2) file, not a tensor stream")
    } else {
        None
    }
}

/// Reads the next message of the file `path`, whose bytes are `bytes`, from `source` (a
/// suffix of `bytes`): message number `index`. An error names the file, the message and its
/// byte offset, with a hint when the first message of a file that is plainly something else
/// fails.
pub(crate) fn next_message<'a>(
    path: &Path,
    bytes: &'a [u8],
    source: &mut &'a [u8],
    index: usize,
) -> Result<Option<Message<'a>>> {
    let offset = bytes.len() - source.len();
    tensor_ipc::read_message(source, &ReadOptions::default()).map_err(|e| {
        let hint = match (index, not_a_tensor_file_hint(bytes)) {
            (0, Some(hint)) => format!(" ({hint})"),
            _ => String::new(),
        };
        crate::Error::command(format!(
            "{}: message {index} at byte offset {offset}: {e}{hint}",
            path.display()
        ))
    })
}
