//! The Plasma client's integration tests, one binary: its API against each store (Arrow 11's
//! `plasma-store-server` and ours), interop with pyarrow 11 and a C++ libplasma reader,
//! threads, failures, (`chaos`) many clients of every kind at once, and (`objstore`) the store
//! with object storage as its external tier, two stores sharing one bucket.

mod chaos;
mod client_basic;
mod client_failure;
mod client_interop;
mod client_support;
mod client_threads;
mod objstore;
#[path = "../../../tests/support/peers.rs"]
mod peers;
#[path = "../../plasma-store/tests/raw_client.rs"]
mod raw_client;
#[path = "../../object-store/tests/server.rs"]
#[allow(dead_code)] // Only the shared server is used here.
mod s3_server;
