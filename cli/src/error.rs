//! The one error type of the CLI.

use std::path::Path;

/// Why a `tensor-ipc` command failed. Its `Display` is the one line printed after
/// `tensor-ipc: error: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `.npy` header that cannot be read (or an element type `.npy` cannot hold).
    #[error("npy: {reason}")]
    Npy {
        /// What is wrong.
        reason: String,
    },
    /// A command that failed, with the whole explanation (the file, the message, the cause).
    #[error("{line}")]
    Command {
        /// The explanation, on one line.
        line: String,
    },
}

/// Result alias of the CLI.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure explained by `line`.
    pub(crate) fn command(line: impl Into<String>) -> Self {
        Error::Command { line: line.into() }
    }

    /// The message as one line: control characters (a newline inside a file name or a
    /// header) become spaces.
    pub fn one_line(&self) -> String {
        self.to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }
}

/// Fails with `line`.
pub(crate) fn fail<T>(line: impl Into<String>) -> Result<T> {
    Err(Error::command(line))
}

/// Adds the input or output (a path, a URL, a Plasma id) to a codec error (or to an error of
/// this crate, such as a bad `.npy` header).
pub(crate) fn at<E: std::fmt::Display>(
    where_: &impl std::fmt::Display,
) -> impl Fn(E) -> Error + '_ {
    move |e| Error::command(format!("{where_}: {e}"))
}

/// Describes a failed I/O step on `path`.
pub(crate) fn io_at<'p, E: std::fmt::Display>(
    path: &'p Path,
    doing: &'p str,
) -> impl Fn(E) -> Error + 'p {
    move |e| Error::command(format!("cannot {doing} {}: {e}", path.display()))
}

/// The cause an I/O error carries, without the codec's `I/O error: ` prefix.
pub(crate) fn io_cause(e: tensor_ipc::Error) -> String {
    match e {
        tensor_ipc::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}
