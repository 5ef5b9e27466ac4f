//! The `tensor-ipc` binary: `inspect` lines for the golden vectors, `.npy` <-> tensor round
//! trips, strided tensors, hostile input (one error line, non-zero exit, no panic), and, with a
//! Python with pyarrow >= 26 and numpy >= 2 (see `tests/support/peers.rs`), a byte-for-byte
//! cross-check of `convert` against `pa.ipc.write_tensor(pa.Tensor.from_numpy(np.load(..)))`
//! and `np.save` (`tests/python/npy_check.py`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tensor_ipc::{DType, Tensor, read_tensor, write_tensor};
use tensor_ipc_cli::npy;

use crate::common::data_dir;

fn cli<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_tensor-ipc"))
        .args(args)
        .output()
        .expect("the tensor-ipc binary runs")
}

/// Runs the CLI, expects success and an empty stderr, returns stdout.
fn ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the CLI, expects failure with exactly one stderr line `tensor-ipc: error: ...` and no
/// panic, returns that line.
fn fails<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "unexpectedly succeeded: {stderr}");
    assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
    assert!(out.status.code().is_some(), "killed by a signal: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.ends_with('\n'));
    assert!(
        stderr.starts_with("tensor-ipc: error: "),
        "bad prefix: {stderr}"
    );
    stderr.trim_end().to_owned()
}

fn dense(name: &str) -> PathBuf {
    data_dir()
        .join("dense")
        .join(format!("{name}.arrow_tensor"))
}

/// Every `tests/data/dense/*.arrow_tensor`, sorted.
fn dense_vectors() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join("dense"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "arrow_tensor"))
        .collect();
    paths.sort();
    paths
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn inspect_lines_of_golden_vectors() {
    let cases = [
        (
            "int32_2x3_c_named",
            r#"0: offset=0 kind=tensor dtype=int32 shape=[2,3] strides=[12,4] dim_names=["row","col"] layout=row-major body_offset=256 body_len=24 body_aligned64=yes framing=continuation version=V5"#,
        ),
        (
            "float64_2x3x4_f_named",
            r#"0: offset=0 kind=tensor dtype=float64 shape=[2,3,4] strides=[8,16,48] dim_names=["a","b","c"] layout=column-major body_offset=256 body_len=192 body_aligned64=yes framing=continuation version=V5"#,
        ),
        (
            "float64_0d",
            "0: offset=0 kind=tensor dtype=float64 shape=[] strides=absent:[] dim_names=- layout=row-major body_offset=128 body_len=8 body_aligned64=yes framing=continuation version=V5",
        ),
        (
            "int32_0x3_c",
            "0: offset=0 kind=tensor dtype=int32 shape=[0,3] strides=[4,4] dim_names=- layout=row-major body_offset=256 body_len=0 body_aligned64=yes framing=continuation version=V5",
        ),
        (
            "int64_4x6_transpose",
            "0: offset=0 kind=tensor dtype=int64 shape=[6,4] strides=[8,48] dim_names=- layout=column-major body_offset=256 body_len=192 body_aligned64=yes framing=continuation version=V5",
        ),
        (
            "uint64_named_unicode",
            r#"0: offset=0 kind=tensor dtype=uint64 shape=[2,2] strides=[16,8] dim_names=["höhe",""] layout=row-major body_offset=256 body_len=32 body_aligned64=yes framing=continuation version=V5"#,
        ),
        (
            "float16_2x3_c",
            "0: offset=0 kind=tensor dtype=float16 shape=[2,3] strides=[6,2] dim_names=- layout=row-major body_offset=256 body_len=12 body_aligned64=yes framing=continuation version=V5",
        ),
    ];
    for (name, line) in cases {
        assert_eq!(
            ok([OsStr::new("inspect"), dense(name).as_os_str()]),
            format!("{line}\n")
        );
    }
    // Every golden vector inspects to one line.
    for path in dense_vectors() {
        let out = ok([OsStr::new("inspect"), path.as_os_str()]);
        assert_eq!(out.lines().count(), 1, "{}", path.display());
        assert!(out.starts_with("0: offset=0 kind=tensor "), "{out}");
    }
}

#[test]
fn inspect_legacy_sparse_and_streams() {
    let rc = data_dir().join("reader_cases");
    assert_eq!(
        ok(["inspect", s(&rc.join("legacy_pre015_align8.arrow_tensor"))]),
        "0: offset=0 kind=tensor dtype=int32 shape=[2,3] strides=[12,4] dim_names=[\"row\",\"col\"] layout=row-major body_offset=232 body_len=24 body_aligned64=no framing=legacy version=V5\n"
    );
    assert_eq!(
        ok(["inspect", s(&rc.join("version_V4.arrow_tensor"))])
            .trim_end()
            .rsplit(' ')
            .next(),
        Some("version=V4")
    );
    assert_eq!(
        ok(["inspect", s(&rc.join("eos_only.arrow_tensor"))]),
        "0: offset=0 kind=end-of-stream framing=continuation\n"
    );
    let sparse = data_dir().join("sparse/csr_f64_6x4_idx_i64_named.arrow_sparse_tensor");
    assert_eq!(
        ok([OsStr::new("inspect"), sparse.as_os_str()]),
        "0: offset=0 kind=sparse-tensor format=csr dtype=float64 shape=[6,4] dim_names=[\"row\",\"col\"] nnz=9 index_type=int64 body_offset=296 body_len=200 body_aligned64=no framing=continuation version=V5\n"
    );
    let sparse = data_dir().join("sparse/csf_i16_2x3x4x5_idx_i32.arrow_sparse_tensor");
    let line = ok([OsStr::new("inspect"), sparse.as_os_str()]);
    assert!(
        line.starts_with("0: offset=0 kind=sparse-tensor format=csf dtype=int16 shape=[2,3,4,5] dim_names=- nnz=8 index_type=int32 "),
        "{line}"
    );

    // Two tensors and an end-of-stream marker back to back: the second body is not 64-byte
    // aligned in the file.
    let dir = tempfile::tempdir().unwrap();
    let mut stream = std::fs::read(dense("int8_2x3_c")).unwrap();
    assert_eq!(stream.len(), 262);
    stream.extend(std::fs::read(dense("int32_2x3_c")).unwrap());
    stream.extend([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    let path = dir.path().join("stream.arrow_tensor");
    std::fs::write(&path, &stream).unwrap();
    let out = ok(["inspect", s(&path)]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("0: offset=0 kind=tensor dtype=int8 "));
    assert_eq!(
        lines[1],
        "1: offset=262 kind=tensor dtype=int32 shape=[2,3] strides=[12,4] dim_names=- layout=row-major body_offset=518 body_len=24 body_aligned64=no framing=continuation version=V5"
    );
    assert_eq!(
        lines[2],
        "2: offset=542 kind=end-of-stream framing=continuation"
    );

    // A damaged second message: the first line is printed, then one error line.
    let mut damaged = std::fs::read(dense("int8_2x3_c")).unwrap();
    damaged.extend([0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 1, 2, 3]);
    let path = dir.path().join("damaged.arrow_tensor");
    std::fs::write(&path, &damaged).unwrap();
    let out = cli(["inspect", s(&path)]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.contains("message 1 at byte offset 262: truncated"),
        "{err}"
    );
}

/// A tensor message with arbitrary strides: a row-major int32 message of `shape` whose strides
/// vector is rewritten to `strides` (which the caller keeps in bounds).
fn strided_message(shape: &[usize], strides: &[i64]) -> Vec<u8> {
    let n: usize = shape.iter().product();
    let values: Vec<i32> = (0..n as i32).map(|v| v.wrapping_mul(7919)).collect();
    let tensor = Tensor::from_vec(values, shape.to_vec()).unwrap();
    let mut message = Vec::new();
    write_tensor(&tensor, &mut message).unwrap();
    let mut pattern = (shape.len() as u32).to_le_bytes().to_vec();
    for &stride in tensor.strides() {
        pattern.extend((stride as i64).to_le_bytes());
    }
    let at = message
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("the strides vector")
        + 4;
    for (i, stride) in strides.iter().enumerate() {
        message[at + 8 * i..at + 8 * i + 8].copy_from_slice(&stride.to_le_bytes());
    }
    message
}

#[test]
fn strided_tensors_are_gathered() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[usize], &[i64]); 3] = [
        // Overlapping rows.
        (&[3, 5], &[4, 8]),
        // 3 x 1.5M (18 MB): the gather splits the inner axis into bounded chunks.
        (&[3, 1_500_000], &[4, 8]),
        // 4 x 700k x 3 (34 MB), axes permuted: chunks of the middle axis, an outer odometer.
        (&[4, 700_000, 3], &[4, 16, 11_199_996]),
    ];
    for (i, (shape, strides)) in cases.into_iter().enumerate() {
        let message = strided_message(shape, strides);
        let tensor = read_tensor(&mut message.as_slice()).unwrap();
        let want: Vec<usize> = strides.iter().map(|&s| s as usize).collect();
        assert_eq!(tensor.strides(), want);
        assert!(!tensor.is_contiguous());
        let input = dir.path().join(format!("strided_{i}.arrow_tensor"));
        std::fs::write(&input, &message).unwrap();
        let line = ok(["inspect", s(&input)]);
        let list = |v: &[usize]| {
            let parts: Vec<String> = v.iter().map(usize::to_string).collect();
            format!("[{}]", parts.join(","))
        };
        assert!(
            line.contains(&format!(
                "shape={} strides={} dim_names=- layout=strided",
                list(shape),
                list(&want)
            )),
            "{line}"
        );
        let output = dir.path().join(format!("strided_{i}.npy"));
        ok(["convert", s(&input), s(&output)]);
        let file = std::fs::read(&output).unwrap();
        let header = npy::parse_header(&file).unwrap();
        assert_eq!(header.dtype, DType::Int32);
        assert_eq!(header.shape, shape);
        assert!(!header.fortran_order);
        assert!(
            file[header.data_offset..] == tensor.to_row_major_bytes().unwrap(),
            "values of case {i}"
        );
    }
}

/// The `.npy` a tensor should become: its elements in C order, or in F order when NumPy would
/// call it F- but not C-contiguous.
fn check_npy_matches(npy_bytes: &[u8], tensor: &Tensor<'_>) {
    let header = npy::parse_header(npy_bytes).unwrap();
    assert_eq!(header.dtype, tensor.dtype());
    assert!(!header.is_bool);
    assert_eq!(header.shape, tensor.shape());
    assert_eq!(header.version, (1, 0));
    assert_eq!(header.data_offset % 64, 0);
    let data = &npy_bytes[header.data_offset..];
    let fortran = tensor.is_column_major() && !tensor.is_row_major() && tensor.ndim() > 1;
    assert_eq!(header.fortran_order, fortran, "{:?}", tensor.strides());
    if fortran {
        assert_eq!(data, &tensor.as_bytes()[..tensor.dense_byte_len()]);
    } else {
        assert_eq!(data, tensor.to_row_major_bytes().unwrap());
    }
    assert_eq!(
        &npy_bytes[..header.data_offset],
        npy::format_header(tensor.dtype(), tensor.shape(), fortran).unwrap()
    );
}

#[test]
fn every_golden_vector_round_trips_through_npy() {
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for path in dense_vectors() {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let original = std::fs::read(&path).unwrap();
        let tensor = read_tensor(&mut original.as_slice()).unwrap();

        let npy_path = dir.path().join(format!("{name}.npy"));
        ok(["convert", s(&path), s(&npy_path)]);
        check_npy_matches(&std::fs::read(&npy_path).unwrap(), &tensor);

        let back_path = dir.path().join(format!("{name}.back.arrow_tensor"));
        ok(["convert", s(&npy_path), s(&back_path)]);
        let back = std::fs::read(&back_path).unwrap();
        if tensor.dim_names().is_empty() {
            // Files pyarrow wrote are row- or column-major: the .npy carries all of it.
            assert_eq!(back, original, "{name}");
        } else {
            // .npy has no dimension names; everything else survives.
            let t = read_tensor(&mut back.as_slice()).unwrap();
            assert_eq!(t.dtype(), tensor.dtype());
            assert_eq!(t.shape(), tensor.shape());
            assert_eq!(t.strides(), tensor.strides());
            assert!(t.dim_names().is_empty());
            assert_eq!(
                t.to_row_major_bytes().unwrap(),
                tensor.to_row_major_bytes().unwrap()
            );
        }
        count += 1;
    }
    assert_eq!(count, 31);
}

/// A `.npy` file: `format_header`'s header with `dict` swapped in (when given), then `data`.
fn npy_file(dtype: DType, shape: &[usize], fortran: bool, data: &[u8]) -> Vec<u8> {
    let mut file = npy::format_header(dtype, shape, fortran).unwrap();
    file.extend_from_slice(data);
    file
}

/// A version 1.0 `.npy` with a hand-written dict.
fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut file = b"\x93NUMPY\x01\x00".to_vec();
    let text = format!("{dict}\n");
    file.extend((text.len() as u16).to_le_bytes());
    file.extend(text.as_bytes());
    file.extend(data);
    file
}

#[test]
fn npy_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);

    // Fortran-order .npy becomes a column-major tensor; the values are the file's.
    // arange(12).reshape(3, 4) in Fortran (memory) order.
    let data: Vec<u8> = [0i32, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
        .into_iter()
        .flat_map(i32::to_le_bytes)
        .collect();
    std::fs::write(p("f.npy"), npy_file(DType::Int32, &[3, 4], true, &data)).unwrap();
    ok(["convert", s(&p("f.npy")), s(&p("f.arrow_tensor"))]);
    assert_eq!(
        std::fs::read(p("f.arrow_tensor")).unwrap(),
        std::fs::read(dense("int32_3x4_f")).unwrap(),
        "the golden int32_3x4_f holds arange(12) in F order"
    );
    let line = ok(["inspect", s(&p("f.arrow_tensor"))]);
    assert!(
        line.contains("strides=[4,12] dim_names=- layout=column-major"),
        "{line}"
    );

    // bool becomes uint8, as pyarrow maps it, raw bytes kept.
    std::fs::write(
        p("b.npy"),
        raw_npy(
            "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }",
            &[1, 0, 0, 1],
        ),
    )
    .unwrap();
    ok(["convert", s(&p("b.npy")), s(&p("b.arrow_tensor"))]);
    let bytes = std::fs::read(p("b.arrow_tensor")).unwrap();
    let t = read_tensor(&mut bytes.as_slice()).unwrap();
    assert_eq!(t.dtype(), DType::UInt8);
    assert_eq!(t.to_vec::<u8>().unwrap(), [1, 0, 0, 1]);

    // Version 2.0 and 3.0 headers.
    for major in [2u8, 3] {
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        let mut file = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, 0];
        file.extend((dict.len() as u32).to_le_bytes());
        file.extend(dict.as_bytes());
        file.extend(1.5f64.to_le_bytes());
        file.extend((-2.0f64).to_le_bytes());
        let name = format!("v{major}.npy");
        std::fs::write(p(&name), file).unwrap();
        ok(["convert", s(&p(&name)), s(&p("v.arrow_tensor"))]);
        let bytes = std::fs::read(p("v.arrow_tensor")).unwrap();
        let t = read_tensor(&mut bytes.as_slice()).unwrap();
        assert_eq!(t.to_vec::<f64>().unwrap(), [1.5, -2.0]);
    }

    // 0-d and empty arrays.
    std::fs::write(
        p("zero_d.npy"),
        npy_file(DType::Float64, &[], false, &(-1.5f64).to_le_bytes()),
    )
    .unwrap();
    ok(["convert", s(&p("zero_d.npy")), s(&p("zero_d.arrow_tensor"))]);
    assert_eq!(
        std::fs::read(p("zero_d.arrow_tensor")).unwrap(),
        std::fs::read(dense("float64_0d")).unwrap()
    );
    let line = ok(["inspect", s(&p("zero_d.arrow_tensor"))]);
    assert!(line.contains("dtype=float64 shape=[] "), "{line}");
    std::fs::write(p("empty.npy"), npy_file(DType::Int32, &[0, 3], false, &[])).unwrap();
    ok(["convert", s(&p("empty.npy")), s(&p("empty.arrow_tensor"))]);
    assert_eq!(
        std::fs::read(p("empty.arrow_tensor")).unwrap(),
        std::fs::read(dense("int32_0x3_c")).unwrap()
    );
}

#[test]
fn several_messages_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut stream = std::fs::read(dense("int8_2x3_c")).unwrap();
    stream.extend(std::fs::read(dense("float64_2x3x4_f_named")).unwrap());
    let input = dir.path().join("two.arrow_tensor");
    std::fs::write(&input, &stream).unwrap();

    // Without --index: the first, with a note on stderr.
    let out_path = dir.path().join("first.npy");
    let out = cli(["convert", s(&input), s(&out_path)]);
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.starts_with("tensor-ipc: note: ") && note.contains("more than one message"),
        "{note}"
    );
    let header = npy::parse_header(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(
        (header.dtype, header.shape.as_slice()),
        (DType::Int8, &[2, 3][..])
    );

    // --index 1: the second (column-major), no note.
    let out_path = dir.path().join("second.npy");
    ok(["convert", s(&input), s(&out_path), "--index", "1"]);
    let file = std::fs::read(&out_path).unwrap();
    let second = read_tensor(&mut &stream[262..]).unwrap();
    check_npy_matches(&file, &second);
    assert!(npy::parse_header(&file).unwrap().fortran_order);

    let err = fails([
        "convert",
        s(&input),
        s(&dir.path().join("third.npy")),
        "--index",
        "2",
    ]);
    assert!(err.contains("no message 2"), "{err}");
    assert!(!dir.path().join("third.npy").exists());
}

#[test]
fn bad_input_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let write = |name: &str, bytes: &[u8]| std::fs::write(p(name), bytes).unwrap();
    let good = std::fs::read(dense("int32_2x3_c")).unwrap();
    let good_npy = npy_file(DType::Int16, &[2, 2], false, &[0; 8]);

    write("empty.arrow_tensor", b"");
    write("empty.npy", b"");
    write("truncated.arrow_tensor", &good[..good.len() - 1]);
    write("truncated_meta.arrow_tensor", &good[..100]);
    write("short.arrow_tensor", &[0xff, 0xff]);
    write(
        "garbage.arrow_tensor",
        b"this is not an arrow tensor file at all",
    );
    write(
        "absurd_meta.arrow_tensor",
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0],
    );
    write(
        "negative_meta.arrow_tensor",
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80],
    );
    let mut absurd_body = good.clone();
    absurd_body.truncate(256);
    write("absurd_body.arrow_tensor", &absurd_body);
    write("garbage.npy", b"\x93NUMPY\x01\x00\x05\x00{'a'\n");
    write("not_npy.npy", &good);
    write("truncated.npy", &good_npy[..good_npy.len() - 1]);
    let mut trailing = good_npy.clone();
    trailing.push(0);
    write("trailing.npy", &trailing);
    write(
        "big_endian.npy",
        &raw_npy(
            "{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }",
            &[0, 0, 0, 1],
        ),
    );
    write(
        "complex.npy",
        &raw_npy(
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        ),
    );
    write(
        "absurd_shape.npy",
        &raw_npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
            &[],
        ),
    );
    write(
        "huge_header_len.npy",
        b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'",
    );
    write("good.npy", &good_npy);
    write("good.arrow_tensor", &good);
    write(
        "sparse.arrow_tensor",
        &std::fs::read(data_dir().join("sparse/coo_u8_6x4_idx_i8.arrow_sparse_tensor")).unwrap(),
    );
    std::fs::create_dir(p("dir.npy")).unwrap();
    let missing = p("missing.arrow_tensor");
    let out = p("out.npy");
    let out_t = p("out.arrow_tensor");

    let cases: Vec<(Vec<PathBuf>, &str)> = vec![
        (vec![p("empty.arrow_tensor")], "empty file"),
        (vec![p("truncated.arrow_tensor")], "truncated message body"),
        (
            vec![p("truncated_meta.arrow_tensor")],
            "truncated message metadata",
        ),
        (vec![p("short.arrow_tensor")], "truncated message prefix"),
        (
            vec![p("garbage.arrow_tensor")],
            "message 0 at byte offset 0",
        ),
        (vec![p("absurd_meta.arrow_tensor")], "exceeds the limit"),
        (
            vec![p("negative_meta.arrow_tensor")],
            "negative metadata length",
        ),
        (
            vec![p("absurd_body.arrow_tensor")],
            "truncated message body",
        ),
        (vec![p("good.npy")], "NumPy .npy file"),
        (vec![missing.clone()], "cannot open"),
        (vec![p("dir.npy")], "not a regular file"),
    ];
    for (args, what) in &cases {
        let mut argv = vec![PathBuf::from("inspect")];
        argv.extend(args.iter().cloned());
        let err = fails(&argv);
        assert!(err.contains(what), "inspect {args:?}: {err}");
    }

    let convert_cases: Vec<(PathBuf, PathBuf, &str)> = vec![
        (p("empty.arrow_tensor"), out.clone(), "empty file"),
        (
            p("truncated.arrow_tensor"),
            out.clone(),
            "truncated message body",
        ),
        (p("garbage.arrow_tensor"), out.clone(), "message 0"),
        (
            p("absurd_meta.arrow_tensor"),
            out.clone(),
            "exceeds the limit",
        ),
        (missing.clone(), out.clone(), "cannot open"),
        (p("empty.npy"), out_t.clone(), "empty input"),
        (p("garbage.npy"), out_t.clone(), "header dict"),
        (p("not_npy.npy"), out_t.clone(), "magic"),
        (p("truncated.npy"), out_t.clone(), "truncated data"),
        (p("trailing.npy"), out_t.clone(), "unexpected bytes after"),
        (p("big_endian.npy"), out_t.clone(), "big-endian"),
        (p("complex.npy"), out_t.clone(), "unsupported dtype"),
        (p("absurd_shape.npy"), out_t.clone(), "too large"),
        (p("huge_header_len.npy"), out_t.clone(), "truncated header"),
        (p("dir.npy"), out_t.clone(), "not a regular file"),
        (
            p("good.npy"),
            p("no_such_dir/out.arrow_tensor"),
            "cannot create",
        ),
        (p("good.npy"), p("other.npy"), "both"),
        (p("good.arrow_tensor"), p("other.arrow_tensor"), "neither"),
    ];
    for (input, output, what) in &convert_cases {
        let err = fails([OsStr::new("convert"), input.as_os_str(), output.as_os_str()]);
        assert!(err.contains(what), "convert {input:?} {output:?}: {err}");
        assert!(!output.exists(), "{output:?} left behind");
    }
    // Nothing but the files written above: no temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Usage errors are one line too.
    for args in [
        &[][..],
        &["frobnicate"],
        &["inspect"],
        &["convert", "a.npy"],
        &["inspect", "a", "b"],
        &["convert", "a.npy", "b.t", "--index", "x"],
        &["convert", "a.npy", "b.t", "--index", "1"],
    ] {
        fails(args);
    }
}

#[test]
fn help_and_version() {
    let version = ok(["--version"]);
    assert_eq!(
        version,
        format!("tensor-ipc {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = ok(["--help"]);
    assert!(
        help.contains("inspect") && help.contains("convert"),
        "{help}"
    );
    let help = ok(["inspect", "--help"]);
    assert!(help.contains("64-byte aligned"), "{help}");
    let help = ok(["convert", "--help"]);
    assert!(
        help.contains("--index") && help.contains("Big-endian"),
        "{help}"
    );
    let help = ok(["help", "convert"]);
    assert!(help.contains("Usage: tensor-ipc convert"), "{help}");
}

/// Byte-for-byte agreement with pyarrow and NumPy, when a Python with both is available.
#[test]
fn npy_conversions_match_pyarrow() {
    let Some(python) = crate::peers::current_pyarrow() else {
        crate::peers::skipped(
            "the pyarrow cross-check of the CLI's .npy conversions",
            "no Python with pyarrow >= 26 (set TENSOR_IPC_PYTHON or run .ci/setup-python.sh)",
        );
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/npy_check.py");
    let dir = tempfile::tempdir().unwrap();
    let python_run = |mode: &str| {
        let out = Command::new(&python)
            .arg(&script)
            .arg(mode)
            .arg(dir.path())
            .output()
            .expect("the pyarrow Python runs");
        assert!(
            out.status.success(),
            "npy_check.py {mode} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    python_run("gen");
    let cases = std::fs::read_to_string(dir.path().join("cases.txt")).unwrap();
    let mut count = 0;
    for name in cases.lines().filter(|l| !l.is_empty()) {
        let f = |suffix: &str| dir.path().join(format!("{name}{suffix}"));
        ok(["convert", s(&f(".npy")), s(&f(".rust.arrow_tensor"))]);
        let ours = std::fs::read(f(".rust.arrow_tensor")).unwrap();
        let theirs = std::fs::read(f(".expected.arrow_tensor")).unwrap();
        assert!(
            ours == theirs,
            "{name}: bytes differ from pa.ipc.write_tensor"
        );
        ok(["convert", s(&f(".rust.arrow_tensor")), s(&f(".back.npy"))]);
        count += 1;
    }
    assert!(count >= 60, "only {count} cases");
    python_run("check");
}
