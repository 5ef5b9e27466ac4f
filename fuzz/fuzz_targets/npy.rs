//! Arbitrary bytes as a `.npy` file: the CLI's header parser, then the tensor, its message
//! and its sparse conversions (`src/npy_targets.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tensor_ipc_fuzz::npy(data);
});
