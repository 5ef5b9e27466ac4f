//! The `plasma-store` server binary; everything it does is `tensor_ipc_plasma_store::cli::run`.

fn main() -> std::process::ExitCode {
    tensor_ipc_plasma_store::cli::run(std::env::args_os())
}
