//! The store's integration tests, one binary: the protocol and every behaviour through a raw
//! client (`store`), the `plasma-store` executable (`cli`), a mutation fuzzer (`fuzz`), and
//! object storage as the external tier, shared by two stores (`objstore`).

mod cli;
mod fuzz;
mod objstore;
#[path = "../../../tests/support/peers.rs"]
mod peers;
mod raw_client;
#[path = "../../object-store/tests/server.rs"]
#[allow(dead_code)] // Only the shared server is used here.
mod s3_server;
mod store;
