//! `tensor-ipc convert IN OUT`: `.npy` to a tensor message (dense or sparse) and back.

use std::path::Path;

use tensor_ipc::{
    Header, SparseFormat, SparseTensor, Tensor, TensorData, TensorSink, layout, read_message,
    write_sparse_tensor, write_tensor,
};
use tensor_ipc_file::FileSink;

use crate::error::{Error, Result, at, fail, io_at, io_cause};
use crate::message::{list, next_message, open_input, tensor_of};
use crate::{note, npy};

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Converts `input` into `output`, in the direction their names give.
pub(crate) fn convert(
    input: &Path,
    output: &Path,
    index: Option<usize>,
    to: Option<&str>,
) -> Result<()> {
    match (is_npy(input), is_npy(output)) {
        (true, false) => {
            if index.is_some() {
                return fail("--index applies to a tensor-file input, not a .npy input");
            }
            // `None` (dense) or a sparse format; clap has checked the name.
            let sparse = to.and_then(SparseFormat::from_name);
            npy_to_tensor(input, output, sparse)
        }
        (false, true) => {
            if to.is_some() {
                return fail("--to applies to a .npy input, not to a tensor-file input");
            }
            tensor_to_npy(input, output, index)
        }
        (true, true) => fail(format!(
            "both {} and {} end in .npy: exactly one side of a conversion must be a .npy file",
            input.display(),
            output.display()
        )),
        (false, false) => fail(format!(
            "neither {} nor {} ends in .npy: exactly one side of a conversion must be a .npy file",
            input.display(),
            output.display()
        )),
    }
}

/// The output file: written beside `output` and renamed into place by `finish`, not synced
/// to disk (like `cp` or `np.save`); dropped unfinished, it leaves nothing behind.
fn create_output(output: &Path) -> Result<FileSink> {
    FileSink::create_atomic(output)
        .map(|sink| sink.sync_on_finish(false))
        .map_err(|e| io_at(output, "create")(io_cause(e)))
}

fn finish_output(sink: FileSink, output: &Path) -> Result<()> {
    sink.finish()
        .map_err(|e| io_at(output, "write")(io_cause(e)))
}

/// The byte strides NumPy gives an array loaded from a `.npy` file (what `pa.Tensor.from_numpy`
/// then sees). For a non-empty array these are Arrow's row- or column-major strides; an empty
/// array is written by Arrow with `[width; ndim]` whatever its NumPy strides, so that is used.
fn npy_strides(header: &npy::NpyHeader) -> tensor_ipc::Result<Vec<usize>> {
    let width = header.dtype.byte_width();
    if header.fortran_order {
        layout::column_major_strides(&header.shape, width)
    } else {
        layout::row_major_strides(&header.shape, width)
    }
}

fn npy_to_tensor(input: &Path, output: &Path, sparse: Option<SparseFormat>) -> Result<()> {
    let source = open_input(input)?;
    let bytes = source.buffer().as_slice();
    let header = npy::parse_header(bytes).map_err(at(input))?;
    let available = bytes.len() - header.data_offset;
    if available < header.data_len {
        return fail(format!(
            "{}: npy: truncated data: shape {} of {} needs {} bytes, the file has {available} after the header",
            input.display(),
            list(&header.shape),
            header.dtype,
            header.data_len,
        ));
    }
    if available > header.data_len {
        return fail(format!(
            "{}: npy: {} unexpected bytes after the {} bytes of array data",
            input.display(),
            available - header.data_len,
            header.data_len,
        ));
    }
    let data = &bytes[header.data_offset..];
    let strides = npy_strides(&header).map_err(at(input))?;
    let tensor = Tensor::with_layout(
        header.dtype,
        TensorData::Borrowed(data),
        header.shape.clone(),
        strides,
        Vec::new(),
    )
    .map_err(at(input))?;
    let mut sink = create_output(output)?;
    match sparse {
        None => write_tensor(&tensor, &mut sink).map_err(at(output))?,
        Some(format) => {
            let sparse = SparseTensor::from_dense(&tensor, format).map_err(at(input))?;
            write_sparse_tensor(&sparse, &mut sink).map_err(at(output))?
        }
    };
    finish_output(sink, output)
}

fn tensor_to_npy(input: &Path, output: &Path, index: Option<usize>) -> Result<()> {
    let source = open_input(input)?;
    let bytes = source.buffer().as_slice();
    if bytes.is_empty() {
        return fail(format!(
            "{}: empty file (no Arrow IPC message)",
            input.display()
        ));
    }
    let wanted = index.unwrap_or(0);
    let mut rest: &[u8] = bytes;
    let mut position = 0usize;
    let message = loop {
        let Some(message) = next_message(input, bytes, &mut rest, position)? else {
            return fail(if position == 0 {
                format!("{}: no message before the end of stream", input.display())
            } else {
                format!(
                    "{}: no message {wanted}: the stream ends after {position} message(s)",
                    input.display()
                )
            });
        };
        if position == wanted {
            break message;
        }
        position += 1;
    };
    let kind = message.header.type_name();
    let in_message = |e| Error::command(format!("{}: message {wanted}: {e}", input.display()));
    let tensor = match message.header {
        Header::Tensor(_) => tensor_of(&message).map_err(in_message)?,
        // A sparse tensor becomes its dense, row-major values.
        Header::SparseTensor(_) => message
            .into_sparse_tensor(&Default::default())
            .and_then(|sparse| sparse.to_dense())
            .map_err(in_message)?,
        _ => {
            return fail(format!(
                "{}: message {wanted} is a {kind} message, not a tensor",
                input.display()
            ));
        }
    };
    if index.is_none() && matches!(read_message(&mut rest, &Default::default()), Ok(Some(_))) {
        note(&format!(
            "{} holds more than one message; converted message 0 (choose another with --index N)",
            input.display()
        ));
    }
    // NumPy's (and `np.save`'s) rule: Fortran order when F- but not C-contiguous.
    let fortran = numpy_contiguous(&tensor, true) && !numpy_contiguous(&tensor, false);
    let header = npy::format_header(tensor.dtype(), tensor.shape(), fortran).map_err(at(input))?;
    let mut sink = create_output(output)?;
    write_npy(&tensor, &header, &mut sink).map_err(|e| io_at(output, "write")(io_cause(e)))?;
    finish_output(sink, output)
}

/// Whether NumPy sees the tensor as contiguous in Fortran (`fortran`) or C order.
fn numpy_contiguous(tensor: &Tensor<'_>, fortran: bool) -> bool {
    let width = tensor.dtype().byte_width();
    layout::is_numpy_contiguous(tensor.shape(), tensor.strides(), width, fortran)
}

/// Writes the tensor as one `.npy` file: `header`, then the elements, as they lie for a C- or
/// F-contiguous tensor, else gathered into C order straight into the sink's region.
fn write_npy(tensor: &Tensor<'_>, header: &[u8], sink: &mut FileSink) -> tensor_ipc::Result<()> {
    let len = tensor.dense_byte_len();
    let total = header.len() + len;
    if numpy_contiguous(tensor, false) || numpy_contiguous(tensor, true) {
        return sink.write_parts(total, &[header, &tensor.as_bytes()[..len]]);
    }
    let region = sink.reserve(total)?;
    let (head, body) = region.split_at_mut(header.len());
    head.copy_from_slice(header);
    let width = tensor.dtype().byte_width();
    layout::gather_row_major(
        tensor.as_bytes(),
        tensor.shape(),
        tensor.strides(),
        width,
        body,
    );
    sink.commit()
}
