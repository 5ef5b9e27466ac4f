//! Helpers shared by the CLI's test modules.

use std::path::PathBuf;

/// The directory of the project's committed test data (`tests/data` at the repository root).
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("data")
}
