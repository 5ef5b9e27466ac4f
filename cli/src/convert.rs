//! `tensor-ipc convert IN OUT`: `.npy` to a tensor message (dense or sparse) and back; either
//! side may be a file, an object-store URL or (with `--socket`) a Plasma object.

use std::path::Path;

use tensor_ipc::{
    Header, SparseFormat, SparseTensor, Tensor, TensorData, TensorSink, layout,
    write_sparse_tensor, write_tensor,
};

use crate::error::{Error, Result, at, fail, io_cause};
use crate::input::Input;
use crate::location::Location;
use crate::message::{first_bytes_hint, list, next_header, next_message, tensor_of};
use crate::output::Output;
use crate::{note, npy};

/// Converts `input` into `output`, in the direction their names give.
pub(crate) fn convert(
    input: &Location,
    output: &Location,
    index: Option<usize>,
    to: Option<&str>,
    socket: Option<&Path>,
) -> Result<()> {
    match (input.is_npy(), output.is_npy()) {
        (true, false) => {
            if index.is_some() {
                return fail("--index applies to a tensor-file input, not a .npy input");
            }
            // `None` (dense) or a sparse format; clap has checked the name.
            let sparse = to.and_then(SparseFormat::from_name);
            npy_to_tensor(input, output, sparse, socket)
        }
        (false, true) => {
            if to.is_some() {
                return fail("--to applies to a .npy input, not to a tensor-file input");
            }
            tensor_to_npy(input, output, index, socket)
        }
        (true, true) => fail(format!(
            "both {input} and {output} end in .npy: exactly one side of a conversion must be a .npy file"
        )),
        (false, false) => fail(format!(
            "neither {input} nor {output} ends in .npy: exactly one side of a conversion must be a .npy file"
        )),
    }
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

fn npy_to_tensor(
    input: &Location,
    output: &Location,
    sparse: Option<SparseFormat>,
    socket: Option<&Path>,
) -> Result<()> {
    let mut source = Input::open(input, socket)?;
    let whole = source.rest(input)?;
    let bytes = whole.as_slice();
    let header = npy::parse_header(bytes).map_err(at(input))?;
    let available = bytes.len() - header.data_offset;
    if available < header.data_len {
        return fail(format!(
            "{input}: npy: truncated data: shape {} of {} needs {} bytes, the file has {available} after the header",
            list(&header.shape),
            header.dtype,
            header.data_len,
        ));
    }
    if available > header.data_len {
        return fail(format!(
            "{input}: npy: {} unexpected bytes after the {} bytes of array data",
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
    let mut sink = Output::create(output, socket)?.copying_from(&source);
    match sparse {
        None => write_tensor(&tensor, &mut sink).map_err(at(output))?,
        Some(format) => {
            let sparse = SparseTensor::from_dense(&tensor, format).map_err(at(input))?;
            write_sparse_tensor(&sparse, &mut sink).map_err(at(output))?
        }
    };
    sink.finish(output)
}

fn tensor_to_npy(
    input: &Location,
    output: &Location,
    index: Option<usize>,
    socket: Option<&Path>,
) -> Result<()> {
    let mut source = Input::open(input, socket)?;
    if source.size() == 0 {
        return fail(format!(
            "{input}: {} (no Arrow IPC message)",
            source.empty_name()
        ));
    }
    let hint = first_bytes_hint(&mut source);
    let wanted = index.unwrap_or(0);
    // The messages before the one wanted are skipped header by header (an object's bodies
    // are not fetched).
    for position in 0..wanted {
        if next_header(input, &mut source, position, hint)?.is_none() {
            return fail(format!(
                "{input}: no message {wanted}: the stream ends after {position} message(s)"
            ));
        }
    }
    let Some(message) = next_message(input, &mut source, wanted, hint)? else {
        return fail(if wanted == 0 {
            format!("{input}: no message before the end of stream")
        } else {
            format!("{input}: no message {wanted}: the stream ends after {wanted} message(s)")
        });
    };
    let kind = message.header.type_name();
    let in_message = |e| Error::command(format!("{input}: message {wanted}: {e}"));
    let tensor = match message.header {
        Header::Tensor(_) => tensor_of(&message).map_err(in_message)?,
        // A sparse tensor becomes its dense, row-major values.
        Header::SparseTensor(_) => message
            .into_sparse_tensor(&Default::default())
            .and_then(|sparse| sparse.to_dense())
            .map_err(in_message)?,
        _ => {
            return fail(format!(
                "{input}: message {wanted} is a {kind} message, not a tensor"
            ));
        }
    };
    if index.is_none() && matches!(next_header(input, &mut source, 1, None), Ok(Some(_))) {
        note(&format!(
            "{input} holds more than one message; converted message 0 (choose another with --index N)"
        ));
    }
    // NumPy's (and `np.save`'s) rule: Fortran order when F- but not C-contiguous.
    let fortran = numpy_contiguous(&tensor, true) && !numpy_contiguous(&tensor, false);
    let header = npy::format_header(tensor.dtype(), tensor.shape(), fortran).map_err(at(input))?;
    let mut sink = Output::create(output, socket)?.copying_from(&source);
    write_npy(&tensor, &header, &mut sink)
        .map_err(|e| Error::command(format!("cannot write {output}: {}", io_cause(e))))?;
    sink.finish(output)
}

/// Whether NumPy sees the tensor as contiguous in Fortran (`fortran`) or C order.
fn numpy_contiguous(tensor: &Tensor<'_>, fortran: bool) -> bool {
    let width = tensor.dtype().byte_width();
    layout::is_numpy_contiguous(tensor.shape(), tensor.strides(), width, fortran)
}

/// Writes the tensor as one `.npy` file: `header`, then the elements, as they lie for a C- or
/// F-contiguous tensor (copied from an input file by the kernel), else gathered into C order
/// (a file sink gathers a piece at a time through its small staging buffer).
fn write_npy(tensor: &Tensor<'_>, header: &[u8], sink: &mut Output) -> tensor_ipc::Result<()> {
    let len = tensor.dense_byte_len();
    let total = header.len() + len;
    if numpy_contiguous(tensor, false) || numpy_contiguous(tensor, true) {
        return sink.write_parts(total, &[header, &tensor.as_bytes()[..len]]);
    }
    sink.write_gather(total, header, &tensor.row_major_gather())
}
