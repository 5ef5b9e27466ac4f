//! The CLI's one integration test binary: the `tensor-ipc` executable on the golden vectors,
//! `.npy` round trips, hostile input, the pyarrow cross-check (`cli`), and conversions to and
//! from sparse messages (`sparse`).

mod cli;
mod common;
#[path = "../../tests/support/peers.rs"]
mod peers;
mod sparse;
#[path = "../../tests/sparse_golden.rs"]
mod sparse_golden;
