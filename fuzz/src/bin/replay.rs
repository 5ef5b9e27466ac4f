//! Stable driver: runs every fuzz target over its corpus (`fuzz/corpus/<target>/`) or over the
//! files and directories given, without libFuzzer or a nightly toolchain.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --bin replay                 # every corpus
//! cargo run --manifest-path fuzz/Cargo.toml --bin replay -- decode_message crash-1234
//! ```

use std::path::{Path, PathBuf};

const TARGETS: [&str; 5] = [
    "decode_message",
    "decode_tensor_strict",
    "roundtrip",
    "plasma_message",
    "npy",
];

fn run(target: &str, data: &[u8]) {
    match target {
        "decode_message" => {
            let _ = tensor_ipc_fuzz::decode_message(data);
        }
        "decode_tensor_strict" => {
            let _ = tensor_ipc_fuzz::decode_tensor_strict(data);
        }
        "roundtrip" => {
            tensor_ipc_fuzz::roundtrip_bytes(data);
            tensor_ipc_fuzz::roundtrip(&tensor_ipc_fuzz::TensorSpec::from_bytes(data));
        }
        "plasma_message" => tensor_ipc_fuzz::plasma_message(data),
        "npy" => tensor_ipc_fuzz::npy(data),
        other => panic!("unknown target {other}; known: {TARGETS:?}"),
    }
}

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut out: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        out
    } else {
        vec![path.to_path_buf()]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let jobs: Vec<(String, Vec<PathBuf>)> = match args.split_first() {
        None => TARGETS
            .iter()
            .map(|t| (t.to_string(), files(&corpus.join(t))))
            .collect(),
        Some((target, [])) => vec![(target.clone(), files(&corpus.join(target)))],
        Some((target, paths)) => vec![(
            target.clone(),
            paths.iter().flat_map(|p| files(Path::new(p))).collect(),
        )],
    };
    for (target, paths) in jobs {
        for path in &paths {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            run(&target, &data);
        }
        println!("{target}: {} inputs, no panic", paths.len());
    }
}
