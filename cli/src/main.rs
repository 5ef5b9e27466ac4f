//! The `tensor-ipc` command; everything it does lives in the `tensor_ipc_cli` library.

fn main() -> std::process::ExitCode {
    // Where an output's temporary file has a name (file systems without `O_TMPFILE`), it is
    // removed when the command is interrupted or killed with SIGTERM; best effort.
    let _ = tensor_ipc_file::remove_temporaries_on_signals();
    tensor_ipc_cli::run(std::env::args_os())
}
