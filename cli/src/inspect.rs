//! `tensor-ipc inspect FILE`: one line per message, without reading tensor bodies.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use tensor_ipc::{Framing, Header, Message};

use crate::error::{Error, Result, fail};
use crate::message::{
    framing_name, layout_name, list, names, next_message, open_input, tensor_of, version_name,
};

/// Prints the inspect lines of the file at `path` on stdout.
pub(crate) fn inspect(path: &Path) -> Result<()> {
    let input = open_input(path)?;
    let bytes = input.buffer().as_slice();
    if bytes.is_empty() {
        return fail(format!(
            "{}: empty file (no Arrow IPC message)",
            path.display()
        ));
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = inspect_messages(path, bytes, &mut out);
    let flushed = out.flush();
    match (result, flushed) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
            fail(format!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

fn inspect_messages(path: &Path, bytes: &[u8], out: &mut impl Write) -> Result<()> {
    let mut source: &[u8] = bytes;
    let mut index = 0usize;
    while !source.is_empty() {
        let offset = bytes.len() - source.len();
        let before = source.len();
        let line = match next_message(path, bytes, &mut source, index)? {
            None => {
                let framing = if before - source.len() == 8 {
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
                        "{}: message {index} at byte offset {offset}: {e}",
                        path.display()
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
fn describe(message: &Message<'_>, offset: usize) -> tensor_ipc::Result<String> {
    let layout = &message.layout;
    let body_offset = offset + layout.body_offset();
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
            let tensor = tensor_of(message)?;
            let strides = match &header.strides {
                Some(_) => list(tensor.strides()),
                None => format!("absent:{}", list(tensor.strides())),
            };
            format!(
                "kind=tensor dtype={} shape={} strides={strides} dim_names={} layout={}",
                tensor.dtype(),
                list(tensor.shape()),
                names(tensor.dim_names()),
                layout_name(&tensor),
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
