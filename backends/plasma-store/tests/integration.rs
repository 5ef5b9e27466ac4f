//! The store's integration tests, one binary: the protocol and every behaviour through a raw
//! client (`store`), the `plasma-store` executable (`cli`), and a mutation fuzzer (`fuzz`).

mod cli;
mod fuzz;
mod raw_client;
mod store;
