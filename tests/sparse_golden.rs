//! The sparse golden files of `tests/data/sparse` and their `manifest.json`, read as test
//! values. Shared by the core's and the CLI's test binaries.

#![allow(dead_code)]

use serde_json::Value;
use tensor_ipc::{DType, SparseFormat, SparseTensor, Tensor, TensorData, f16, read_sparse_tensor};

use crate::common::data_dir;

pub(crate) fn manifest() -> Value {
    let path = data_dir().join("sparse").join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

pub(crate) fn entries() -> Vec<Value> {
    manifest()["files"].as_array().expect("files").clone()
}

pub(crate) fn golden_bytes(entry: &Value) -> Vec<u8> {
    let path = data_dir()
        .join("sparse")
        .join(entry["file"].as_str().expect("file"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub(crate) fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("non-negative integer") as usize)
        .collect()
}

pub(crate) fn i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("integer"))
        .collect()
}

pub(crate) fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

pub(crate) fn names(v: &Value) -> Vec<String> {
    let n: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_owned())
        .collect();
    if n.iter().all(String::is_empty) {
        Vec::new()
    } else {
        n
    }
}

pub(crate) fn format_of(entry: &Value) -> SparseFormat {
    SparseFormat::from_name(entry["format"].as_str().expect("format")).expect("known format")
}

pub(crate) fn dtype(name: &str) -> DType {
    DType::from_name(name).unwrap_or_else(|| panic!("unknown dtype {name}"))
}

/// A row-major tensor of `dtype` holding `values` (exact for the values used here).
pub(crate) fn tensor_of(dtype: DType, shape: Vec<usize>, values: &[f64]) -> Tensor<'static> {
    macro_rules! make {
        ($t:ty) => {
            Tensor::from_vec(values.iter().map(|&v| v as $t).collect::<Vec<$t>>(), shape)
        };
    }
    match dtype {
        DType::Int8 => make!(i8),
        DType::Int16 => make!(i16),
        DType::Int32 => make!(i32),
        DType::Int64 => make!(i64),
        DType::UInt8 => make!(u8),
        DType::UInt16 => make!(u16),
        DType::UInt32 => make!(u32),
        DType::UInt64 => make!(u64),
        DType::Float16 => Tensor::from_vec(
            values.iter().map(|&v| f16::from_f64(v)).collect::<Vec<_>>(),
            shape,
        ),
        DType::Float32 => make!(f32),
        _ => make!(f64),
    }
    .expect("valid tensor")
}

/// The elements of a dense tensor (row-major) as f64.
pub(crate) fn dense_f64(t: &Tensor<'_>) -> Vec<f64> {
    macro_rules! get {
        ($t:ty) => {
            t.to_vec::<$t>()
                .unwrap()
                .into_iter()
                .map(|v| v as f64)
                .collect()
        };
    }
    match t.dtype() {
        DType::Int8 => get!(i8),
        DType::Int16 => get!(i16),
        DType::Int32 => get!(i32),
        DType::Int64 => get!(i64),
        DType::UInt8 => get!(u8),
        DType::UInt16 => get!(u16),
        DType::UInt32 => get!(u32),
        DType::UInt64 => get!(u64),
        DType::Float16 => t
            .to_vec::<f16>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect(),
        DType::Float32 => get!(f32),
        _ => get!(f64),
    }
}

/// The stored values of a sparse tensor as f64.
pub(crate) fn values_f64(st: &SparseTensor<'_>) -> Vec<f64> {
    let dense = Tensor::new(
        st.dtype(),
        TensorData::Borrowed(st.value_bytes()),
        vec![st.non_zero_length()],
    )
    .unwrap();
    dense_f64(&dense)
}

pub(crate) fn read_golden(entry: &Value) -> (Vec<u8>, SparseTensor<'static>) {
    let bytes = golden_bytes(entry);
    let st = read_sparse_tensor(&mut bytes.as_slice())
        .unwrap_or_else(|e| panic!("{}: {e}", entry["file"]))
        .into_owned();
    (bytes, st)
}

pub(crate) fn entry_named(name: &str) -> Value {
    entries()
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}
