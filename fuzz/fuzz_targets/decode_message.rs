//! Arbitrary bytes through `read_message` (default options) until the end of the stream or an
//! error; tensor messages validated and their data touched.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tensor_ipc_fuzz::decode_message(data);
});
