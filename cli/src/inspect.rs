//! `tensor-ipc inspect FILE|URL`: one line per message, without reading tensor bodies.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use tensor_ipc::{Framing, Header, MessageHeader};

use crate::error::{Error, Result, fail};
use crate::input::Input;
use crate::location::Location;
use crate::message::{
    first_bytes_hint, framing_name, layout_name, list, names, next_header, version_name,
};

/// Prints the inspect lines of `location` on stdout. Only headers are read: an object's
/// bodies are never fetched, a file's never touched.
pub(crate) fn inspect(location: &Location, socket: Option<&Path>) -> Result<()> {
    let mut input = Input::open_for_headers(location, socket)?;
    if input.size() == 0 {
        return fail(format!(
            "{location}: {} (no Arrow IPC message)",
            input.empty_name()
        ));
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = inspect_messages(location, &mut input, &mut out);
    let flushed = out.flush();
    match (result, flushed) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
            fail(format!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

fn inspect_messages(location: &Location, input: &mut Input, out: &mut impl Write) -> Result<()> {
    let hint = first_bytes_hint(input);
    let mut index = 0usize;
    while input.position() < input.size() {
        let offset = input.position();
        let line = match next_header(location, input, index, hint)? {
            None => {
                let framing = if input.position() - offset == 8 {
                    Framing::Continuation
                } else {
                    Framing::Legacy
                };
                format!(
                    "{index}: offset={offset} kind=end-of-stream framing={}",
                    framing_name(framing)
                )
            }
            Some(message) => {
                let line = describe(&message, offset).map_err(|e| {
                    Error::command(format!(
                        "{location}: message {index} at byte offset {offset}: {e}"
                    ))
                })?;
                format!("{index}: {line}")
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return fail(format!("cannot write to stdout: {e}"));
        }
        index += 1;
    }
    Ok(())
}

/// The inspect line of a message at byte `offset`, without its index.
fn describe(message: &MessageHeader, offset: u64) -> tensor_ipc::Result<String> {
    let layout = &message.layout;
    let body_offset = offset + layout.body_offset() as u64;
    let tail = format!(
        "body_offset={body_offset} body_len={} body_aligned64={} framing={} version={}",
        layout.body_len,
        if body_offset.is_multiple_of(64) {
            "yes"
        } else {
            "no"
        },
        framing_name(layout.framing),
        version_name(layout.version),
    );
    let head = match &message.header {
        Header::Tensor(header) => {
            // Validated against the body's length as a reader would, without the body.
            let strides = header.checked_strides(layout.body_len)?;
            let shown = match &header.strides {
                Some(_) => list(&strides),
                None => format!("absent:{}", list(&strides)),
            };
            format!(
                "kind=tensor dtype={} shape={} strides={shown} dim_names={} layout={}",
                header.dtype,
                list(&header.shape),
                names(&header.dim_names),
                layout_name(header.dtype, &header.shape, &strides),
            )
        }
        Header::SparseTensor(sparse) => format!(
            "kind=sparse-tensor format={} dtype={} shape={} dim_names={} nnz={} index_type={}",
            sparse.format().name(),
            sparse.dtype,
            list(&sparse.shape),
            names(&sparse.dim_names),
            sparse.non_zero_length,
            sparse.index_type(),
        ),
        other => format!("kind=other:{}", other.type_name()),
    };
    Ok(format!("offset={offset} {head} {tail}"))
}
