//! Sparse tensors: the 13 Arrow C++ golden files (`tests/data/sparse`, see its
//! `manifest.json`) are read, compared with their decoded arrays, and rebuilt byte for byte from
//! their dense sources; inconsistent indices are rejected with typed errors; random dense
//! tensors survive every format and a write/read round trip; and, when the C++ program is
//! built (`TENSOR_IPC_SPARSE_CPP`, see `.ci/sparse-cpp.sh`), Arrow C++ reads what we write and
//! we read what it writes.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use tensor_ipc::sparse::{
    CompressedAxis, CooIndex, CsxIndex, IndexVector, SparseIndex, read_sparse_tensor_with,
};
use tensor_ipc::{
    Buffer, DType, Error, Header, ReadOptions, SparseFormat, SparseTensor, Tensor, read_message,
    read_sparse_tensor, sparse_tensor_size, write_sparse_tensor, write_tensor,
};

use crate::common::data_dir;
use crate::sparse_golden::*;

#[test]
fn golden_files_decode_to_the_manifest_arrays() {
    let entries = entries();
    assert_eq!(entries.len(), 13);
    for entry in &entries {
        let name = entry["name"].as_str().unwrap();
        let (bytes, st) = read_golden(entry);
        assert_eq!(bytes.len(), entry["total_bytes"].as_u64().unwrap() as usize);
        assert_eq!(st.format(), format_of(entry), "{name}");
        assert_eq!(
            st.dtype(),
            dtype(entry["value_dtype"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(
            st.index_type(),
            dtype(entry["index_type"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(st.shape(), usizes(&entry["shape"]).as_slice(), "{name}");
        assert_eq!(
            st.dim_names(),
            names(&entry["dim_names"]).as_slice(),
            "{name}"
        );
        assert_eq!(
            st.non_zero_length(),
            entry["non_zero_length"].as_u64().unwrap() as usize
        );
        let arrays = &entry["decoded_arrays"];
        assert_eq!(values_f64(&st), f64s(&arrays["values"]), "{name}");
        match st.index() {
            SparseIndex::Coo(coo) => {
                let want: Vec<i64> = arrays["coords (nnz x ndim, logical)"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(i64s)
                    .collect();
                assert_eq!(coo.to_vec(), want, "{name}");
                assert_eq!(
                    coo.is_canonical(),
                    entry["index"]["isCanonical"].as_bool().unwrap(),
                    "{name}"
                );
            }
            SparseIndex::Csx(csx) => {
                assert_eq!(csx.indptr().to_vec(), i64s(&arrays["indptr"]), "{name}");
                assert_eq!(csx.indices().to_vec(), i64s(&arrays["indices"]), "{name}");
            }
            SparseIndex::Csf(csf) => {
                let indptr: Vec<Vec<i64>> = csf.indptr().iter().map(IndexVector::to_vec).collect();
                let indices: Vec<Vec<i64>> =
                    csf.indices().iter().map(IndexVector::to_vec).collect();
                let want_indptr: Vec<Vec<i64>> = arrays["indptr"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(i64s)
                    .collect();
                let want_indices: Vec<Vec<i64>> = arrays["indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(i64s)
                    .collect();
                assert_eq!(indptr, want_indptr, "{name}");
                assert_eq!(indices, want_indices, "{name}");
                assert_eq!(csf.axis_order(), usizes(&arrays["axisOrder"]).as_slice());
            }
        }
        // Densify: equal to the dense source (for every file, including the column-major COO,
        // which Arrow C++ 26 densifies wrongly).
        let dense = st.to_dense().unwrap();
        assert!(dense.is_row_major());
        assert_eq!(dense.dim_names(), st.dim_names());
        assert_eq!(dense_f64(&dense), f64s(&entry["dense_values"]), "{name}");
    }
}

#[test]
fn golden_files_rewrite_byte_identical() {
    for entry in entries() {
        let (bytes, st) = read_golden(&entry);
        let mut out = Vec::new();
        let n = write_sparse_tensor(&st, &mut out).unwrap();
        assert_eq!(n, out.len());
        assert_eq!(sparse_tensor_size(&st).unwrap(), bytes.len());
        assert!(out == bytes, "{}: re-encoding differs", entry["file"]);
    }
}

/// Rebuilds each golden file from its dense source with the dense to sparse conversion (or,
/// for the hand-built column-major COO, from its coordinates), writes it, and compares bytes.
#[test]
fn golden_files_rebuilt_from_dense_byte_identical() {
    let mut identical = 0;
    for entry in entries() {
        let name = entry["name"].as_str().unwrap().to_owned();
        let bytes = golden_bytes(&entry);
        let value_type = dtype(entry["value_dtype"].as_str().unwrap());
        let index_type = dtype(entry["index_type"].as_str().unwrap());
        let shape = usizes(&entry["shape"]);
        let dim_names = names(&entry["dim_names"]);
        let st = if name.contains("colmajor") {
            // Coordinates (2,1),(0,3),(1,0) stored column-major: strides (8, 24).
            let rows: Vec<Vec<i64>> = entry["decoded_arrays"]["coords (nnz x ndim, logical)"]
                .as_array()
                .unwrap()
                .iter()
                .map(i64s)
                .collect();
            let nnz = rows.len();
            let column_major: Vec<i64> = (0..2)
                .flat_map(|j| rows.iter().map(move |r| r[j]))
                .collect();
            let coords = IndexVector::from_values(index_type, &column_major).unwrap();
            let coo =
                CooIndex::with_strides(index_type, coords.data().clone(), nnz, 2, [8, 24]).unwrap();
            assert!(!coo.is_canonical());
            let values = tensor_of(
                value_type,
                vec![nnz],
                &f64s(&entry["decoded_arrays"]["values"]),
            );
            SparseTensor::new(
                value_type,
                shape,
                SparseIndex::Coo(coo),
                values.data().clone(),
                dim_names,
            )
            .unwrap()
        } else {
            let dense = tensor_of(value_type, shape, &f64s(&entry["dense_values"]))
                .with_dim_names(dim_names)
                .unwrap();
            SparseTensor::from_dense_with_index_type(&dense, format_of(&entry), index_type).unwrap()
        };
        assert_eq!(sparse_tensor_size(&st).unwrap(), bytes.len(), "{name}");
        let mut out = Vec::new();
        write_sparse_tensor(&st, &mut out).unwrap();
        if out == bytes {
            identical += 1;
        } else {
            let at = out.iter().zip(&bytes).position(|(a, b)| a != b);
            panic!("{name}: bytes differ (first difference at {at:?})");
        }
    }
    assert_eq!(identical, 13);
}

#[test]
fn default_conversions_use_int64_and_arrow_orders() {
    // The 6x4 matrix of SparseTensor.fbs.
    let dense = Tensor::from_vec(
        vec![
            0.0f64, 1., 2., 0., 0., 0., 3., 0., 0., 4., 0., 5., 0., 0., 0., 0., 6., 0., 7., 8., 0.,
            9., 0., 0.,
        ],
        vec![6, 4],
    )
    .unwrap();
    let csc = SparseTensor::from_dense(&dense, SparseFormat::Csc).unwrap();
    assert_eq!(csc.index_type(), DType::Int64);
    assert_eq!(
        csc.to_values::<f64>().unwrap(),
        [6., 1., 4., 9., 2., 3., 7., 5., 8.]
    );
    let SparseIndex::Csf(csf) = SparseTensor::from_dense(&dense, SparseFormat::Csf)
        .unwrap()
        .index()
        .clone()
    else {
        panic!("not CSF")
    };
    assert_eq!(csf.axis_order(), [1, 0]);
    // A column-major and a strided copy of the same matrix convert to the same thing.
    let f_order = Tensor::from_vec(dense.to_vec::<f64>().unwrap(), vec![6, 4]).unwrap();
    let transposed: Vec<f64> = (0..4)
        .flat_map(|j| (0..6).map(move |i| (i, j)))
        .map(|(i, j)| f_order.get::<f64>(&[i, j]).unwrap())
        .collect();
    let column_major = Tensor::from_vec(transposed, vec![6, 4])
        .unwrap()
        .into_column_major()
        .unwrap();
    for format in SparseFormat::ALL {
        let a = SparseTensor::from_dense(&dense, format).unwrap();
        let b = SparseTensor::from_dense(&column_major, format).unwrap();
        let (mut ma, mut mb) = (Vec::new(), Vec::new());
        write_sparse_tensor(&a, &mut ma).unwrap();
        write_sparse_tensor(&b, &mut mb).unwrap();
        assert_eq!(ma, mb, "{format}");
    }
    // Index types: uint64 refused as Arrow does; too narrow refused.
    assert!(matches!(
        SparseTensor::from_dense_with_index_type(&dense, SparseFormat::Coo, DType::UInt64),
        Err(Error::SparseIndexType { .. })
    ));
    let wide = Tensor::from_vec(vec![1u8; 200], vec![1, 200]).unwrap();
    assert!(matches!(
        SparseTensor::from_dense_with_index_type(&wide, SparseFormat::Csr, DType::Int8),
        Err(Error::IndexTypeTooSmall { .. })
    ));
    assert!(matches!(
        SparseTensor::from_dense(
            &Tensor::from_vec(vec![1.0f32; 3], vec![3]).unwrap(),
            SparseFormat::Csr
        ),
        Err(Error::SparseShape { .. })
    ));
}

/// Shapes with a zero axis beside one of 2^62 or more (issue 10): no element, so COO and
/// CSF are empty, a compressed axis of zero gives `indptr == [0]`, and a huge compressed axis
/// is refused with a typed error (its indptr alone would be exabytes), never a panic.
#[test]
fn a_zero_axis_beside_a_huge_one_never_panics() {
    for huge in [1usize << 62, (1 << 62) + 7, i64::MAX as usize] {
        for shape in [vec![0, huge], vec![huge, 0]] {
            let row_major = Tensor::from_vec(Vec::<f64>::new(), shape.clone()).unwrap();
            let column_major = row_major.clone().into_column_major().unwrap();
            for dense in [&row_major, &column_major] {
                for format in SparseFormat::ALL {
                    let compressed = match format {
                        SparseFormat::Csr => Some(shape[0]),
                        SparseFormat::Csc => Some(shape[1]),
                        _ => None,
                    };
                    let result = SparseTensor::from_dense(dense, format);
                    match compressed {
                        Some(axis) if axis > 0 => assert!(
                            matches!(result, Err(Error::OutputTooLarge { .. })),
                            "{shape:?} {format}: {result:?}"
                        ),
                        _ => {
                            let st = result.unwrap_or_else(|e| panic!("{shape:?} {format}: {e}"));
                            assert_eq!(st.non_zero_length(), 0);
                            assert_eq!(st.shape(), &shape[..]);
                            let mut message = Vec::new();
                            write_sparse_tensor(&st, &mut message).unwrap();
                            let back = read_sparse_tensor(&mut message.as_slice()).unwrap();
                            assert_eq!(back.shape(), &shape[..], "{format}");
                            if let SparseIndex::Csx(csx) = back.index() {
                                assert_eq!(csx.indptr().to_vec(), [0]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The bytes of a sparse tensor's index and value buffers.
fn buffers_len(st: &SparseTensor<'_>) -> u64 {
    let index: usize = match st.index() {
        SparseIndex::Coo(coo) => coo.data().len(),
        SparseIndex::Csx(csx) => csx.indptr().data().len() + csx.indices().data().len(),
        SparseIndex::Csf(csf) => csf
            .indptr()
            .iter()
            .chain(csf.indices())
            .map(|v| v.data().len())
            .sum(),
    };
    (index + st.data().len()) as u64
}

/// `FromDenseOptions::max_output_bytes`: the size is exact for COO, CSR and CSC (a conversion
/// allowed exactly its size succeeds, one byte less is refused), an upper bound for CSF; and
/// a (0, 2^36) CSC (512 GiB of indptr) is refused by the default bound at once.
#[test]
fn the_output_bound_is_exact_and_checked_first() {
    use tensor_ipc::sparse::{DEFAULT_MAX_OUTPUT_BYTES, FromDenseOptions};
    let mut values = vec![0i32; 6 * 5 * 4];
    for (i, v) in values.iter_mut().enumerate() {
        if i % 7 == 0 {
            *v = i as i32;
        }
    }
    let cube = Tensor::from_vec(values.clone(), vec![6, 5, 4]).unwrap();
    let matrix = Tensor::from_vec(values, vec![30, 4]).unwrap();
    let empty_rows = Tensor::from_vec(Vec::<u8>::new(), vec![30_000, 0]).unwrap();
    for (dense, formats) in [
        (&cube, &[SparseFormat::Coo, SparseFormat::Csf][..]),
        (&matrix, &SparseFormat::ALL[..]),
        (&empty_rows, &[SparseFormat::Csr][..]),
    ] {
        for &format in formats {
            for index_type in [DType::Int64, DType::Int16] {
                let options = FromDenseOptions::default().with_index_type(index_type);
                let st = SparseTensor::from_dense_with(dense, format, &options).unwrap();
                let mut len = buffers_len(&st);
                if format == SparseFormat::Csf {
                    // The largest tree: every level with a node per value.
                    let (nnz, ndim) = (st.non_zero_length() as u64, st.ndim() as u64);
                    let iw = index_type.byte_width() as u64;
                    assert!(len <= nnz * 4 + iw * (ndim * nnz + (ndim - 1) * (nnz + 1)));
                    len = nnz * 4 + iw * (ndim * nnz + (ndim - 1) * (nnz + 1));
                }
                let exact = options.with_max_output_bytes(len);
                assert!(SparseTensor::from_dense_with(dense, format, &exact).is_ok());
                let less = options.with_max_output_bytes(len - 1);
                match SparseTensor::from_dense_with(dense, format, &less) {
                    Err(Error::OutputTooLarge { bytes, limit, .. }) => {
                        assert_eq!((bytes, limit), (len, len - 1), "{format}");
                    }
                    other => panic!("{format}: {other:?}"),
                }
            }
        }
    }
    assert_eq!(DEFAULT_MAX_OUTPUT_BYTES, 64 << 30);
    let wide = Tensor::from_vec(Vec::<f64>::new(), vec![0, 1 << 36]).unwrap();
    let started = std::time::Instant::now();
    let err = SparseTensor::from_dense(&wide, SparseFormat::Csc).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(matches!(err, Error::OutputTooLarge { bytes, .. } if bytes == ((1 << 36) + 1) * 8));
    assert_eq!(
        err.to_string(),
        "the CSC matrix would take 549755813896 bytes, more than the limit of 68719476736 bytes"
    );
    // The other order is a CSR of one empty row.
    let csr = SparseTensor::from_dense(&wide, SparseFormat::Csr).unwrap();
    assert_eq!(buffers_len(&csr), 8);
}

#[test]
fn csf_lengths_in_bytes_is_rejected() {
    let path = data_dir()
        .join("reader_cases")
        .join("csf_lengths_in_bytes.arrow_sparse_tensor");
    let bytes = std::fs::read(&path).unwrap();
    // Arrow C++ 26 reads it without error and decodes garbage (nnz = 64); a consistent reader
    // sees that the element counts do not fit together.
    let message = read_message(&mut bytes.as_slice(), &ReadOptions::default())
        .unwrap()
        .unwrap();
    assert!(matches!(message.header, Header::SparseTensor(_)));
    let err = message
        .into_sparse_tensor(&ReadOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SparseLength {
                expected: 17,
                found: 24,
                ..
            }
        ),
        "{err}"
    );
}

/// Locates `needle` (a buffer's bytes) in a golden file's body.
fn body_offset(bytes: &[u8]) -> usize {
    8 + i32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize
}

fn read_err(bytes: &[u8]) -> Error {
    read_sparse_tensor(&mut &bytes[..]).unwrap_err()
}

#[test]
fn inconsistent_indices_are_rejected() {
    // COO u8 6x4, int8 coordinates: (0,1) is the first row of coordinates.
    let coo = golden_bytes(&entry_named("coo_u8_6x4_idx_i8"));
    let body = body_offset(&coo);
    let mut bad = coo.clone();
    bad[body + 1] = 4; // column 4 of a 4-column matrix
    assert!(matches!(
        read_err(&bad),
        Error::SparseIndexOutOfRange {
            value: 4,
            bound: 4,
            ..
        }
    ));
    bad[body + 1] = 0xff; // -1
    assert!(matches!(
        read_err(&bad),
        Error::SparseIndexOutOfRange { value: -1, .. }
    ));

    // CSR i32 6x4: indptr [0,2,3,5,5,8,9], indices, values.
    let csr = golden_bytes(&entry_named("csr_i32_6x4_idx_i32"));
    let body = body_offset(&csr);
    let mut bad = csr.clone();
    bad[body + 8..body + 12].copy_from_slice(&1i32.to_le_bytes()); // indptr[2] = 1 < 2
    assert!(matches!(
        read_err(&bad),
        Error::IndptrNotMonotone { position: 2, .. }
    ));
    let mut bad = csr.clone();
    bad[body + 24..body + 28].copy_from_slice(&8i32.to_le_bytes()); // indptr[6] = 8 != nnz 9
    assert!(matches!(
        read_err(&bad),
        Error::SparseLength {
            expected: 9,
            found: 8,
            ..
        }
    ));
    let mut bad = csr.clone();
    bad[body + 32..body + 36].copy_from_slice(&7i32.to_le_bytes()); // indices[0] = 7 >= 4
    assert!(matches!(
        read_err(&bad),
        Error::SparseIndexOutOfRange {
            value: 7,
            bound: 4,
            ..
        }
    ));

    // CSF i16 2x3x4x5, int32 indices: the last level's indices start at body offset 96.
    let csf = golden_bytes(&entry_named("csf_i16_2x3x4x5_idx_i32"));
    let body = body_offset(&csf);
    let mut bad = csf.clone();
    bad[body + 96..body + 100].copy_from_slice(&5i32.to_le_bytes()); // axis 3 has size 5
    assert!(matches!(
        read_err(&bad),
        Error::SparseIndexOutOfRange {
            value: 5,
            bound: 5,
            ..
        }
    ));

    // Body cut short: the data buffer lies outside it.
    let mut src = &csr[..csr.len() - 8];
    assert!(matches!(
        read_sparse_tensor(&mut src),
        Err(Error::Truncated { .. })
    ));

    // Constructors check the same things.
    let indptr = IndexVector::from_values(DType::Int64, &[0, 2, 1]).unwrap();
    let indices = IndexVector::from_values(DType::Int64, &[0, 1]).unwrap();
    let csx = CsxIndex::new(CompressedAxis::Row, indptr, indices).unwrap();
    assert!(matches!(
        SparseTensor::new(
            DType::Float32,
            vec![2, 2],
            SparseIndex::Csx(csx),
            Buffer::from_vec(vec![1f32, 2.]),
            vec![]
        ),
        Err(Error::IndptrNotMonotone { .. })
    ));
    let coo = CooIndex::from_values(DType::Int32, &[0, 0, 1, 2], 2).unwrap();
    assert!(matches!(
        SparseTensor::new(
            DType::Float32,
            vec![2, 2],
            SparseIndex::Coo(coo.clone()),
            Buffer::from_vec(vec![1f32, 2.]),
            vec![]
        ),
        Err(Error::SparseIndexOutOfRange {
            value: 2,
            bound: 2,
            ..
        })
    ));
    assert!(matches!(
        SparseTensor::new(
            DType::Float32,
            vec![2, 3],
            SparseIndex::Coo(coo),
            Buffer::from_vec(vec![1f32]),
            vec![]
        ),
        Err(Error::DataLength {
            required: 8,
            available: 4
        })
    ));
    assert!(matches!(
        IndexVector::from_values(DType::UInt64, &[1]),
        Err(Error::SparseIndexType { .. })
    ));
}

#[test]
fn mixed_stream_zero_copy_and_alignment() {
    let entry = entry_named("csr_f64_6x4_idx_i64_named");
    let sparse_bytes = golden_bytes(&entry);
    let dense = Tensor::from_vec(vec![1.5f64, 2.5], vec![2]).unwrap();
    let mut stream = Vec::new();
    write_tensor(&dense, &mut stream).unwrap();
    stream.extend_from_slice(&sparse_bytes);
    write_tensor(&dense, &mut stream).unwrap();
    let stream = Buffer::from_vec(stream);
    let options = ReadOptions::default();
    let mut src = stream.as_slice();
    let kinds: Vec<&str> = std::iter::from_fn(|| read_message(&mut src, &options).unwrap())
        .map(|m| m.header.type_name())
        .collect();
    assert_eq!(kinds, ["Tensor", "SparseTensor", "Tensor"]);

    // Zero-copy: the values are a view of the message.
    let mut src = &stream.as_slice()[dense_len(&dense)..];
    let message = read_message(&mut src, &options).unwrap().unwrap();
    let Header::SparseTensor(header) = &message.header else {
        panic!("not sparse")
    };
    assert_eq!(header.format(), SparseFormat::Csr);
    let st = message.into_sparse_tensor(&options).unwrap();
    let start = stream.as_ptr() as usize;
    let values = st.values::<f64>().unwrap().as_ptr() as usize;
    assert!(values > start && values < start + stream.len());
    assert!(matches!(
        read_message(&mut src, &options)
            .unwrap()
            .unwrap()
            .into_sparse_tensor(&options),
        Err(Error::UnexpectedHeader {
            found: "Tensor",
            expected: "SparseTensor"
        })
    ));

    // Misaligned by one byte: copied by default, refused when strict.
    let mut shifted = vec![0u8; sparse_bytes.len() + 1];
    shifted[1..].copy_from_slice(&sparse_bytes);
    let shifted = Buffer::from_vec(shifted);
    let misaligned = &shifted.as_slice()[1..];
    let copied = read_sparse_tensor(&mut &misaligned[..]).unwrap();
    assert_eq!(
        copied.to_dense().unwrap().to_vec::<f64>().unwrap(),
        f64s(&entry["dense_values"])
    );
    let strict = ReadOptions::new().with_require_alignment(true);
    assert!(matches!(
        read_sparse_tensor_with(&mut &misaligned[..], &strict),
        Err(Error::Misaligned { alignment: 8, .. })
    ));
}

/// Sparse messages go through the backends like dense ones: a memory sink and a shared-buffer
/// source, a file sink and a mapped file source, all zero-copy on read.
#[test]
fn backends_carry_sparse_messages() {
    use tensor_ipc_file::{FileSink, FileSource};
    use tensor_ipc_memory::{BufferSource, MemorySink};

    let golden: Vec<SparseTensor<'static>> = entries().iter().map(|e| read_golden(e).1).collect();
    // 8 body bytes: every message stays 8-byte aligned, so nothing needs a copy.
    let dense = Tensor::from_vec(vec![1i16, 2, 3, 4], vec![4]).unwrap();

    let mut sink = MemorySink::new();
    for st in &golden {
        write_sparse_tensor(st, &mut sink).unwrap();
        write_tensor(&dense, &mut sink).unwrap();
    }
    let buffer = sink.into_buffer();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.arrow_tensors");
    let mut file = FileSink::create(&path).unwrap();
    for st in &golden {
        write_sparse_tensor(st, &mut file).unwrap();
        write_tensor(&dense, &mut file).unwrap();
    }
    file.finish().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), buffer.as_slice());

    let options = ReadOptions::default();
    let mut memory = BufferSource::new(buffer.clone());
    let mut mapped = FileSource::open(&path).unwrap();
    let (mem_base, mem_len) = (buffer.as_ptr() as usize, buffer.len());
    let map_base = mapped.buffer().as_ptr() as usize;
    for st in &golden {
        for (source, base, len) in [
            (
                &mut memory as &mut dyn tensor_ipc::TensorSource<'static>,
                mem_base,
                mem_len,
            ),
            (&mut mapped, map_base, mem_len),
        ] {
            let back = read_message(source, &options)
                .unwrap()
                .unwrap()
                .into_sparse_tensor(&options)
                .unwrap();
            let mut a = Vec::new();
            let mut b = Vec::new();
            write_sparse_tensor(st, &mut a).unwrap();
            write_sparse_tensor(&back, &mut b).unwrap();
            assert_eq!(a, b);
            if back.non_zero_length() > 0 {
                let at = back.value_bytes().as_ptr() as usize;
                assert!(
                    at >= base && at < base + len,
                    "values not shared with the source"
                );
            }
            let next = read_message(source, &options).unwrap().unwrap();
            assert!(matches!(next.header, Header::Tensor(_)));
        }
    }
}

fn dense_len(t: &Tensor<'_>) -> usize {
    tensor_ipc::tensor_size(t).unwrap()
}

/// Random dense tensors with about a third of the elements non-zero.
fn dense_strategy() -> impl Strategy<Value = (DType, Vec<usize>, Vec<f64>)> {
    let dtypes = prop::sample::select(vec![
        DType::Int8,
        DType::UInt16,
        DType::Int32,
        DType::Int64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
    ]);
    (dtypes, prop::collection::vec(0usize..5, 1..5)).prop_flat_map(|(dtype, shape)| {
        let n: usize = shape.iter().product();
        let value = prop_oneof![2 => Just(0.0f64), 1 => (1i32..100).prop_map(f64::from)];
        (Just(dtype), Just(shape), prop::collection::vec(value, n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn dense_to_each_format_and_back((dtype, shape, values) in dense_strategy(), column_major: bool) {
        let mut dense = tensor_of(dtype, shape.clone(), &values);
        if column_major {
            // The same logical values laid out column-major.
            let rm = dense.clone();
            let mut f = vec![0.0; values.len()];
            let strides = tensor_ipc::layout::column_major_strides(&shape, 1).unwrap();
            for (flat, &v) in values.iter().enumerate() {
                let mut rem = flat;
                let mut at = 0;
                for axis in (0..shape.len()).rev() {
                    at += (rem % shape[axis]) * strides[axis];
                    rem /= shape[axis];
                }
                f[at] = v;
            }
            dense = tensor_of(dtype, shape.clone(), &f).into_column_major().unwrap();
            prop_assert_eq!(dense_f64(&dense), dense_f64(&rm));
        }
        for format in SparseFormat::ALL {
            let st = match SparseTensor::from_dense(&dense, format) {
                Ok(st) => st,
                Err(Error::SparseShape { .. }) => {
                    prop_assert!(format != SparseFormat::Coo);
                    continue;
                }
                Err(e) => return Err(TestCaseError::fail(format!("{format}: {e}"))),
            };
            prop_assert_eq!(st.non_zero_length(), values.iter().filter(|&&v| v != 0.0).count());
            prop_assert_eq!(dense_f64(&st.to_dense().unwrap()), values.clone());
            let mut message = Vec::new();
            let n = write_sparse_tensor(&st, &mut message).unwrap();
            prop_assert_eq!(n, sparse_tensor_size(&st).unwrap());
            prop_assert_eq!(n % 8, 0);
            let back = read_sparse_tensor(&mut message.as_slice()).unwrap();
            prop_assert_eq!(back.format(), format);
            prop_assert_eq!(dense_f64(&back.to_dense().unwrap()), values.clone());
            let mut again = Vec::new();
            write_sparse_tensor(&back, &mut again).unwrap();
            prop_assert!(again == message);
        }
    }

    #[test]
    fn mutated_sparse_messages_never_panic(index in 0usize..13, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let entry = &entries()[index];
        let mut bytes = golden_bytes(entry);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(st) = read_sparse_tensor(&mut bytes.as_slice()) {
            // Whatever is accepted is consistent: it densifies (when small enough to allocate)
            // and re-encodes.
            if st.size() <= 1 << 20 {
                st.to_dense().unwrap();
            }
            let mut out = Vec::new();
            write_sparse_tensor(&st, &mut out).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Arrow C++ interoperability (tests/cpp/sparse_vectors.cc, built by .ci/sparse-cpp.sh)

/// The C++ program, or `None` (recorded as skipped) when it is not built.
fn cpp_program() -> Option<PathBuf> {
    let program = crate::peers::sparse_cpp();
    if program.is_none() {
        crate::peers::skipped(
            "the Arrow C++ sparse interop",
            "the program is not built (run: export TENSOR_IPC_SPARSE_CPP=$(bash .ci/sparse-cpp.sh))",
        );
    }
    program
}

fn run_cpp(program: &PathBuf, args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Arrow C++ writes fresh sparse vectors (every format, index type int8..int64, several value
/// types) from seeded random dense tensors; we read them back and compare with the dense values
/// it reports, and rebuilding them from the dense values gives the same bytes.
#[test]
fn cpp_written_vectors_read_back() {
    let Some(program) = cpp_program() else { return };
    let dir = tempfile::tempdir().unwrap();
    run_cpp(
        &program,
        &[
            "write".as_ref(),
            dir.path().as_os_str(),
            "20261125".as_ref(),
        ],
    );
    let list: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("vectors.json")).unwrap())
            .unwrap();
    let cases = list.as_array().unwrap();
    assert!(cases.len() >= 40, "only {} vectors", cases.len());
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let st =
            read_sparse_tensor(&mut bytes.as_slice()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let value_type = dtype(case["dtype"].as_str().unwrap());
        let index_type = dtype(case["index_type"].as_str().unwrap());
        let format = SparseFormat::from_name(case["format"].as_str().unwrap()).unwrap();
        let shape = usizes(&case["shape"]);
        assert_eq!(st.format(), format, "{file}");
        assert_eq!(st.index_type(), index_type, "{file}");
        assert_eq!(st.dtype(), value_type, "{file}");
        assert_eq!(st.shape(), shape.as_slice(), "{file}");
        let dense_values = f64s(&case["dense"]);
        assert_eq!(dense_f64(&st.to_dense().unwrap()), dense_values, "{file}");
        // Our conversion of the same dense tensor writes the same bytes.
        let dense = tensor_of(value_type, shape, &dense_values);
        let ours = SparseTensor::from_dense_with_index_type(&dense, format, index_type).unwrap();
        let mut out = Vec::new();
        write_sparse_tensor(&ours, &mut out).unwrap();
        assert!(out == bytes, "{file}: our bytes differ from Arrow C++'s");
    }
}

/// Arrow C++ `ReadSparseTensor` reads what we write and densifies it to the same values.
#[test]
fn rust_written_vectors_read_by_cpp() {
    let Some(program) = cpp_program() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let shapes: [&[usize]; 4] = [&[5, 7], &[3, 4, 6], &[1, 9], &[2, 3, 2, 4]];
    for (k, shape) in shapes.iter().enumerate() {
        for format in SparseFormat::ALL {
            for (dtype, index_type) in [
                (DType::Float64, DType::Int64),
                (DType::Int32, DType::Int32),
                (DType::UInt8, DType::Int16),
                (DType::Float32, DType::Int8),
            ] {
                let n: usize = shape.iter().product();
                let values: Vec<f64> = (0..n)
                    .map(|_| {
                        if next() % 3 == 0 {
                            (next() % 90 + 1) as f64
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let dense = tensor_of(dtype, shape.to_vec(), &values);
                let st = match SparseTensor::from_dense_with_index_type(&dense, format, index_type)
                {
                    Ok(st) => st,
                    Err(Error::SparseShape { .. }) => continue,
                    Err(e) => panic!("{e}"),
                };
                let file = format!("rust_{k}_{format}_{dtype}_{index_type}.arrow_sparse_tensor");
                let mut out = Vec::new();
                write_sparse_tensor(&st, &mut out).unwrap();
                std::fs::write(dir.path().join(&file), out).unwrap();
                cases.push((file, values));
            }
        }
    }
    let mut args: Vec<std::ffi::OsString> = vec!["read".into()];
    args.extend(
        cases
            .iter()
            .map(|(f, _)| dir.path().join(f).into_os_string()),
    );
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let output = run_cpp(&program, &args);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((file, values), line) in cases.iter().zip(lines) {
        let got: Value = serde_json::from_str(line).unwrap();
        assert_eq!(got["ok"], true, "{file}: {line}");
        assert_eq!(f64s(&got["dense"]), *values, "{file}");
    }
}
