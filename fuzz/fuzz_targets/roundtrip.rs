//! A small tensor built with `arbitrary` (dtype, shape, layout, names), written and read back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: tensor_ipc_fuzz::RoundtripInput| {
    tensor_ipc_fuzz::roundtrip(&input.spec());
});
