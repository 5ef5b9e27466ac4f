//! `tensor-ipc`: inspect Arrow IPC tensor files and objects, convert between them and NumPy
//! `.npy`, and copy them between files, object stores and Plasma stores.
//!
//! ```text
//! tensor-ipc inspect FILE|URL
//! tensor-ipc convert IN.npy OUT.arrow_tensor [--to dense|coo|csr|csc|csf]
//! tensor-ipc convert IN.arrow_tensor OUT.npy [--index N]   (dense or sparse tensor message)
//! tensor-ipc cp SRC DST [--socket PLASMA_SOCKET]
//! ```
//!
//! Every IN, OUT, SRC and DST is a file path, an object-store URL (`s3://bucket/key`,
//! `gs://`, `az://`, `http(s)://`, `file://`, `memory://`; configured from the environment
//! as `object_store` does: `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...), or `plasma:` and a
//! 40-hex-digit object id of the Plasma store at `--socket`.
//!
//! Files are memory-mapped through the file backend ([`tensor_ipc_file::FileSource`]) and
//! objects read with ranged GETs ([`tensor_ipc_object_store::ObjectStoreSource`]), so
//! `inspect` never reads a tensor body, and `convert` copies each data byte once, from the
//! input into the output; between two files, a body that goes out unchanged is copied file to
//! file by the kernel ([`tensor_ipc_file::FileSink::copying_from`]: `copy_file_range` where the
//! offsets agree within a page, else `pwrite` from the input mapping 2 MiB at a time, each
//! window's pages mapped in by one `madvise` and unmapped after), so the input mapping is never
//! faulted in page by page and a conversion's peak memory stays a few MiB whatever the file
//! size. Outputs appear whole or not
//! at all: a file is written as a temporary file in its destination's directory and put into
//! place ([`tensor_ipc_file::FileSink::create_atomic`]; the temporary file has no name where
//! the file system allows, so a failed, interrupted or killed command leaves nothing behind),
//! an object is visible once its upload completes. Every failure is one line on stderr,
//! `tensor-ipc: error: ...`, and a non-zero exit status.
//!
//! The command is this library's [`run`], so other programs (the Python package's
//! `tensor-ipc` script) run it in-process.

mod convert;
mod cp;
mod error;
mod input;
mod inspect;
mod location;
mod message;
pub mod npy;
mod output;
mod plasma;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use location::Location;
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
        /// The Arrow IPC tensor file or object (one or more messages back to back): a path,
        /// a URL (only the headers are fetched), or plasma:ID with --socket.
        #[arg(value_name = "FILE|URL")]
        file: OsString,
        /// The Plasma store's socket, for a plasma:ID input.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Convert between a NumPy .npy file and an Arrow IPC tensor file.
    ///
    /// The direction follows the file names: exactly one of IN and OUT must end in `.npy`.
    /// A .npy input becomes the bytes `pa.ipc.write_tensor(pa.Tensor.from_numpy(np.load(IN)))`
    /// writes: Fortran order becomes a column-major tensor, bool becomes uint8. Big-endian
    /// .npy files are refused (pyarrow would write their bytes unswapped), and so are
    /// structured dtypes. The dtype must be spelled as np.save writes it: a byte order (<, >,
    /// | or =) then the kind and size (<f8, |u1, |b1, <i4...); other numpy spellings ('d',
    /// 'float64', '?'...) are refused with the form to write instead. A tensor input
    /// becomes a .npy with the same dtype, shape and values, in Fortran order when the tensor
    /// is column-major and not also row-major (as NumPy judges it, ignoring the strides of
    /// size-1 axes), else in C order (strided tensors are gathered); for a tensor that came from
    /// a .npy file, the bytes are those `np.save` writes for the loaded array.
    /// The output is written to a temporary file in OUT's directory and put into place when
    /// complete; a failed or interrupted conversion leaves nothing behind.
    Convert {
        /// The input: a .npy file, or an Arrow IPC tensor file (a path, a URL, or plasma:ID).
        #[arg(value_name = "IN")]
        input: OsString,
        /// The output: an Arrow IPC tensor file, or a .npy file (a path, a URL, or plasma:ID).
        #[arg(value_name = "OUT")]
        output: OsString,
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
        /// The Plasma store's socket, for a plasma:ID input or output.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// The largest output to make, in bytes (a `K`, `M`, `G` or `T` suffix for powers of
        /// 1024). A tiny input can ask for a huge output (a zero axis beside a huge one
        /// still has a huge CSR or CSC indptr; a sparse tensor of a huge shape densifies to
        /// a huge .npy); the exact size is computed first and a larger one refused before
        /// anything is allocated or written.
        #[arg(long, value_name = "BYTES", default_value = "64G", value_parser = tensor_ipc_plasma_store::parse_size)]
        max_output_bytes: u64,
    },
    /// Copy a stream of tensor messages between files, object-store URLs and Plasma objects.
    ///
    /// SRC and DST are each a path, a URL (s3://bucket/key, gs://, az://, http(s)://, file://,
    /// memory://, configured from the environment: AWS_ENDPOINT, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP, ...) or plasma: and a 40-hex-digit
    /// object id of the store at --socket. The bytes are copied as they are, after their
    /// headers are checked; a Plasma destination is one object holding the whole stream. The
    /// destination appears only when the whole copy succeeded.
    Cp {
        /// Where the messages are.
        #[arg(value_name = "SRC")]
        src: OsString,
        /// Where they go (replaced if it exists; a Plasma object must not exist yet).
        #[arg(value_name = "DST")]
        dst: OsString,
        /// The Plasma store's socket, for a plasma:ID side.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
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
        Command::Inspect { file, socket } => {
            Location::parse(&file).and_then(|file| inspect::inspect(&file, socket.as_deref()))
        }
        Command::Convert {
            input,
            output,
            index,
            to,
            socket,
            max_output_bytes,
        } => Location::parse(&input).and_then(|input| {
            let output = Location::parse(&output)?;
            let request = convert::Request {
                index,
                to: to.as_deref(),
                socket: socket.as_deref(),
                max_output_bytes,
            };
            convert::convert(&input, &output, &request)
        }),
        Command::Cp { src, dst, socket } => Location::parse(&src)
            .and_then(|src| cp::cp(&src, &Location::parse(&dst)?, socket.as_deref())),
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
        "missing subcommand: inspect, convert or cp"
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

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;

    fn max_output_bytes(extra: &[&str]) -> Result<u64, clap::Error> {
        let args = ["tensor-ipc", "convert", "a.npy", "a.tensor"]
            .iter()
            .chain(extra);
        match Cli::try_parse_from(args)?.command {
            Command::Convert {
                max_output_bytes, ..
            } => Ok(max_output_bytes),
            _ => unreachable!("parsed a convert command"),
        }
    }

    #[test]
    fn max_output_bytes_reads_sizes_as_the_store_does() {
        assert_eq!(max_output_bytes(&[]).unwrap(), 64 << 30);
        assert_eq!(
            max_output_bytes(&["--max-output-bytes", "512MiB"]).unwrap(),
            512 << 20
        );
        assert!(max_output_bytes(&["--max-output-bytes", "1.5G"]).is_err());
        assert!(max_output_bytes(&["--max-output-bytes", "99999999999999T"]).is_err());
    }
}
