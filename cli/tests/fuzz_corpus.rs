//! The `npy` fuzz target (`fuzz/src/npy_targets.rs`, included below) replayed over its seed
//! corpus (`fuzz/corpus/npy`) and the CLI's hostile `.npy` files, and over every prefix of a
//! few of them: nothing may panic.

use std::path::PathBuf;

#[path = "../../fuzz/src/npy_targets.rs"]
mod npy_targets;

fn files_in(dir: PathBuf, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension) || extension.is_empty())
        .collect();
    paths.sort();
    paths
}

#[test]
fn npy_fuzz_corpus_replays_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = files_in(root.join("../fuzz/corpus/npy"), "");
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    let hostile = files_in(root.join("tests/data/hostile"), "npy");
    for path in seeds.iter().chain(&hostile) {
        let data = std::fs::read(path).unwrap();
        npy_targets::npy(&data);
    }
    for path in &seeds[..4] {
        let data = std::fs::read(path).unwrap();
        for n in 0..data.len() {
            npy_targets::npy(&data[..n]);
        }
    }
}
