//! What `inspect` and `convert` share: opening an input, reading tensor messages leniently,
//! and naming layouts on one line.

use std::fmt;

use tensor_ipc::{
    DType, Error as CodecError, Framing, Header, Message, MessageHeader, ReadOptions, Tensor,
    layout,
};

use crate::error::Result;
use crate::input::Input;
use crate::location::Location;
use crate::npy;

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
pub(crate) fn layout_name(dtype: DType, shape: &[usize], strides: &[usize]) -> &'static str {
    let width = dtype.byte_width();
    if layout::is_row_major(shape, strides, width) {
        "row-major"
    } else if layout::is_column_major(shape, strides, width) {
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

/// The hint for an input whose first bytes show it is plainly something else, read before
/// its first message.
pub(crate) fn first_bytes_hint(input: &mut Input) -> Option<&'static str> {
    tensor_ipc::TensorSource::peek(input, 8)
        .ok()
        .and_then(not_a_tensor_file_hint)
}

/// The error of reading message `index` at byte `offset` of `location`, with `hint` for the
/// first message.
fn message_error(
    location: &Location,
    index: usize,
    offset: u64,
    e: CodecError,
    hint: Option<&str>,
) -> crate::Error {
    let hint = match (index, hint) {
        (0, Some(hint)) => format!(" ({hint})"),
        _ => String::new(),
    };
    crate::Error::command(format!(
        "{location}: message {index} at byte offset {offset}: {e}{hint}"
    ))
}

/// Reads the header of the next message (message number `index`) and moves past its body
/// without reading it. An error names the input, the message and its byte offset.
pub(crate) fn next_header(
    location: &Location,
    input: &mut Input,
    index: usize,
    hint: Option<&str>,
) -> Result<Option<MessageHeader>> {
    let offset = input.position();
    tensor_ipc::read_message_header(input, &ReadOptions::default())
        .map_err(|e| message_error(location, index, offset, e, hint))
}

/// Reads the next message (message number `index`) with its body.
pub(crate) fn next_message(
    location: &Location,
    input: &mut Input,
    index: usize,
    hint: Option<&str>,
) -> Result<Option<Message<'static>>> {
    let offset = input.position();
    tensor_ipc::read_message(input, &ReadOptions::default())
        .map_err(|e| message_error(location, index, offset, e, hint))
}
