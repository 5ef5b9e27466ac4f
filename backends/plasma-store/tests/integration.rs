//! The store's integration tests, one binary: the protocol and every behaviour through a raw
//! client (`store`), the `plasma-store` executable (`cli`), a mutation fuzzer (`fuzz`), and the
//! hardening of issue 10: clients killed at random points (`faults`), load (`load`),
//! external-store faults and restarts (`spill`), resource limits (`limits`). Object storage as
//! the external tier is tested through the client, in the client crate's `objstore`.

mod cli;
mod faults;
mod fuzz;
mod limits;
mod load;
#[path = "../../../tests/support/peers.rs"]
mod peers;
mod raw_client;
mod spill;
mod store;
