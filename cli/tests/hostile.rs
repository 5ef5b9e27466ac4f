//! The CLI's hostile-file corpus (`cli/tests/data/hostile`, made by its `generate.py`): each
//! file is converted by the `tensor-ipc` binary under a 1 GiB address-space limit
//! (`ulimit -v` in `sh -c`) and must end as `expected.json` says, in bounded time: a correct
//! conversion (exit 0, the output read back with the expected shape) or a clean error (exit 1,
//! one `tensor-ipc: error:` line containing the expected words), never a panic (101), an abort
//! (134) or a signal; nothing but the output may be left in the directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tensor_ipc::{Header, read_message};
use tensor_ipc_cli::npy;

/// 1 GiB, in the KiB `ulimit -v` counts.
const ADDRESS_SPACE_KIB: u64 = 1 << 20;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile")
}

fn expected() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(corpus_dir().join("expected.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(map) => map.into_iter().collect(),
        _ => panic!("expected.json is an object"),
    }
}

/// The per-case time bound: 1 s for an optimised build, 5 s for a debug one.
fn time_bound() -> Duration {
    Duration::from_secs(if cfg!(debug_assertions) { 5 } else { 1 })
}

/// The shape of the one tensor written at `path` (a .npy or a tensor message).
fn written_shape(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "npy") {
        return npy::parse_header(&bytes).unwrap().shape;
    }
    let message = read_message(&mut bytes.as_slice(), &Default::default())
        .unwrap()
        .unwrap();
    match message.header {
        Header::Tensor(h) => h.shape,
        Header::SparseTensor(h) => h.shape,
        other => panic!("{}: {}", path.display(), other.type_name()),
    }
}

/// Runs one case; returns what differs from its expectation.
fn check_case(name: &str, want: &Value, work: &Path) -> Option<String> {
    let input = corpus_dir().join(name);
    let output = work.join(if name.ends_with(".npy") {
        "out.arrow_tensor"
    } else {
        "out.npy"
    });
    let args: Vec<String> = want["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("'{}'", a.as_str().unwrap()))
        .collect();
    let script = format!(
        "ulimit -v {ADDRESS_SPACE_KIB} && exec '{}' convert '{}' '{}' {}",
        env!("CARGO_BIN_EXE_tensor-ipc"),
        input.display(),
        output.display(),
        args.join(" ")
    );
    let started = Instant::now();
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let mut problems = Vec::new();
    if elapsed > time_bound() {
        problems.push(format!("took {elapsed:?}"));
    }
    match (want["expect"].as_str().unwrap(), out.status.code()) {
        ("ok", Some(0)) => {
            let shape: Vec<usize> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let written = written_shape(&output);
            if written != shape {
                problems.push(format!("wrote shape {written:?}, expected {shape:?}"));
            }
        }
        ("error", Some(1)) => {
            let words = want["message"].as_str().unwrap();
            if !stderr.starts_with("tensor-ipc: error: ")
                || stderr.lines().count() != 1
                || !stderr.contains(words)
            {
                problems.push(format!("expected one error line with {words:?}"));
            }
            if output.exists() {
                problems.push("an output was written".to_owned());
            }
        }
        (expect, _) => problems.push(format!("expected {expect}, got {:?}", out.status)),
    }
    let _ = std::fs::remove_file(&output);
    if std::fs::read_dir(work).unwrap().next().is_some() {
        problems.push("files left behind".to_owned());
    }
    (!problems.is_empty()).then(|| format!("{name}: {} ({stderr})", problems.join("; ")))
}

#[test]
fn hostile_files_end_in_a_clean_error_or_a_correct_conversion() {
    let expected = expected();
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".npy") || n.ends_with(".arrow_tensor"))
        .collect();
    files.sort();
    assert_eq!(
        files.iter().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every file has an entry in expected.json and every entry a file"
    );
    assert!(files.len() >= 100, "{} files", files.len());
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|name| check_case(name, &expected[name], work.path()))
        .collect();
    eprintln!("{} hostile files in {:?}", files.len(), started.elapsed());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
