//! The CLI's one integration test binary: the `tensor-ipc` executable on the golden vectors,
//! `.npy` round trips, hostile input, the pyarrow cross-check (`cli`), and conversions to and
//! from sparse messages (`sparse`), and object-store URLs and Plasma ids (`remote`); outputs
//! that fail or are killed mid-way leave nothing behind (`atomic_output`); the hostile-file
//! corpus of `tests/data/hostile` under a memory and a time bound (`hostile`); the `npy` fuzz
//! target over its seeds (`fuzz_corpus`).

mod atomic_output;
mod cli;
mod common;
mod fuzz_corpus;
mod hostile;
#[path = "../../tests/support/peers.rs"]
mod peers;
mod remote;
#[path = "../../backends/object-store/tests/server.rs"]
#[allow(dead_code)] // The CLI's tests use the shared server only.
mod s3_server;
mod sparse;
#[path = "../../tests/sparse_golden.rs"]
mod sparse_golden;
