//! The one integration test binary. Each module covers one area; shared helpers live in
//! `common`.

mod common;
mod golden;
mod hostile;
#[path = "support/peers.rs"]
mod peers;
mod proptests;
mod pyarrow_interop;
mod sparse;
mod sparse_golden;
