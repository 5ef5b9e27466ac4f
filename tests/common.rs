//! Helpers shared by the integration test modules.

use std::path::PathBuf;

/// The directory of committed test data (`tests/data`).
#[allow(dead_code)]
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}
