//! `tensor-ipc cp SRC DST`: a stream of tensor messages copied as it is between files,
//! object-store URLs and (with `--socket`) Plasma objects.

use std::path::Path;

use tensor_ipc::TensorSink;
use tensor_ipc_memory::BufferSource;

use crate::error::{Error, Result, fail, io_cause};
use crate::input::Input;
use crate::location::Location;
use crate::message::{first_bytes_hint, next_header};
use crate::output::Output;

/// Copies every byte of `src` to `dst` after checking that they are Arrow IPC messages
/// (headers only: bodies are not parsed). A Plasma destination becomes one object holding
/// the whole stream; nothing appears at the destination unless the whole copy succeeded.
pub(crate) fn cp(src: &Location, dst: &Location, socket: Option<&Path>) -> Result<()> {
    let mut input = Input::open(src, socket)?;
    if input.size() == 0 {
        return fail(format!(
            "{src}: {} (no Arrow IPC message to copy)",
            input.empty_name()
        ));
    }
    let bytes = input.rest(src)?;
    check_messages(src, Input::Memory(BufferSource::new(bytes.clone())))?;
    let mut output = Output::create(dst, socket)?.copying_from(&input);
    output
        .write_parts(bytes.len(), &[bytes.as_slice()])
        .map_err(|e| Error::command(format!("cannot write {dst}: {}", io_cause(e))))?;
    output.finish(dst)
}

/// Reads every header of `input` (the copy's bytes), failing as `inspect` would.
fn check_messages(location: &Location, mut input: Input) -> Result<()> {
    let hint = first_bytes_hint(&mut input);
    let mut index = 0;
    while input.position() < input.size() {
        let offset = input.position();
        let message = next_header(location, &mut input, index, hint)?;
        if let Some(tensor_ipc::Header::Tensor(header)) = message.as_ref().map(|m| &m.header) {
            let body_len = message.as_ref().map_or(0, |m| m.layout.body_len);
            header.checked_strides(body_len).map_err(|e| {
                Error::command(format!(
                    "{location}: message {index} at byte offset {offset}: {e}"
                ))
            })?;
        }
        index += 1;
    }
    Ok(())
}
