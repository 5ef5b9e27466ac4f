//! Arbitrary bytes through the Plasma protocol parsers: frames, every message type's
//! flatbuffer body (re-encoded and decoded again when valid), notification bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tensor_ipc_fuzz::plasma_message(data);
});
