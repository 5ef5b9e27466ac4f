//! The protocol crate's one integration test binary: the `plasma_message` fuzz corpus and its
//! seeds (which pin every message's encoded bytes).

mod fuzz_corpus;
