//! `tensor-ipc`: inspect Arrow IPC tensor files and convert between them and NumPy `.npy`.
//!
//! ```text
//! tensor-ipc inspect FILE
//! tensor-ipc convert IN.npy OUT.arrow_tensor [--to dense|coo|csr|csc|csf]
//! tensor-ipc convert IN.arrow_tensor OUT.npy [--index N]   (dense or sparse tensor message)
//! ```
//!
//! Inputs are memory-mapped through the file backend ([`tensor_ipc_file::FileSource`]), so
//! `inspect` never reads a tensor body and `convert` copies each data byte once, from the
//! mapped input into the output, which [`tensor_ipc_file::FileSink::create_atomic`] writes
//! beside its destination and renames into place. Every failure is one line on stderr,
//! `tensor-ipc: error: ...`, and a non-zero exit status.
//!
//! The command is this library's [`run`], so other programs (the Python package's
//! `tensor-ipc` script) run it in-process.

mod convert;
mod error;
mod inspect;
mod message;
pub mod npy;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{Error, Result};

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

/// Runs the `tensor-ipc` command with `args` (the first is the program name, as in
/// `std::env::args_os`), printing to stdout and stderr. Returns the exit status: 0 on
/// success, 1 when the command failed, 2 for a usage error.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Command::Inspect { file } => inspect::inspect(&file),
        Command::Convert {
            input,
            output,
            index,
            to,
        } => convert::convert(&input, &output, index, to.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e.one_line());
            ExitCode::FAILURE
        }
    }
}

/// Prints help or version (status 0), or clap's message on one line (status 2).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
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
    ExitCode::from(2)
}

/// Prints one error line; a closed stderr is ignored rather than a panic.
fn report(message: &str) {
    let _ = writeln!(io::stderr().lock(), "tensor-ipc: error: {message}");
}

/// Prints one note line on stderr.
fn note(message: &str) {
    let _ = writeln!(io::stderr().lock(), "tensor-ipc: note: {message}");
}
