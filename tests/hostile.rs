//! Hostile inputs: every file of `tests/data/hostile/` (made by its `generate.py`) and every
//! seed of the fuzz corpus (`fuzz/corpus/`) is replayed through the reader, with the default
//! and the strict options, over a byte slice and over a `BufferSource`. Nothing may panic, and
//! each hostile file must fail (or not) exactly as `expected.json` says.
//!
//! The decode loop is the fuzz targets' own body (`fuzz/src/targets.rs`, included below), so
//! a crash found by the fuzzer becomes a regression test by copying the input here.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tensor_ipc::{Buffer, Error, ReadOptions, TensorSource, read_message, read_tensor};
use tensor_ipc_memory::BufferSource;

use crate::common::data_dir;

#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/src/targets.rs"]
mod targets;

fn hostile_dir() -> PathBuf {
    data_dir().join("hostile")
}

fn fuzz_corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

/// The name of an error's variant: `Truncated` for `Truncated { .. }`.
fn variant(err: &Error) -> String {
    let debug = format!("{err:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// "ok", "eos" or the variant of the first error of a decode loop.
fn summarize(outcome: &targets::Outcome) -> String {
    match &outcome.error {
        Some(err) => variant(err),
        None if outcome.messages == 0 => "eos".to_owned(),
        None => "ok".to_owned(),
    }
}

/// The same loop as the fuzz targets (dense and sparse tensor messages validated), over any
/// source (here a `BufferSource`), without the invariant checks: only the outcome.
fn loop_outcome<'a, S: TensorSource<'a>>(source: &mut S, options: &ReadOptions) -> String {
    let mut messages = 0;
    loop {
        match read_message(source, options) {
            Ok(None) => break,
            Ok(Some(message)) => {
                messages += 1;
                let validated = match message.header.type_name() {
                    "Tensor" => message.into_tensor(options).map(drop),
                    "SparseTensor" => message.into_sparse_tensor(options).map(drop),
                    _ => Ok(()),
                };
                if let Err(err) = validated {
                    return variant(&err);
                }
            }
            Err(err) => return variant(&err),
        }
    }
    if messages == 0 { "eos" } else { "ok" }.to_owned()
}

/// Runs `f`, turning a panic into an `Err` with its message.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".to_owned())
    })
}

/// The bytes of a file in 64-byte aligned memory, so that alignment depends only on the
/// offsets inside the file (as for an mmap'd file).
fn aligned_contents(path: &Path) -> Buffer {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Buffer::from_slice_ref(&bytes)
}

#[derive(Debug)]
struct Expected {
    expect: String,
    strict: String,
    read_tensor: String,
}

fn expected() -> BTreeMap<String, Expected> {
    let path = hostile_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).expect("expected.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("expected.json parses");
    let field = |entry: &serde_json::Value, key: &str| {
        entry
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    json.as_object()
        .expect("expected.json is an object")
        .iter()
        .map(|(name, entry)| {
            let expect = field(entry, "expect").unwrap_or_else(|| panic!("{name}: no expect"));
            let strict = field(entry, "strict").unwrap_or_else(|| expect.clone());
            let read_tensor = field(entry, "read_tensor").unwrap_or_else(|| {
                if expect == "eos" {
                    "EndOfStream".to_owned()
                } else {
                    expect.clone()
                }
            });
            let expected = Expected {
                expect,
                strict,
                read_tensor,
            };
            (name.clone(), expected)
        })
        .collect()
}

/// Files listed in `known_failures.txt`: core bugs reported and not yet fixed. They are still
/// run (a panic is caught), but do not fail the suite.
fn known_failures() -> Vec<String> {
    std::fs::read_to_string(hostile_dir().join("known_failures.txt"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

fn corpus_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(hostile_dir())
        .expect("tests/data/hostile")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .filter(|name| name.ends_with(".bin"))
        .collect();
    names.sort();
    names
}

/// Every observed outcome of one hostile file, as "what: outcome" lines that differ from the
/// expectation (empty when all match).
fn check_file(name: &str, expected: &Expected) -> Vec<String> {
    let buffer = aligned_contents(&hostile_dir().join(name));
    let strict = targets::strict_options();
    let mut mismatches = Vec::new();
    let mut check = |what: &str, want: &str, got: Result<String, String>| match got {
        Ok(got) if got == want => {}
        Ok(got) => mismatches.push(format!("{name}: {what}: expected {want}, got {got}")),
        Err(panic) => mismatches.push(format!("{name}: {what}: PANIC: {panic}")),
    };
    let bytes = buffer.as_slice();
    check(
        "decode loop (default)",
        &expected.expect,
        no_panic(|| summarize(&targets::decode_message(bytes))),
    );
    check(
        "decode loop (strict)",
        &expected.strict,
        no_panic(|| summarize(&targets::decode_all(bytes, &strict))),
    );
    check(
        "read_tensor (default)",
        &expected.read_tensor,
        no_panic(|| match read_tensor(&mut &bytes[..]) {
            Ok(_) => "ok".to_owned(),
            Err(err) => variant(&err),
        }),
    );
    check(
        "BufferSource loop (default)",
        &expected.expect,
        no_panic(|| loop_outcome(&mut BufferSource::new(buffer.clone()), &ReadOptions::new())),
    );
    // The strict target also reads every input from an odd offset; only "no panic" is asked.
    check(
        "strict target (also at an odd offset)",
        &expected.strict,
        no_panic(|| summarize(&targets::decode_tensor_strict(bytes))),
    );
    mismatches
}

#[test]
fn hostile_corpus_matches_expected_json() {
    let expected = expected();
    let files = corpus_files();
    let listed: Vec<&String> = expected.keys().collect();
    assert_eq!(
        files.iter().collect::<Vec<_>>(),
        listed,
        "every .bin file has an entry in expected.json and every entry a file"
    );
    assert!(files.len() >= 100, "the corpus has {} files", files.len());
    let known = known_failures();
    let mut failures = Vec::new();
    for name in &files {
        // Every read costs time linear in the file's bytes (all are small), whatever sizes
        // they declare: a declared count is checked against the bytes before any loop.
        let started = Instant::now();
        let mut mismatches = check_file(name, &expected[name]);
        let elapsed = started.elapsed();
        if elapsed > Duration::from_secs(1) {
            mismatches.push(format!("{name}: took {elapsed:?} (more than 1 s)"));
        }
        if known.contains(name) {
            if mismatches.is_empty() {
                eprintln!("{name} is listed in known_failures.txt but now passes: unlist it");
            } else {
                eprintln!(
                    "known failure (reported, skipped): {}",
                    mismatches.join("; ")
                );
            }
            continue;
        }
        failures.extend(mismatches);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_fuzz_seed_corpus_does_not_panic() {
    let mut failures = Vec::new();
    let mut count = 0;
    for target in ["decode_message", "decode_tensor_strict"] {
        let dir = fuzz_corpus_dir(target);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("entry").path())
            .collect();
        paths.sort();
        for path in paths {
            count += 1;
            let buffer = aligned_contents(&path);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = buffer.as_slice();
            let result = no_panic(|| {
                let lenient = targets::decode_message(bytes);
                let strict = targets::decode_tensor_strict(bytes);
                (lenient, strict)
            });
            match result {
                Err(panic) => failures.push(format!("{target}/{name}: PANIC: {panic}")),
                // The seeds copied from the golden vectors must read.
                Ok((lenient, _))
                    if (name.starts_with("dense_") || name.starts_with("sparse_"))
                        && (lenient.error.is_some() || lenient.tensors == 0) =>
                {
                    failures.push(format!("{target}/{name}: {:?}", lenient.error));
                }
                Ok(_) => {}
            }
        }
    }
    let dir = fuzz_corpus_dir("roundtrip");
    for entry in std::fs::read_dir(&dir).expect("roundtrip corpus") {
        let path = entry.expect("entry").path();
        count += 1;
        let data = std::fs::read(&path).expect("read");
        let spec = targets::TensorSpec::from_bytes(&data);
        if let Err(panic) = no_panic(|| targets::roundtrip(&spec)) {
            failures.push(format!(
                "roundtrip/{}: {spec:?}: PANIC: {panic}",
                path.display()
            ));
        }
    }
    assert!(count >= 20, "only {count} seed files");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_roundtrip_specs_from_every_small_input() {
    // A deterministic sweep of the roundtrip target over generated specs: every dtype and
    // layout, shapes with empty and size-1 axes.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..2000u32 {
        let mut bytes = [0u8; 24];
        for b in &mut bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        bytes[0] = (i % 11) as u8;
        bytes[7] = (i / 11 % 5) as u8;
        let spec = targets::TensorSpec::from_bytes(&bytes);
        if let Err(panic) = no_panic(|| targets::roundtrip(&spec)) {
            panic!("{spec:?}: {panic}");
        }
    }
}

#[test]
fn hostile_huge_metadata_length_does_not_allocate() {
    // FF FF FF FF, L = 2^31 - 1, then 8 bytes: 16 bytes that announce 2 GiB of metadata.
    let mut input = vec![0xff; 4];
    input.extend_from_slice(&i32::MAX.to_le_bytes());
    input.extend_from_slice(&[0xab; 8]);
    assert_eq!(input.len(), 16);

    let start = Instant::now();
    let err = read_tensor(&mut input.as_slice()).unwrap_err();
    assert!(
        matches!(err, Error::MetadataTooLarge { length, .. } if length == i32::MAX as u64),
        "{err}"
    );
    // Without the limit, the reader must see that the bytes are missing, not try to get them.
    let unlimited = ReadOptions::new().with_max_metadata_len(usize::MAX);
    for _ in 0..1000 {
        let err = tensor_ipc::read_tensor_with(&mut input.as_slice(), &unlimited).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { expected, available: 8, .. }
                if expected == i32::MAX as u64),
            "{err}"
        );
        let mut source = BufferSource::new(Buffer::from_slice_ref(&input));
        let err = tensor_ipc::read_tensor_with(&mut source, &unlimited).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
        assert_eq!(source.position(), 0, "a failed read consumes nothing");
    }
    // 2001 reads of a 2 GiB allocation (or of zeroing it) would take far longer than this
    // (a loose bound: the test guards against allocating, not for speed).
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn hostile_variant_names() {
    assert_eq!(variant(&Error::EndOfStream), "EndOfStream");
    assert_eq!(
        variant(&Error::Truncated {
            part: "x",
            expected: 1,
            available: 0
        }),
        "Truncated"
    );
    assert_eq!(
        variant(&Error::InvalidContinuation { value: -2 }),
        "InvalidContinuation"
    );
}
