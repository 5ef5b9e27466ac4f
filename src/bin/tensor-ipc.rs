//! `tensor-ipc`: inspect Arrow IPC tensor files and convert between them and NumPy `.npy`.
//!
//! ```text
//! tensor-ipc inspect FILE
//! tensor-ipc convert IN.npy OUT.arrow_tensor [--to dense|coo|csr|csc|csf]
//! tensor-ipc convert IN.arrow_tensor OUT.npy [--index N]   (dense or sparse tensor message)
//! ```
//!
//! Inputs are memory-mapped, so `inspect` never reads a tensor body and `convert` copies each
//! data byte once, from the mapped input straight into the output. Every failure is one line
//! on stderr, `tensor-ipc: error: ...`, and a non-zero exit status.
//!
//! The binary maps files with memmap2 itself rather than using the `tensor-ipc-file` backend:
//! that crate depends on this package's library, and Cargo does not allow a package to depend
//! (outside dev-dependencies) on a crate that depends on it.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use memmap2::{Mmap, MmapMut};
use tensor_ipc::layout::{self, gather_row_major};
use tensor_ipc::{
    Error, Framing, Header, Message, ReadOptions, SparseFormat, SparseTensor, Tensor, TensorData,
    TensorSink, npy, read_message, write_sparse_tensor, write_tensor,
};

/// Inspect Arrow IPC tensor files and convert them to and from NumPy .npy files.
#[derive(Parser, Debug)]
#[command(name = "tensor-ipc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print one line per message of an Arrow IPC file, without reading tensor bodies.
    ///
    /// Each line gives the message index, its byte offset, its kind (tensor, sparse-tensor,
    /// other:<header type>, end-of-stream), and for a dense tensor its dtype, shape, byte
    /// strides, dimension names and layout (row-major, column-major or strided); then the
    /// body's offset in the file, its length, whether it is 64-byte aligned in the file, the
    /// framing (continuation, or legacy pre-0.15) and the metadata version. A tensor header is
    /// validated against its body length as a reader would validate it; the first invalid
    /// message ends the listing with an error.
    Inspect {
        /// The Arrow IPC tensor file (one or more messages back to back).
        file: PathBuf,
    },
    /// Convert between a NumPy .npy file and an Arrow IPC tensor file.
    ///
    /// The direction follows the file names: exactly one of IN and OUT must end in `.npy`.
    /// A .npy input becomes the bytes `pa.ipc.write_tensor(pa.Tensor.from_numpy(np.load(IN)))`
    /// writes: Fortran order becomes a column-major tensor, bool becomes uint8. Big-endian
    /// .npy files are refused (pyarrow would write their bytes unswapped). A tensor input
    /// becomes a .npy with the same dtype, shape and values, in Fortran order when the tensor
    /// is column-major and not also row-major (as NumPy judges it, ignoring the strides of
    /// size-1 axes), else in C order (strided tensors are gathered); for a tensor that came from
    /// a .npy file, the bytes are those `np.save` writes for the loaded array.
    /// The output is written to a temporary file beside OUT and renamed into place.
    Convert {
        /// The input file: a .npy file, or an Arrow IPC tensor file.
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// The output file: an Arrow IPC tensor file, or a .npy file.
        #[arg(value_name = "OUT")]
        output: PathBuf,
        /// Which message of a tensor file to convert, counting from 0. Without it the first
        /// message is converted, with a note on stderr when more follow.
        #[arg(long, value_name = "N")]
        index: Option<usize>,
        /// With a .npy input, the message to write: `dense` (the default) or a sparse tensor,
        /// `coo`, `csr`, `csc` (matrices) or `csf`, with int64 indices: the bytes Arrow C++
        /// `WriteSparseTensor` writes for `SparseCOOTensor::Make(tensor)` and its CSR, CSC and
        /// CSF equivalents. A sparse tensor input is always converted to its dense values.
        #[arg(long, value_name = "FORMAT", value_parser = ["dense", "coo", "csr", "csc", "csf"])]
        to: Option<String>,
    },
}

/// A failure, as the one line printed after `tensor-ipc: error: `.
#[derive(Debug)]
struct CliError(String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message holds.
        let line: String = self
            .0
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        f.write_str(&line)
    }
}

type CliResult<T> = Result<T, CliError>;

fn fail<T>(message: impl Into<String>) -> CliResult<T> {
    Err(CliError(message.into()))
}

/// Adds the path to an error.
fn at(path: &Path) -> impl Fn(Error) -> CliError + '_ {
    move |e| CliError(format!("{}: {e}", path.display()))
}

fn io_at<'p>(path: &'p Path, doing: &'p str) -> impl Fn(io::Error) -> CliError + 'p {
    move |e| CliError(format!("cannot {doing} {}: {e}", path.display()))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // Help and version go to stdout with status 0.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's message without its usage block, on one line.
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            let first = if message.is_empty() || !rendered.starts_with("error") {
                "missing subcommand: inspect or convert"
            } else {
                message
            };
            report(&format!("{first} (see tensor-ipc --help)"));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Inspect { file } => inspect(&file),
        Command::Convert {
            input,
            output,
            index,
            to,
        } => convert(&input, &output, index, to.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

/// Prints one error line; a closed stderr is ignored rather than a panic.
fn report(message: &str) {
    let _ = writeln!(io::stderr().lock(), "tensor-ipc: error: {message}");
}

fn note(message: &str) {
    let _ = writeln!(io::stderr().lock(), "tensor-ipc: note: {message}");
}

// ---------------------------------------------------------------------------------------
// Files

/// A read-only memory map of a whole file (or nothing, for an empty file, which cannot be
/// mapped).
struct Mapped {
    map: Option<Mmap>,
}

impl Mapped {
    fn open(path: &Path) -> CliResult<Mapped> {
        let file = File::open(path).map_err(io_at(path, "open"))?;
        let meta = file.metadata().map_err(io_at(path, "read"))?;
        if !meta.is_file() {
            return fail(format!("{}: not a regular file", path.display()));
        }
        if meta.len() == 0 {
            return Ok(Mapped { map: None });
        }
        // SAFETY: the map is only ever read through `&[u8]`. Like every reader of a mapped
        // file (Arrow C++'s MemoryMappedFile included), this relies on no other process
        // truncating or rewriting the file while the command runs; the CLI maps files only
        // for the duration of one command.
        let map = unsafe { Mmap::map(&file) }.map_err(io_at(path, "map"))?;
        Ok(Mapped { map: Some(map) })
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// An output written to a temporary file beside its destination and renamed over it on
/// [`commit`](AtomicOutput::commit); dropped uncommitted, the temporary file is removed.
struct AtomicOutput {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicOutput {
    fn create(dest: &Path) -> CliResult<AtomicOutput> {
        let name = dest
            .file_name()
            .ok_or_else(|| CliError(format!("{}: not a file name", dest.display())))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tensor-ipc-{}.tmp", std::process::id()));
        let temp = dir.join(temp_name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| CliError(format!("cannot create {}: {e}", dest.display())))?;
        Ok(AtomicOutput {
            file,
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// Renames the finished file into place. Not fsynced (like `cp` or `np.save`): the rename
    /// makes the output appear whole to other processes, not durable across a crash.
    fn commit(mut self) -> CliResult<()> {
        fs::rename(&self.temp, &self.dest).map_err(io_at(&self.dest, "write"))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A [`TensorSink`] for one message: the file is sized to the message and mapped, and the
/// writer fills the mapping (the one copy of the body).
struct MappedFileSink<'f> {
    file: &'f File,
    map: Option<MmapMut>,
}

impl TensorSink for MappedFileSink<'_> {
    fn reserve(&mut self, len: usize) -> tensor_ipc::Result<&mut [u8]> {
        if self.map.is_some() {
            return Err(Error::SinkState("this sink holds one message"));
        }
        if len == 0 {
            return Err(Error::SinkState("empty message"));
        }
        self.file.set_len(len as u64)?;
        // SAFETY: the file is the temporary file this process just created with
        // `create_new` and sized to `len`; nothing else knows its name or resizes it while
        // it is mapped.
        let map = unsafe { MmapMut::map_mut(self.file) }?;
        Ok(&mut self.map.insert(map)[..])
    }

    fn commit(&mut self) -> tensor_ipc::Result<()> {
        // The mapping shares the file's page cache: once written, the bytes are the file's.
        self.map
            .as_ref()
            .map(|_| ())
            .ok_or(Error::SinkState("commit without reserve"))
    }
}

// ---------------------------------------------------------------------------------------
// Messages

fn strict() -> ReadOptions {
    ReadOptions::default().with_require_alignment(true)
}

/// The tensor of a dense tensor message, validated as `read_tensor` validates it but never
/// copied: data that is misaligned for its element type is used where it lies (the CLI only
/// copies bytes).
fn tensor_of<'a>(message: &Message<'a>) -> tensor_ipc::Result<Tensor<'a>> {
    match message.clone().into_tensor(&strict()) {
        Ok(tensor) => Ok(tensor),
        Err(Error::Misaligned { .. }) => {
            // Every other check passed (alignment is checked last), so the strides are the
            // ones the reader accepts: negative strides only where they address nothing.
            let Header::Tensor(header) = &message.header else {
                return Err(Error::UnexpectedHeader {
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

fn framing_name(framing: Framing) -> &'static str {
    match framing {
        Framing::Continuation => "continuation",
        Framing::Legacy => "legacy",
    }
}

fn version_name(code: i16) -> String {
    format!("V{}", i32::from(code) + 1)
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// Dimension names, quoted and escaped so the line stays one line; `-` for none.
fn names(names: &[String]) -> String {
    if names.is_empty() {
        return "-".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("[{}]", quoted.join(","))
}

fn layout_name(tensor: &Tensor<'_>) -> &'static str {
    if tensor.is_row_major() {
        "row-major"
    } else if tensor.is_column_major() {
        "column-major"
    } else {
        "strided"
    }
}

/// Hints for inputs that are plainly something else.
fn not_a_tensor_file_hint(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(npy::MAGIC) {
        Some("this is a NumPy .npy file, not an Arrow IPC tensor file")
    } else if bytes.starts_with(b"ARROW1") {
        Some("this is an Arrow IPC file-format (Feather v2) file, not a tensor stream")
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// inspect

fn inspect(path: &Path) -> CliResult<()> {
    let mapped = Mapped::open(path)?;
    let bytes = mapped.bytes();
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

fn inspect_messages(path: &Path, bytes: &[u8], out: &mut impl Write) -> CliResult<()> {
    let options = ReadOptions::default();
    let mut source: &[u8] = bytes;
    let mut index = 0usize;
    while !source.is_empty() {
        let offset = bytes.len() - source.len();
        let before = source.len();
        let message = read_message(&mut source, &options).map_err(|e| {
            let hint = match (index, not_a_tensor_file_hint(bytes)) {
                (0, Some(hint)) => format!(" ({hint})"),
                _ => String::new(),
            };
            CliError(format!(
                "{}: message {index} at byte offset {offset}: {e}{hint}",
                path.display()
            ))
        })?;
        let line = match message {
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
                    CliError(format!(
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

// ---------------------------------------------------------------------------------------
// convert

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

fn convert(input: &Path, output: &Path, index: Option<usize>, to: Option<&str>) -> CliResult<()> {
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

fn npy_to_tensor(input: &Path, output: &Path, sparse: Option<SparseFormat>) -> CliResult<()> {
    let mapped = Mapped::open(input)?;
    let bytes = mapped.bytes();
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
    let out = AtomicOutput::create(output)?;
    let mut sink = MappedFileSink {
        file: &out.file,
        map: None,
    };
    match sparse {
        None => write_tensor(&tensor, &mut sink).map_err(at(output))?,
        Some(format) => {
            let sparse = SparseTensor::from_dense(&tensor, format).map_err(at(input))?;
            write_sparse_tensor(&sparse, &mut sink).map_err(at(output))?
        }
    };
    drop(sink);
    out.commit()
}

fn tensor_to_npy(input: &Path, output: &Path, index: Option<usize>) -> CliResult<()> {
    let mapped = Mapped::open(input)?;
    let bytes = mapped.bytes();
    if bytes.is_empty() {
        return fail(format!(
            "{}: empty file (no Arrow IPC message)",
            input.display()
        ));
    }
    let options = ReadOptions::default();
    let wanted = index.unwrap_or(0);
    let mut source: &[u8] = bytes;
    let mut position = 0usize;
    let message = loop {
        let offset = bytes.len() - source.len();
        let message = read_message(&mut source, &options).map_err(|e| {
            let hint = match (position, not_a_tensor_file_hint(bytes)) {
                (0, Some(hint)) => format!(" ({hint})"),
                _ => String::new(),
            };
            CliError(format!(
                "{}: message {position} at byte offset {offset}: {e}{hint}",
                input.display()
            ))
        })?;
        let Some(message) = message else {
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
    let in_message = |e| CliError(format!("{}: message {wanted}: {e}", input.display()));
    let tensor = match message.header {
        Header::Tensor(_) => tensor_of(&message).map_err(in_message)?,
        // A sparse tensor becomes its dense, row-major values.
        Header::SparseTensor(_) => message
            .into_sparse_tensor(&options)
            .and_then(|sparse| sparse.to_dense())
            .map_err(in_message)?,
        _ => {
            return fail(format!(
                "{}: message {wanted} is a {kind} message, not a tensor",
                input.display()
            ));
        }
    };
    if index.is_none() && matches!(read_message(&mut source, &options), Ok(Some(_))) {
        note(&format!(
            "{} holds more than one message; converted message 0 (choose another with --index N)",
            input.display()
        ));
    }

    // NumPy's (and `np.save`'s) rule: Fortran order when F- but not C-contiguous.
    let fortran = numpy_contiguous(&tensor, true) && !numpy_contiguous(&tensor, false);
    let header = npy::format_header(tensor.dtype(), tensor.shape(), fortran);
    let out = AtomicOutput::create(output)?;
    let mut writer = BufWriter::with_capacity(1 << 20, &out.file);
    let written = writer
        .write_all(&header)
        .and_then(|()| write_npy_data(&tensor, &mut writer))
        .and_then(|()| writer.flush());
    written.map_err(io_at(output, "write"))?;
    drop(writer);
    out.commit()
}

/// Whether the tensor is C- (or, with `fortran`, F-) contiguous as NumPy defines it: Arrow's
/// row- (column-) major strides, except that the strides of size-1 axes do not matter and an
/// empty tensor is both. Such a tensor's first `dense_byte_len()` bytes are its elements in
/// that order.
fn numpy_contiguous(tensor: &Tensor<'_>, fortran: bool) -> bool {
    let (shape, strides) = (tensor.shape(), tensor.strides());
    if shape.contains(&0) {
        return true;
    }
    let mut expected = tensor.dtype().byte_width();
    let mut axes: Box<dyn Iterator<Item = usize>> = if fortran {
        Box::new(0..shape.len())
    } else {
        Box::new((0..shape.len()).rev())
    };
    axes.all(|axis| {
        if shape[axis] == 1 {
            return true;
        }
        let ok = strides[axis] == expected;
        expected = expected.saturating_mul(shape[axis]);
        ok
    })
}

/// The most bytes gathered at once for a strided tensor.
const GATHER_CHUNK: usize = 4 << 20;

/// Writes the tensor's elements: as they lie for a C- or F-contiguous tensor, else gathered
/// into row-major order through a buffer of at most [`GATHER_CHUNK`] bytes (or one element).
fn write_npy_data(tensor: &Tensor<'_>, out: &mut impl Write) -> io::Result<()> {
    let len = tensor.dense_byte_len();
    if len == 0 {
        return Ok(());
    }
    if numpy_contiguous(tensor, false) || numpy_contiguous(tensor, true) {
        return out.write_all(&tensor.as_bytes()[..len]);
    }
    let (shape, strides) = (tensor.shape(), tensor.strides());
    let width = tensor.dtype().byte_width();
    let src = tensor.as_bytes();
    // Split at axis `split`: each chunk is a run of `split`'s indices times the row-major
    // block of the axes after it (`inner` bytes), for one index of the axes before it.
    let mut split = shape.len() - 1;
    let mut inner = width;
    while split > 0 && inner * shape[split] <= GATHER_CHUNK {
        inner *= shape[split];
        split -= 1;
    }
    let per_chunk = (GATHER_CHUNK / inner).clamp(1, shape[split]);
    let mut buffer = vec![0u8; per_chunk * inner];
    let mut sub_shape = shape[split..].to_vec();
    let sub_strides = &strides[split..];
    let mut outer = vec![0usize; split];
    loop {
        let base: usize = outer.iter().zip(strides).map(|(i, s)| i * s).sum();
        let mut k = 0;
        while k < shape[split] {
            let count = per_chunk.min(shape[split] - k);
            sub_shape[0] = count;
            let chunk = &mut buffer[..count * inner];
            gather_row_major(
                &src[base + k * strides[split]..],
                &sub_shape,
                sub_strides,
                width,
                chunk,
            );
            out.write_all(chunk)?;
            k += count;
        }
        // Advance the odometer over the axes before `split`.
        let mut axis = split;
        loop {
            if axis == 0 {
                return Ok(());
            }
            axis -= 1;
            outer[axis] += 1;
            if outer[axis] < shape[axis] {
                break;
            }
            outer[axis] = 0;
        }
    }
}
