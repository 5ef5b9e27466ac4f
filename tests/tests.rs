//! The one integration test binary. Each module covers one area; shared helpers live in
//! `common`.

mod common;
