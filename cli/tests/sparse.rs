//! `tensor-ipc convert` to and from sparse messages: every format byte-identical with the
//! library's conversion (and so with Arrow C++), every golden sparse file back to `.npy`.

use tensor_ipc::{
    DType, SparseFormat, SparseTensor, Tensor, TensorData, write_sparse_tensor, write_tensor,
};
use tensor_ipc_cli::npy;

use crate::common::data_dir;
use crate::sparse_golden::*;

fn cli(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tensor-ipc"))
        .args(args)
        .output()
        .expect("tensor-ipc runs")
}

fn write_npy(path: &std::path::Path, tensor: &Tensor<'_>, fortran: bool) {
    let mut bytes = npy::format_header(tensor.dtype(), tensor.shape(), fortran).unwrap();
    bytes.extend_from_slice(&tensor.as_bytes()[..tensor.dense_byte_len()]);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cli_converts_npy_to_sparse_and_sparse_to_npy() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);

    // The all-zero 3x4 float32 golden files are what `--to coo` / `--to csr` must write.
    let zeros = Tensor::from_vec(vec![0f32; 12], vec![3, 4]).unwrap();
    write_npy(&p("zeros.npy"), &zeros, false);
    for (format, golden) in [
        ("coo", "coo_f32_3x4_allzero_idx_i64"),
        ("csr", "csr_f32_3x4_allzero_idx_i64"),
    ] {
        let out = p(&format!("zeros.{format}"));
        let run = cli(&[
            "convert".as_ref(),
            "--to".as_ref(),
            format.as_ref(),
            p("zeros.npy").as_os_str(),
            out.as_os_str(),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            std::fs::read(&out).unwrap() == golden_bytes(&entry_named(golden)),
            "{format}"
        );
    }

    // The 6x4 example in C and Fortran order: every format equals the library's conversion
    // (byte-identical with Arrow C++, see above); `--to dense` equals `write_tensor`.
    let entry = entry_named("csr_i32_6x4_idx_i32");
    let dense = tensor_of(DType::Int32, vec![6, 4], &f64s(&entry["dense_values"]));
    write_npy(&p("m.npy"), &dense, false);
    let transposed: Vec<i32> = (0..4)
        .flat_map(|j| (0..6).map(move |i| (i, j)))
        .map(|(i, j)| dense.get::<i32>(&[i, j]).unwrap())
        .collect();
    let f_order = Tensor::from_vec(transposed, vec![6, 4])
        .unwrap()
        .into_column_major()
        .unwrap();
    write_npy(&p("f.npy"), &f_order, true);
    for format in SparseFormat::ALL {
        let mut want = Vec::new();
        write_sparse_tensor(
            &SparseTensor::from_dense(&dense, format).unwrap(),
            &mut want,
        )
        .unwrap();
        for npy in ["m.npy", "f.npy"] {
            let out = p(&format!("{npy}.{format}"));
            let run = cli(&[
                "convert".as_ref(),
                p(npy).as_os_str(),
                out.as_os_str(),
                "--to".as_ref(),
                format.name().as_ref(),
            ]);
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert!(std::fs::read(&out).unwrap() == want, "{npy} --to {format}");
        }
    }
    let mut want = Vec::new();
    write_tensor(&dense, &mut want).unwrap();
    let run = cli(&[
        "convert".as_ref(),
        "--to".as_ref(),
        "dense".as_ref(),
        p("m.npy").as_os_str(),
        p("m.dense").as_os_str(),
    ]);
    assert!(run.status.success());
    assert_eq!(std::fs::read(p("m.dense")).unwrap(), want);

    // Every golden sparse file converts to a .npy of its dense values.
    for entry in entries() {
        let input = data_dir()
            .join("sparse")
            .join(entry["file"].as_str().unwrap());
        let out = p("back.npy");
        let run = cli(&["convert".as_ref(), input.as_os_str(), out.as_os_str()]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let bytes = std::fs::read(&out).unwrap();
        let header = npy::parse_header(&bytes).unwrap();
        assert_eq!(header.shape, usizes(&entry["shape"]));
        assert!(!header.fortran_order);
        let back = Tensor::new(
            header.dtype,
            TensorData::Borrowed(&bytes[header.data_offset..]),
            header.shape.clone(),
        )
        .unwrap();
        assert_eq!(
            dense_f64(&back),
            f64s(&entry["dense_values"]),
            "{}",
            entry["name"]
        );
    }

    // Misuse is one error line.
    let run = cli(&[
        "convert".as_ref(),
        "--to".as_ref(),
        "csr".as_ref(),
        p("zeros.coo").as_os_str(),
        p("x.npy").as_os_str(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--to applies to a .npy input"));
    let cube = Tensor::from_vec(vec![1u8; 8], vec![2, 2, 2]).unwrap();
    write_npy(&p("cube.npy"), &cube, false);
    let run = cli(&[
        "convert".as_ref(),
        "--to".as_ref(),
        "csr".as_ref(),
        p("cube.npy").as_os_str(),
        p("cube.csr").as_os_str(),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("two dimensions"));
}

/// `--max-output-bytes` (default 64 GiB): a tiny `.npy` asking for a huge CSR/CSC indptr,
/// or a tiny sparse message asking for a huge `.npy`, is refused with one line naming the
/// flag, before anything is written; raising the bound lets the conversion through.
#[test]
fn the_output_bound_refuses_huge_outputs_of_tiny_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let empty = |shape: Vec<usize>| Tensor::from_vec(Vec::<f64>::new(), shape).unwrap();
    for (shape, to) in [(vec![0, 1 << 36], "csc"), (vec![1 << 36, 0], "csr")] {
        write_npy(&p("wide.npy"), &empty(shape.clone()), false);
        let out = cli(&[
            "convert".as_ref(),
            p("wide.npy").as_os_str(),
            p("out.arrow_tensor").as_os_str(),
            "--to".as_ref(),
            to.as_ref(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{shape:?} {to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("549755813896 bytes, more than the limit of 68719476736 bytes")
                && stderr.contains("--max-output-bytes"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{stderr}"
        );
    }
    // 2^20 empty rows: 8 MiB of indptr, refused under 1M, made under 9M.
    write_npy(&p("rows.npy"), &empty(vec![1 << 20, 0]), false);
    let convert = |limit: &str| {
        cli(&[
            "convert".as_ref(),
            p("rows.npy").as_os_str(),
            p("rows.arrow_tensor").as_os_str(),
            "--to".as_ref(),
            "csr".as_ref(),
            "--max-output-bytes".as_ref(),
            limit.as_ref(),
        ])
    };
    assert_eq!(convert("1M").status.code(), Some(1));
    assert!(!p("rows.arrow_tensor").exists());
    assert_eq!(convert("9M").status.code(), Some(0));
    assert!(std::fs::metadata(p("rows.arrow_tensor")).unwrap().len() > 8 << 20);
    // A sparse message of a huge shape densifies to a huge .npy: refused.
    let huge = SparseTensor::from_dense(&empty(vec![0, 1 << 40]), SparseFormat::Coo).unwrap();
    let huge = SparseTensor::new(
        DType::Float64,
        vec![1 << 30, 1 << 20],
        huge.index().clone(),
        huge.data().clone(),
        vec![],
    )
    .unwrap();
    let mut message = Vec::new();
    write_sparse_tensor(&huge, &mut message).unwrap();
    std::fs::write(p("huge.arrow_tensor"), &message).unwrap();
    let out = cli(&[
        "convert".as_ref(),
        p("huge.arrow_tensor").as_os_str(),
        p("huge.npy").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-output-bytes"), "{stderr}");
    assert!(!p("huge.npy").exists());
    // A bad size is a usage error.
    assert_eq!(convert("1.5G").status.code(), Some(2));
}
