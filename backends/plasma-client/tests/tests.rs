//! The Plasma client's integration tests, one binary: its API against each store (Arrow 11's
//! `plasma-store-server` and ours), interop with pyarrow 11 and a C++ libplasma reader,
//! threads, failures, and (`chaos`) many clients of every kind at once.

mod chaos;
mod client_basic;
mod client_failure;
mod client_interop;
mod client_support;
mod client_threads;
#[path = "../../../tests/support/peers.rs"]
mod peers;
#[path = "../../plasma-store/tests/raw_client.rs"]
mod raw_client;
