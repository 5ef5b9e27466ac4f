//! Cross-checks with the current pyarrow (`pyarrow>=26`, `numpy>=2`), through the scripts in
//! `tests/python/`:
//!
//! * (a) Rust writes tensors of every type and layout; pyarrow reads them with the expected
//!   values, and writes the same numpy input to the same bytes (`check_rust_written.py`).
//! * (b) pyarrow writes random tensors (`write_random.py`); Rust reads them with the values
//!   pyarrow saved, and rebuilds pyarrow's input view and writes the same bytes.
//! * `tests/data/generate.py --check` rebuilds the golden vectors byte for byte.
//!
//! The interpreter is `$TENSOR_IPC_PYTHON`, else `target/venv-pyarrow` (see
//! `tests/support/peers.rs`). Without one the tests record a skip and pass, except under CI
//! (`$CI` set), where they fail: the cross-checks must not silently skip there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tensor_ipc::{
    Buffer, DType, Tensor, TensorData, TensorSourceExt, read_tensor, tensor_size, write_tensor,
};
use tensor_ipc_file::FileSource;

use crate::golden::{dtype_of, encode_values};
use crate::proptests::{ref_column_major, ref_row_major};

/// The Python to run, or `None` (recorded as skipped) when the cross-checks have no peer.
fn python() -> Option<PathBuf> {
    let python = crate::peers::current_pyarrow();
    if python.is_none() {
        crate::peers::skipped(
            "the pyarrow cross-checks of the codec",
            "no Python with pyarrow >= 26 (set TENSOR_IPC_PYTHON or run .ci/setup-python.sh)",
        );
    }
    python
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join(name)
}

/// Runs a script and returns its stdout; panics with both streams if it fails.
fn run_python(python: &Path, name: &str, args: &[&Path]) -> String {
    let output = Command::new(python)
        .arg(script(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {name}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

/// Test value `i` of a type: distinct, exact in JSON, covering negative and large values.
fn value(dtype: DType, i: usize) -> Value {
    let i = i as u64;
    match dtype {
        DType::Int8 => json!((i.wrapping_mul(37) % 256) as u8 as i8),
        DType::Int16 => json!((i.wrapping_mul(9_973) % 65_536) as u16 as i16),
        DType::Int32 => json!(i.wrapping_mul(2_654_435_761) as u32 as i32),
        DType::Int64 => json!(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64),
        DType::UInt8 => json!(i.wrapping_mul(37) % 256),
        DType::UInt16 => json!(i.wrapping_mul(9_973) % 65_536),
        DType::UInt32 => json!(i.wrapping_mul(2_654_435_761) as u32),
        DType::UInt64 => json!(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        // Quarter steps from -3: exact in float16 for the sizes used here.
        _ => json!(i as f64 * 0.25 - 3.0),
    }
}

/// One input of cross-check (a): a view over `n` base values.
struct Input {
    name: String,
    dtype: DType,
    base_len: usize,
    offset_elems: usize,
    shape: Vec<usize>,
    /// Byte strides.
    strides: Vec<usize>,
    names: Option<Vec<&'static str>>,
}

fn inputs() -> Vec<Input> {
    let mut out = Vec::new();
    for dtype in DType::ALL {
        let w = dtype.byte_width();
        let mut add = |layout: &str,
                       base_len: usize,
                       offset_elems: usize,
                       shape: &[usize],
                       strides: Vec<usize>,
                       names: Option<Vec<&'static str>>| {
            out.push(Input {
                name: format!("{}_{layout}", dtype.name()),
                dtype,
                base_len,
                offset_elems,
                shape: shape.to_vec(),
                strides,
                names,
            });
        };
        add("row_major", 12, 0, &[3, 4], ref_row_major(&[3, 4], w), None);
        add(
            "col_major",
            12,
            0,
            &[3, 4],
            ref_column_major(&[3, 4], w),
            None,
        );
        add("1d_13", 13, 0, &[13], vec![w], None);
        // a.reshape(4, 6)[:, ::2]
        add("cols_step2", 24, 0, &[4, 3], vec![6 * w, 2 * w], None);
        // a.reshape(2, 3, 4).transpose(1, 0, 2)
        add(
            "transpose_102",
            24,
            0,
            &[3, 2, 4],
            vec![4 * w, 12 * w, w],
            None,
        );
        // a.reshape(4, 6)[1:3, 2:5]: starts 8 elements in
        add("offset_view", 24, 8, &[2, 3], vec![6 * w, w], None);
        // a.reshape(5, 4)[1:, 1:2]: size-1 axis with a non-canonical stride
        add("size1_axis", 20, 5, &[4, 1], vec![4 * w, w], None);
        add("0d", 1, 0, &[], vec![], None);
        add("empty_0x3", 0, 0, &[0, 3], vec![3 * w, w], None);
        add("empty_2x0x3", 0, 0, &[2, 0, 3], vec![0, 0, 0], None);
        add("empty_1d", 0, 0, &[0], vec![w], None);
        let rm = ref_row_major(&[2, 3], w);
        add("named", 6, 0, &[2, 3], rm, Some(vec!["x", "h\u{f6}he"]));
        let cm = ref_column_major(&[2, 3, 2], w);
        add(
            "named_col_major",
            12,
            0,
            &[2, 3, 2],
            cm,
            Some(vec!["a", "", "c"]),
        );
        // Non-contiguous: the names are dropped, as Arrow C++ drops them.
        add(
            "named_strided",
            24,
            0,
            &[4, 3],
            vec![6 * w, 2 * w],
            Some(vec!["r", "c"]),
        );
    }
    out
}

/// Row-major gather of JSON values by index arithmetic.
fn gather(
    base: &[Value],
    offset_elems: usize,
    shape: &[usize],
    strides: &[usize],
    w: usize,
) -> Vec<Value> {
    let count: usize = shape.iter().product();
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let byte: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
        out.push(base[offset_elems + byte / w].clone());
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[test]
fn pyarrow_reads_what_rust_writes() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut stream = Vec::new();
    for input in inputs() {
        let dtype = input.dtype;
        let w = dtype.byte_width();
        let base: Vec<Value> = (0..input.base_len).map(|i| value(dtype, i)).collect();
        let bytes = encode_values(dtype, &base);
        let buffer = Buffer::from_slice_ref(&bytes);
        let start = input.offset_elems * w;
        let data = if input.shape.contains(&0) {
            buffer.slice_with_length(0, 0)
        } else {
            buffer.slice(start)
        };
        let names: Vec<String> = input
            .names
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(String::from)
            .collect();
        let t = Tensor::with_layout(
            dtype,
            TensorData::Shared(data),
            input.shape.clone(),
            input.strides.clone(),
            names.clone(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", input.name));
        let contiguous = input.strides == ref_row_major(&input.shape, w)
            || input.strides == ref_column_major(&input.shape, w);
        let file = format!("{}.arrow_tensor", input.name);
        let mut message = Vec::new();
        write_tensor(&t, &mut message).unwrap();
        std::fs::write(dir.path().join(&file), &message).unwrap();
        write_tensor(&t, &mut stream).unwrap();
        let expect_names: Vec<String> = if contiguous && !names.is_empty() {
            names.clone()
        } else {
            vec![String::new(); input.shape.len()]
        };
        cases.push(json!({
            "file": file,
            "dtype": dtype.name(),
            "shape": input.shape,
            "base_values": base,
            "offset": start,
            "strides": input.strides,
            "dim_names": input.names,
            "expect_strides": if contiguous { input.strides.clone() } else { ref_row_major(&input.shape, w) },
            "expect_dim_names": expect_names,
            "expect_values": gather(&base, input.offset_elems, &input.shape, &input.strides, w),
        }));
    }
    let n = cases.len();
    assert_eq!(n, 11 * 14);
    std::fs::write(dir.path().join("stream.arrow_tensor"), &stream).unwrap();
    std::fs::write(
        dir.path().join("cases.json"),
        serde_json::to_string(&cases).unwrap(),
    )
    .unwrap();
    let stdout = run_python(&python, "check_rust_written.py", &[dir.path()]);
    let summary = stdout.lines().last().unwrap_or_default();
    println!("{summary}");
    assert!(
        summary.ends_with(&format!("checked {n} tensors, 0 failures")),
        "unexpected summary from check_rust_written.py:\n{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains(&format!("ok   stream of {n} messages")),
        "the back-to-back stream was not checked:\n{stdout}"
    );
}

/// Element bytes of values from `write_random.py`, which gives floats as bit patterns.
fn encode_saved(dtype: DType, values: &Value) -> Vec<u8> {
    let as_bits = match dtype {
        DType::Float16 => DType::UInt16,
        DType::Float32 => DType::UInt32,
        DType::Float64 => DType::UInt64,
        other => other,
    };
    encode_values(as_bits, values.as_array().unwrap())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Checks a tensor Rust read against what pyarrow saved for it.
fn check_read(t: &Tensor<'_>, case: &Value, what: &str) {
    let dtype = dtype_of(case["dtype"].as_str().unwrap());
    assert_eq!(t.dtype(), dtype, "{what}: dtype");
    assert_eq!(t.shape(), &usizes(&case["shape"])[..], "{what}: shape");
    assert_eq!(
        t.strides(),
        &usizes(&case["read_strides"])[..],
        "{what}: strides (pyarrow reads {})",
        case["read_strides"]
    );
    let names: Vec<&str> = (0..t.ndim()).map(|i| t.dim_name(i)).collect();
    assert_eq!(names, strings(&case["read_dim_names"]), "{what}: dim names");
    let values = encode_saved(dtype, &case["values"]);
    assert_eq!(t.to_row_major_bytes().unwrap(), values, "{what}: values");
}

#[test]
fn rust_reads_what_pyarrow_writes() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // `TENSOR_IPC_INTEROP_SEED` / `TENSOR_IPC_INTEROP_COUNT` override the script's defaults.
    let mut args: Vec<PathBuf> = vec![dir.path().to_path_buf()];
    if let Some(seed) = std::env::var_os("TENSOR_IPC_INTEROP_SEED") {
        args.push(seed.into());
        if let Some(count) = std::env::var_os("TENSOR_IPC_INTEROP_COUNT") {
            args.push(count.into());
        }
    }
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let stdout = run_python(&python, "write_random.py", &args);
    println!("{}", stdout.trim());
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cases.json")).unwrap())
            .unwrap();
    assert!(
        cases.len() >= 100,
        "write_random.py wrote {} cases",
        cases.len()
    );
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let what = format!("{file} ({}, {})", case["kind"], case["dtype"]);
        let path = dir.path().join(file);
        let pyarrow_bytes = std::fs::read(&path).unwrap();
        assert_eq!(pyarrow_bytes.len() as u64, case["size"].as_u64().unwrap());

        // Read zero-copy from the mapped file.
        let mut source = FileSource::open(&path).unwrap();
        let t = source
            .read_tensor()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        check_read(&t, case, &what);
        assert_eq!(source.remaining(), 0, "{what}: whole file consumed");
        let range = source.buffer().as_slice().as_ptr_range();
        assert!(
            range.contains(&t.as_bytes().as_ptr()) || t.as_bytes().is_empty(),
            "{what}: not zero-copy"
        );

        // Writing what was read gives pyarrow's bytes again.
        let mut rewritten = Vec::new();
        write_tensor(&t, &mut rewritten).unwrap();
        assert!(
            rewritten == pyarrow_bytes,
            "{what}: read then written differs"
        );

        // Rebuilding pyarrow's numpy input view and writing it gives pyarrow's bytes.
        let dtype = t.dtype();
        let shape = usizes(&case["shape"]);
        let base = encode_saved(dtype, &case["base_values"]);
        let buffer = Buffer::from_slice_ref(&base);
        let offset = case["offset"].as_u64().unwrap() as usize;
        let data = if shape.contains(&0) {
            buffer.slice_with_length(0, 0)
        } else {
            buffer.slice(offset)
        };
        let names = if case["dim_names"].is_null() {
            Vec::new()
        } else {
            strings(&case["dim_names"])
        };
        let input = Tensor::with_layout(
            dtype,
            TensorData::Shared(data),
            shape,
            usizes(&case["strides"]),
            names,
        )
        .unwrap_or_else(|e| panic!("{what}: cannot rebuild the input view: {e}"));
        assert_eq!(
            input.is_contiguous(),
            case["is_contiguous"].as_bool().unwrap(),
            "{what}: contiguity (strides {})",
            case["strides"]
        );
        assert_eq!(
            tensor_size(&input).unwrap(),
            pyarrow_bytes.len(),
            "{what}: tensor_size"
        );
        let mut ours = Vec::new();
        write_tensor(&input, &mut ours).unwrap();
        if ours != pyarrow_bytes {
            let first = ours.iter().zip(&pyarrow_bytes).position(|(a, b)| a != b);
            panic!(
                "{what}: not byte-identical with pyarrow (len {} vs {}, first difference at \
                 {first:?}); input strides {} names {}",
                ours.len(),
                pyarrow_bytes.len(),
                case["strides"],
                case["dim_names"]
            );
        }
    }

    // All of them back to back in one file (most start unaligned), read in order.
    let mut source = FileSource::open(dir.path().join("stream.arrow_tensor")).unwrap();
    let mut count = 0;
    for (case, t) in cases.iter().zip(source.tensors(Default::default())) {
        let what = format!("stream message {count} ({})", case["file"]);
        let t = t.unwrap_or_else(|e| panic!("{what}: {e}"));
        check_read(&t, case, &what);
        count += 1;
    }
    assert_eq!(count, cases.len(), "messages read from the stream");
    assert_eq!(source.remaining(), 0);
    assert!(matches!(
        source.read_tensor(),
        Err(tensor_ipc::Error::EndOfStream)
    ));
    // The same stream from a byte slice.
    let bytes = std::fs::read(dir.path().join("stream.arrow_tensor")).unwrap();
    let mut slice = &bytes[..];
    for case in &cases {
        let t = read_tensor(&mut slice).unwrap();
        check_read(&t, case, "stream via slice");
    }
    assert!(slice.is_empty());
}

#[test]
fn generator_reproduces_the_committed_vectors() {
    let Some(python) = python() else { return };
    let generator = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/generate.py");
    let output = Command::new(&python)
        .arg(&generator)
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tests/data/generate.py --check failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{}", stdout.lines().last().unwrap_or_default());
}
