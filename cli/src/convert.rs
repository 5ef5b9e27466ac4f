//! `tensor-ipc convert IN OUT`: `.npy` to a tensor message (dense or sparse) and back; either
//! side may be a file, an object-store URL or (with `--socket`) a Plasma object.

use std::path::Path;

use tensor_ipc::sparse::FromDenseOptions;
use tensor_ipc::{
    Header, SparseFormat, SparseTensor, Tensor, TensorData, TensorSink, layout, tensor_size,
    write_sparse_tensor, write_tensor,
};

use crate::error::{Error, Result, at, fail, io_cause};
use crate::input::Input;
use crate::location::Location;
use crate::message::{first_bytes_hint, list, next_header, next_message, tensor_of};
use crate::output::Output;
use crate::{note, npy};

/// The options of one conversion.
pub(crate) struct Request<'a> {
    /// `--index`: the message of a tensor file to convert.
    pub(crate) index: Option<usize>,
    /// `--to`: the message a `.npy` becomes.
    pub(crate) to: Option<&'a str>,
    /// `--socket`: the Plasma store of a `plasma:ID` side.
    pub(crate) socket: Option<&'a Path>,
    /// `--max-output-bytes`: the largest output to make.
    pub(crate) max_output_bytes: u64,
}

/// Converts `input` into `output`, in the direction their names give.
pub(crate) fn convert(input: &Location, output: &Location, request: &Request<'_>) -> Result<()> {
    match (input.is_npy(), output.is_npy()) {
        (true, false) => {
            if request.index.is_some() {
                return fail("--index applies to a tensor-file input, not a .npy input");
            }
            // `None` (dense) or a sparse format; clap has checked the name.
            let sparse = request.to.and_then(SparseFormat::from_name);
            npy_to_tensor(input, output, sparse, request)
        }
        (false, true) => {
            if request.to.is_some() {
                return fail("--to applies to a .npy input, not to a tensor-file input");
            }
            tensor_to_npy(input, output, request)
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

/// Refuses an output of `bytes` (`None`: more than 64 bits can count) larger than the
/// `--max-output-bytes` limit, before it is made.
fn check_output_len(output: &Location, bytes: Option<u64>, limit: u64) -> Result<()> {
    match bytes {
        Some(bytes) if bytes <= limit => Ok(()),
        _ => fail(format!(
            "{output}: the output would take {}, more than the limit of {limit} bytes (--max-output-bytes)",
            bytes.map_or("more than 2^64 bytes".to_owned(), |b| format!("{b} bytes")),
        )),
    }
}

/// A codec error of a conversion from `input`, naming the flag when it is the output bound.
fn conversion_error(input: &Location) -> impl Fn(tensor_ipc::Error) -> Error + '_ {
    move |e| match e {
        tensor_ipc::Error::OutputTooLarge { .. } => {
            Error::command(format!("{input}: {e} (--max-output-bytes)"))
        }
        other => at(input)(other),
    }
}

fn npy_to_tensor(
    input: &Location,
    output: &Location,
    sparse: Option<SparseFormat>,
    request: &Request<'_>,
) -> Result<()> {
    let limit = request.max_output_bytes;
    let mut source = Input::open(input, request.socket)?;
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
    let sparse = match sparse {
        None => {
            let size = tensor_size(&tensor).map_err(at(input))?;
            check_output_len(output, Some(size as u64), limit)?;
            None
        }
        Some(format) => {
            let options = FromDenseOptions::default().with_max_output_bytes(limit);
            let sparse = SparseTensor::from_dense_with(&tensor, format, &options)
                .map_err(conversion_error(input))?;
            Some(sparse)
        }
    };
    let mut sink = Output::create(output, request.socket)?.copying_from(&source);
    match &sparse {
        None => write_tensor(&tensor, &mut sink).map_err(at(output))?,
        Some(sparse) => write_sparse_tensor(sparse, &mut sink).map_err(at(output))?,
    };
    sink.finish(output)
}

fn tensor_to_npy(input: &Location, output: &Location, request: &Request<'_>) -> Result<()> {
    let index = request.index;
    let mut source = Input::open(input, request.socket)?;
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
        Header::SparseTensor(_) => {
            let sparse = message
                .into_sparse_tensor(&Default::default())
                .map_err(in_message)?;
            let dense_len = layout::dense_byte_len(sparse.shape(), sparse.dtype().byte_width())
                .ok()
                .map(|len| len as u64);
            check_output_len(output, dense_len, request.max_output_bytes)?;
            sparse.to_dense().map_err(in_message)?
        }
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
    let npy_len = (header.len() as u64).checked_add(tensor.dense_byte_len() as u64);
    check_output_len(output, npy_len, request.max_output_bytes)?;
    let mut sink = Output::create(output, request.socket)?.copying_from(&source);
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
