//! Golden vectors (`tests/data`, written by pyarrow 26 / Arrow C++ 26; see
//! `tests/data/README.md`): the writer reproduces every dense file byte for byte from the same
//! input view, the reader decodes every dense file, and every hand-built reader case gets the
//! same accept/reject outcome as pyarrow.

use serde_json::Value;
use tensor_ipc::{
    Buffer, DType, Error, ReadOptions, Tensor, TensorData, TensorSourceExt, f16, read_tensor,
    read_tensor_with, tensor_size, write_tensor,
};
use tensor_ipc_memory::{BufferSource, MemorySink};

use crate::common::data_dir;

/// `tests/data/manifest.json`.
pub(crate) fn manifest() -> Value {
    let path = data_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is valid JSON")
}

/// The bytes of a file under `tests/data`.
fn data_file(rel: &str) -> Vec<u8> {
    let path = data_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The same bytes in a fresh 64-byte aligned [`Buffer`].
fn aligned(bytes: &[u8]) -> Buffer {
    Buffer::from_slice_ref(bytes)
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of integers, got {v}"))
        .iter()
        .map(|x| x.as_u64().expect("a non-negative integer") as usize)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of strings, got {v}"))
        .iter()
        .map(|x| x.as_str().expect("a string").to_owned())
        .collect()
}

pub(crate) fn dtype_of(name: &str) -> DType {
    DType::from_name(name).unwrap_or_else(|| panic!("unknown dtype {name}"))
}

/// Little-endian element bytes of JSON numbers (integers exact; floats exact for the values used).
pub(crate) fn encode_values(dtype: DType, values: &[Value]) -> Vec<u8> {
    let int = |v: &Value| -> i64 { v.as_i64().unwrap_or_else(|| panic!("{v} is not an i64")) };
    let uint = |v: &Value| -> u64 { v.as_u64().unwrap_or_else(|| panic!("{v} is not a u64")) };
    let float = |v: &Value| -> f64 { v.as_f64().unwrap_or_else(|| panic!("{v} is not a number")) };
    let mut out = Vec::with_capacity(values.len() * dtype.byte_width());
    for v in values {
        match dtype {
            DType::Int8 => out.extend(i8::try_from(int(v)).unwrap().to_le_bytes()),
            DType::Int16 => out.extend(i16::try_from(int(v)).unwrap().to_le_bytes()),
            DType::Int32 => out.extend(i32::try_from(int(v)).unwrap().to_le_bytes()),
            DType::Int64 => out.extend(int(v).to_le_bytes()),
            DType::UInt8 => out.extend(u8::try_from(uint(v)).unwrap().to_le_bytes()),
            DType::UInt16 => out.extend(u16::try_from(uint(v)).unwrap().to_le_bytes()),
            DType::UInt32 => out.extend(u32::try_from(uint(v)).unwrap().to_le_bytes()),
            DType::UInt64 => out.extend(uint(v).to_le_bytes()),
            DType::Float16 => out.extend(f16::from_f64(float(v)).to_le_bytes()),
            DType::Float32 => out.extend((float(v) as f32).to_le_bytes()),
            DType::Float64 => out.extend(float(v).to_le_bytes()),
            other => panic!("dtype {other:?} is not handled by the test"),
        }
    }
    out
}

/// Asserts per-axis dimension names (our reader reports "no names" as an empty list, pyarrow
/// as a list of empty strings).
fn assert_names(t: &Tensor<'_>, expected: &[String], what: &str) {
    let got: Vec<&str> = (0..t.ndim()).map(|i| t.dim_name(i)).collect();
    let want: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(got, want, "{what}: dim names");
    if expected.iter().all(String::is_empty) {
        assert!(
            t.dim_names().is_empty(),
            "{what}: all-empty names should read as no names, got {:?}",
            t.dim_names()
        );
    }
}

/// The input tensor of a dense case: the same strided view over the same base memory, with
/// the same names, as the numpy array pyarrow was given.
fn input_tensor(case: &Value) -> Tensor<'static> {
    let dtype = dtype_of(case["dtype"].as_str().unwrap());
    let base = encode_values(dtype, case["base_values"].as_array().unwrap());
    let offset = case["offset"].as_u64().unwrap() as usize;
    let buffer = aligned(&base);
    let data = TensorData::Shared(buffer.slice_with_length(offset, base.len() - offset));
    let names = if case["dim_names"].is_null() {
        Vec::new()
    } else {
        strings(&case["dim_names"])
    };
    Tensor::with_layout(
        dtype,
        data,
        usizes(&case["shape"]),
        usizes(&case["strides"]),
        names,
    )
    .unwrap_or_else(|e| panic!("{}: cannot build the input view: {e}", case["file"]))
}

fn dense_cases() -> Vec<Value> {
    let cases = manifest()["dense"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 31, "expected the 31 dense vectors");
    cases
}

#[test]
fn writer_reproduces_every_dense_vector() {
    let mut failures = Vec::new();
    for case in dense_cases() {
        let file = case["file"].as_str().unwrap();
        let expected = data_file(file);
        let t = input_tensor(&case);
        assert_eq!(
            t.is_contiguous(),
            case["is_contiguous"].as_bool().unwrap(),
            "{file}: contiguity of the input view"
        );
        assert_eq!(
            tensor_size(&t).unwrap(),
            expected.len(),
            "{file}: tensor_size vs file size"
        );
        let mut out = Vec::new();
        let n = write_tensor(&t, &mut out).unwrap();
        assert_eq!(n, expected.len(), "{file}: bytes written");
        if out != expected {
            let first = out.iter().zip(&expected).position(|(a, b)| a != b);
            failures.push(format!(
                "{file}: differs (len {} vs {}, first differing byte {first:?})",
                out.len(),
                expected.len()
            ));
            continue;
        }
        // The same through the aligned memory sink.
        let mut sink = MemorySink::new();
        assert_eq!(write_tensor(&t, &mut sink).unwrap(), expected.len());
        assert_eq!(sink.as_bytes(), &expected[..], "{file}: MemorySink bytes");
        // Output does not depend on the stream position.
        let mut shifted = vec![0xAB; 3];
        write_tensor(&t, &mut shifted).unwrap();
        assert_eq!(
            &shifted[3..],
            &expected[..],
            "{file}: written after 3 bytes"
        );
    }
    assert!(
        failures.is_empty(),
        "not byte-identical:\n{}",
        failures.join("\n")
    );
}

#[test]
fn reader_decodes_every_dense_vector() {
    for case in dense_cases() {
        let file = case["file"].as_str().unwrap();
        let bytes = data_file(file);
        let dtype = dtype_of(case["dtype"].as_str().unwrap());
        let buffer = aligned(&bytes);
        let mut source = BufferSource::new(buffer.clone());
        let t = source
            .read_tensor()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(source.remaining(), 0, "{file}: whole file consumed");
        assert_eq!(t.dtype(), dtype, "{file}: dtype");
        assert_eq!(t.shape(), &usizes(&case["shape"])[..], "{file}: shape");
        assert_eq!(
            t.strides(),
            &usizes(&case["written_strides"])[..],
            "{file}: strides"
        );
        assert_names(&t, &strings(&case["written_dim_names"]), file);
        let values = encode_values(dtype, case["values"].as_array().unwrap());
        assert_eq!(t.to_row_major_bytes().unwrap(), values, "{file}: values");
        // Zero-copy: the data is the body inside the source buffer.
        let range = buffer.as_slice().as_ptr_range();
        let data = t.as_bytes().as_ptr_range();
        assert!(
            range.start <= data.start && data.end <= range.end,
            "{file}: tensor data is not inside the source buffer"
        );
        let body_offset = case["metadata_size"].as_u64().unwrap() as usize;
        if !t.as_bytes().is_empty() {
            assert_eq!(
                data.start,
                buffer.as_slice()[body_offset..].as_ptr(),
                "{file}: data does not start at the body"
            );
        }
        // Borrowed slices read the same, and rewriting what was read gives the file again.
        let mut slice = &bytes[..];
        let again = read_tensor(&mut slice).unwrap();
        assert!(slice.is_empty());
        assert_eq!(
            again.to_row_major_bytes().unwrap(),
            values,
            "{file}: values (slice)"
        );
        let mut rewritten = Vec::new();
        write_tensor(&t, &mut rewritten).unwrap();
        assert_eq!(rewritten, bytes, "{file}: read then written again");
    }
}

/// pyarrow error text (a substring) -> the [`Error`] variant our reader must return.
type ErrorCheck = fn(&Error) -> bool;
const PYARROW_ERRORS: &[(&str, &str, ErrorCheck)] = &[
    ("Old metadata version", "OldMetadataVersion", |e| {
        matches!(e, Error::OldMetadataVersion { .. })
    }),
    ("mismatched", "StridesLengthMismatch", |e| {
        matches!(e, Error::StridesLengthMismatch { .. })
    }),
    ("negative strides", "NegativeStride", |e| {
        matches!(e, Error::NegativeStride { .. })
    }),
    ("over run", "StridesOverrun", |e| {
        matches!(e, Error::StridesOverrun { .. })
    }),
    ("Expected to be able to read", "Truncated", |e| {
        matches!(e, Error::Truncated { .. })
    }),
    ("not valid data type", "UnsupportedType", |e| {
        matches!(e, Error::UnsupportedType { .. })
    }),
    ("Unable to read metadata", "EndOfStream", |e| {
        matches!(e, Error::EndOfStream)
    }),
    ("would not fit in 64-bit integer", "Overflow", |e| {
        matches!(e, Error::Overflow { .. })
    }),
    (
        "Shape elements must be positive",
        "NegativeDimension",
        |e| matches!(e, Error::NegativeDimension { .. }),
    ),
    ("bits not implemented", "UnsupportedBitWidth", |e| {
        matches!(e, Error::UnsupportedBitWidth { .. })
    }),
    (
        "Unsupported future MetadataVersion",
        "FutureMetadataVersion",
        |e| matches!(e, Error::FutureMetadataVersion { .. }),
    ),
    ("negative bodyLength", "NegativeBodyLength", |e| {
        matches!(e, Error::NegativeBodyLength { .. })
    }),
    // Arrow C++ verifies the header union against `header_type` first, so a Tensor table
    // announced as a RecordBatch fails verification; we may also report the header type.
    (
        "Invalid flatbuffers message",
        "InvalidFlatbuffer or UnexpectedHeader",
        |e| {
            matches!(
                e,
                Error::InvalidFlatbuffer(_) | Error::UnexpectedHeader { .. }
            )
        },
    ),
];

/// Compares our reader with pyarrow's recorded outcome for each case; returns the mismatches.
fn compare_with_pyarrow(cases: &[Value]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let bytes = data_file(file);
        let result = read_tensor(&mut BufferSource::new(aligned(&bytes)));
        if case["ok"].as_bool().unwrap() {
            let t = match result {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{file}: pyarrow reads it, we fail with: {e:?}"));
                    continue;
                }
            };
            let dtype = dtype_of(case["dtype"].as_str().unwrap());
            assert_eq!(t.dtype(), dtype, "{file}: dtype");
            assert_eq!(t.shape(), &usizes(&case["shape"])[..], "{file}: shape");
            // Our strides are unsigned: the negative stride of an empty axis of an empty
            // tensor, which addresses nothing, is kept as 0.
            let strides: Vec<usize> = case["strides"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    s.as_i64()
                        .map_or_else(|| s.as_u64().unwrap() as usize, |s| s.max(0) as usize)
                })
                .collect();
            assert_eq!(t.strides(), &strides[..], "{file}: strides");
            assert_names(&t, &strings(&case["dim_names"]), file);
            let values = encode_values(dtype, case["values"].as_array().unwrap());
            assert_eq!(t.to_row_major_bytes().unwrap(), values, "{file}: values");
        } else {
            let message = case["error"].as_str().unwrap();
            let matching: Vec<_> = PYARROW_ERRORS
                .iter()
                .filter(|(needle, _, _)| message.contains(needle))
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "{file}: pyarrow error {message:?} must map to exactly one variant in \
                 PYARROW_ERRORS"
            );
            let (_, variant, check) = matching[0];
            match result {
                Ok(t) => failures.push(format!(
                    "{file}: pyarrow rejects it ({message}), we accept it: shape {:?} strides {:?}",
                    t.shape(),
                    t.strides()
                )),
                Err(e) if !check(&e) => failures.push(format!(
                    "{file}: expected Error::{variant} (pyarrow: {message}), got {e:?}"
                )),
                Err(_) => {}
            }
        }
    }
    failures
}

#[test]
fn reader_cases_match_pyarrow() {
    let cases = manifest()["reader_cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 18, "expected the 18 dense reader cases");
    let failures = compare_with_pyarrow(&cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The reader edge cases crafted by the generator (`tests/data/reader_edge`).
fn edge_cases() -> Vec<Value> {
    manifest()["reader_edge_cases"].as_array().unwrap().clone()
}

#[test]
fn reader_edge_cases_match_pyarrow() {
    let cases = edge_cases();
    assert!(
        cases.len() >= 23,
        "expected the reader edge cases, found {}",
        cases.len()
    );
    let failures = compare_with_pyarrow(&cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_files_are_the_recorded_ones() {
    // Guard against a silently edited vector: every file is listed with its size.
    let m = manifest();
    for case in m["dense"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        assert_eq!(
            data_file(file).len() as u64,
            case["total_size"].as_u64().unwrap(),
            "{file}"
        );
    }
    for dir in ["dense", "reader_cases", "reader_edge", "sparse"] {
        let listed: usize = match dir {
            "dense" => m["dense"].as_array().unwrap().len(),
            "reader_edge" => m["reader_edge_cases"].as_array().unwrap().len(),
            "reader_cases" => {
                m["reader_cases"].as_array().unwrap().len()
                    + m["sparse_reader_cases"].as_array().unwrap().len()
            }
            _ => m["sparse"].as_array().unwrap().len(),
        };
        // Vector files only (other files, e.g. a sparse manifest, may sit beside them).
        let on_disk = std::fs::read_dir(data_dir().join(dir))
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.ends_with(".arrow_tensor") || name.ends_with(".arrow_sparse_tensor")
            })
            .count();
        assert_eq!(on_disk, listed, "{dir}: files on disk vs manifest");
    }
}

/// Three tensors back to back: the second starts at byte 195 (after a 3-element int8
/// message), so its f64 body is misaligned; the third is int32 behind it.
fn back_to_back() -> (Vec<u8>, [usize; 3]) {
    let a = Tensor::from_vec(vec![-1i8, 0, 1], vec![3]).unwrap();
    let b = Tensor::from_vec(vec![0.5f64, -2.25, 3.0, 1e300], vec![2, 2])
        .unwrap()
        .with_dim_names(["r", "c"])
        .unwrap();
    let c = Tensor::from_vec((0..12).collect::<Vec<i32>>(), vec![3, 4])
        .unwrap()
        .into_column_major()
        .unwrap();
    let mut sink = MemorySink::new();
    let sizes = [
        write_tensor(&a, &mut sink).unwrap(),
        write_tensor(&b, &mut sink).unwrap(),
        write_tensor(&c, &mut sink).unwrap(),
    ];
    assert_eq!(sizes[0], 195);
    (sink.as_bytes().to_vec(), sizes)
}

#[test]
fn back_to_back_messages_read_in_order_until_end_of_stream() {
    let (bytes, sizes) = back_to_back();
    let buffer = aligned(&bytes);
    let mut source = BufferSource::new(buffer.clone());
    let a = source.read_tensor().unwrap();
    assert_eq!(source.position(), 195);
    assert_eq!(a.to_vec::<i8>().unwrap(), [-1, 0, 1]);
    let b = source.read_tensor().unwrap();
    assert_eq!(source.position(), sizes[0] + sizes[1]);
    assert_eq!(b.shape(), &[2, 2]);
    assert_eq!(b.dim_names(), &["r", "c"]);
    assert_eq!(b.to_vec::<f64>().unwrap(), [0.5, -2.25, 3.0, 1e300]);
    // Its body sits at 195 + 256 = 451 in a 64-aligned buffer: misaligned for f64, so the
    // default reader copied it into aligned memory and typed slices work.
    assert_eq!(b.as_bytes().as_ptr() as usize % 8, 0);
    assert_eq!(b.values::<f64>().unwrap(), &[0.5, -2.25, 3.0, 1e300]);
    let c = source.read_tensor().unwrap();
    assert!(c.is_column_major());
    assert_eq!(c.strides(), &[4, 12]);
    assert_eq!(c.get::<i32>(&[2, 3]).unwrap(), 11);
    assert_eq!(c.to_vec::<i32>().unwrap()[..4], [0, 3, 6, 9]);
    assert_eq!(source.remaining(), 0);
    assert!(matches!(source.read_tensor(), Err(Error::EndOfStream)));

    // The iterator yields the same three and stops.
    let all: Vec<_> = BufferSource::new(buffer.clone())
        .tensors(ReadOptions::new())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].to_vec::<f64>().unwrap(), [0.5, -2.25, 3.0, 1e300]);

    // An explicit end-of-stream marker ends the stream the same way, and a slice source reads
    // the same messages.
    let mut with_eos = bytes.clone();
    with_eos.extend([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    let mut slice = &with_eos[..];
    for expected in [3usize, 4, 12] {
        assert_eq!(read_tensor(&mut slice).unwrap().len(), expected);
    }
    assert!(matches!(read_tensor(&mut slice), Err(Error::EndOfStream)));
}

#[test]
fn strict_mode_refuses_misaligned_bodies() {
    let (bytes, sizes) = back_to_back();
    let buffer = aligned(&bytes);
    let strict = ReadOptions::new().with_require_alignment(true);
    let mut source = BufferSource::new(buffer.clone());
    // int8 needs no alignment.
    let a = read_tensor_with(&mut source, &strict).unwrap();
    assert_eq!(a.to_vec::<i8>().unwrap(), [-1, 0, 1]);
    // The f64 body is the last 32 bytes of the second message.
    let body = sizes[0] + sizes[1] - 32;
    assert_eq!(body % 8, 3);
    match read_tensor_with(&mut source, &strict) {
        Err(Error::Misaligned {
            alignment,
            misalignment,
        }) => {
            assert_eq!(alignment, 8);
            assert_eq!(misalignment, 3);
        }
        other => panic!("expected Error::Misaligned, got {other:?}"),
    }
    // The default mode copies that same body instead.
    let mut source = BufferSource::new(buffer.slice(sizes[0]));
    let b = read_tensor(&mut source).unwrap();
    assert_eq!(b.to_vec::<f64>().unwrap(), [0.5, -2.25, 3.0, 1e300]);
    let range = buffer.as_slice().as_ptr_range();
    assert!(
        !range.contains(&b.as_bytes().as_ptr()),
        "a misaligned body must be copied, not borrowed"
    );
    // An aligned message in strict mode is zero-copy.
    let aligned_msg = aligned(&bytes[sizes[0]..sizes[0] + sizes[1]]);
    let b = read_tensor_with(&mut BufferSource::new(aligned_msg.clone()), &strict).unwrap();
    assert_eq!(
        b.as_bytes().as_ptr(),
        aligned_msg.as_slice()[sizes[1] - 32..].as_ptr()
    );
}

#[test]
fn sparse_vectors_are_not_dense_tensors() {
    // Until the sparse reader exists, a sparse message read as a dense tensor is a clear
    // UnexpectedHeader error, never a panic or a bogus tensor.
    let m = manifest();
    for case in m["sparse"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let bytes = data_file(file);
        match read_tensor(&mut BufferSource::new(aligned(&bytes))) {
            Err(Error::UnexpectedHeader { found, .. }) => assert_eq!(found, "SparseTensor"),
            other => panic!("{file}: expected UnexpectedHeader, got {other:?}"),
        }
    }
}
