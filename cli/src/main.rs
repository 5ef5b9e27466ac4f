//! The `tensor-ipc` command; everything it does lives in the `tensor_ipc_cli` library.

fn main() -> std::process::ExitCode {
    tensor_ipc_cli::run(std::env::args_os())
}
