//! The store's integration tests, one binary: the protocol and every behaviour through a raw
//! client (`store`), the `plasma-store` executable (`cli`), a mutation fuzzer (`fuzz`),
//! object storage as the external tier, shared by two stores (`objstore`), and the hardening
//! of issue 10: clients killed at random points (`faults`), load (`load`), external-store
//! faults and restarts (`spill`), resource limits (`limits`).

mod cli;
mod faults;
mod fuzz;
mod limits;
mod load;
mod objstore;
#[path = "../../../tests/support/peers.rs"]
mod peers;
mod raw_client;
#[path = "../../object-store/tests/server.rs"]
#[allow(dead_code)] // Only the shared server is used here.
mod s3_server;
mod spill;
mod store;
