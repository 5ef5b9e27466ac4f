//! Arbitrary bytes through the reader in strict mode (alignment required, small metadata
//! limit), from the input as given and from an odd offset.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tensor_ipc_fuzz::decode_tensor_strict(data);
});
