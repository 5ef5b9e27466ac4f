//! The Plasma client's integration tests, one binary: its API against each store (Arrow 11's
//! `plasma-store-server` and ours), interop with pyarrow 11 and a C++ libplasma reader,
//! threads, failures, and the protocol fuzz target's corpus.

mod client_basic;
mod client_failure;
mod client_interop;
mod client_support;
mod client_threads;
mod fuzz_corpus;
