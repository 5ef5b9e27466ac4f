//! The bodies of the fuzz targets, shared by the libFuzzer binaries in `fuzz_targets/`, the
//! stable `replay` driver in `src/bin/replay.rs`, and the hostile-input test of the main crate
//! (`tests/hostile.rs` includes this file with `#[path]`), so that all three run exactly the
//! same code. It depends on `tensor_ipc` and `std` only.

use tensor_ipc::sparse::{SparseIndex, SparseTensor};
use tensor_ipc::{DType, Error, ReadOptions, Tensor, read_message, write_tensor};

/// Row-major copies larger than this are not made while touching decoded data: a message of a
/// few bytes may legitimately describe a huge tensor with zero strides (a broadcast), whose
/// logical size is unbounded by the input.
pub const MAX_TOUCH_BYTES: usize = 1 << 24;

/// The metadata limit of the strict target: small, so the limit check itself gets exercised.
pub const STRICT_MAX_METADATA_LEN: usize = 4096;

/// At most this many messages are decoded from one input.
const MAX_MESSAGES: usize = 64;

/// What decoding one input led to: the number of messages read, and the first error.
#[derive(Debug)]
pub struct Outcome {
    /// Messages decoded (of any kind) before the end or the error.
    pub messages: usize,
    /// Dense tensors among them that validated.
    pub tensors: usize,
    /// The first error, if decoding stopped on one.
    pub error: Option<Error>,
}

/// The options of the `decode_tensor_strict` target.
pub fn strict_options() -> ReadOptions {
    ReadOptions::new()
        .with_require_alignment(true)
        .with_max_metadata_len(STRICT_MAX_METADATA_LEN)
}

/// Reads every message of `data` until the end of the stream or the first error; validates
/// each tensor (and sparse tensor) message as such and touches its data.
pub fn decode_all(data: &[u8], options: &ReadOptions) -> Outcome {
    let mut source = data;
    let mut outcome = Outcome {
        messages: 0,
        tensors: 0,
        error: None,
    };
    while outcome.messages < MAX_MESSAGES {
        let before = source.len();
        let message = match read_message(&mut source, options) {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(err) => {
                outcome.error = Some(err);
                break;
            }
        };
        outcome.messages += 1;
        let layout = message.layout;
        assert_eq!(
            before - source.len(),
            layout.total_len(),
            "a message must consume exactly its announced length"
        );
        assert_eq!(message.body.len(), layout.body_len);
        match message.header.type_name() {
            "Tensor" => {}
            "SparseTensor" => {
                match message.into_sparse_tensor(options) {
                    Ok(sparse) => {
                        outcome.tensors += 1;
                        touch_sparse(&sparse);
                    }
                    Err(err) => {
                        outcome.error = Some(err);
                        break;
                    }
                }
                continue;
            }
            _ => continue,
        }
        match message.into_tensor(options) {
            Ok(tensor) => {
                outcome.tensors += 1;
                touch(&tensor, options);
            }
            Err(err) => {
                outcome.error = Some(err);
                break;
            }
        }
    }
    outcome
}

/// Reads the data of a decoded tensor, checking the invariants the reader promises.
pub fn touch(tensor: &Tensor<'_>, options: &ReadOptions) {
    let width = tensor.dtype().byte_width();
    assert_eq!(tensor.strides().len(), tensor.ndim());
    // An empty axis makes the tensor empty however large the other axes are (Arrow C++
    // accepts such tensors); otherwise the element count of a validated tensor fits.
    let elements = if tensor.shape().contains(&0) {
        0
    } else {
        tensor
            .shape()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .expect("a validated tensor's element count fits")
    };
    assert_eq!(tensor.len(), elements);
    if options.require_alignment && !tensor.as_bytes().is_empty() {
        assert_eq!(
            tensor.as_bytes().as_ptr() as usize % width,
            0,
            "strict mode returned misaligned data"
        );
    }
    let dense = tensor.dense_byte_len();
    if dense <= MAX_TOUCH_BYTES {
        let bytes = tensor.to_row_major_bytes().unwrap();
        assert_eq!(bytes.len(), dense);
        // Re-encoding a decoded tensor must work and decode to the same elements.
        let mut out = Vec::new();
        let written = write_tensor(tensor, &mut out).expect("a decoded tensor re-encodes");
        assert_eq!(written, out.len());
        let mut again = out.as_slice();
        let back = tensor_ipc::read_tensor(&mut again).expect("a re-encoded tensor decodes");
        assert!(again.is_empty());
        assert_eq!(back.shape(), tensor.shape());
        assert_eq!(back.dtype(), tensor.dtype());
        assert_eq!(back.to_row_major_bytes().unwrap(), bytes);
    }
    if elements > 0 {
        // The first and last elements, through the strided accessor.
        let last: Vec<usize> = tensor.shape().iter().map(|&d| d - 1).collect();
        let first = vec![0; tensor.ndim()];
        for index in [first, last] {
            let ok = match tensor.dtype() {
                DType::Int8 => tensor.get::<i8>(&index).is_ok(),
                DType::Int16 => tensor.get::<i16>(&index).is_ok(),
                DType::Int32 => tensor.get::<i32>(&index).is_ok(),
                DType::Int64 => tensor.get::<i64>(&index).is_ok(),
                DType::UInt8 => tensor.get::<u8>(&index).is_ok(),
                DType::UInt16 => tensor.get::<u16>(&index).is_ok(),
                DType::UInt32 => tensor.get::<u32>(&index).is_ok(),
                DType::UInt64 => tensor.get::<u64>(&index).is_ok(),
                DType::Float16 => tensor.get::<tensor_ipc::f16>(&index).is_ok(),
                DType::Float32 => tensor.get::<f32>(&index).is_ok(),
                DType::Float64 => tensor.get::<f64>(&index).is_ok(),
                _ => true,
            };
            assert!(ok, "element {index:?} of a validated tensor is readable");
        }
    }
}

/// Reads the index and values of a decoded sparse tensor, densifies it when that is small, and
/// writes it again. Errors are allowed (a sparse index may be inconsistent in ways only
/// densifying finds); panics are not.
pub fn touch_sparse(sparse: &SparseTensor<'_>) {
    let _ = sparse.value_bytes();
    let _ = sparse.size();
    let nnz = sparse.non_zero_length();
    match sparse.index() {
        SparseIndex::Coo(coo) => {
            assert_eq!(coo.non_zero_length(), nnz);
            let _ = coo.to_vec();
        }
        SparseIndex::Csx(csx) => {
            let _ = (csx.indptr().to_vec(), csx.indices().to_vec());
        }
        SparseIndex::Csf(csf) => {
            for v in csf.indptr().iter().chain(csf.indices()) {
                let _ = v.to_vec();
            }
            let _ = csf.axis_order();
        }
    }
    let dense_bytes = sparse
        .shape()
        .iter()
        .try_fold(sparse.dtype().byte_width(), |acc, &d| acc.checked_mul(d));
    if dense_bytes.is_some_and(|n| n <= MAX_TOUCH_BYTES) {
        let _ = sparse.to_dense();
    }
    let mut out = Vec::new();
    if tensor_ipc::sparse::write_sparse_tensor(sparse, &mut out).is_ok() {
        let _ = tensor_ipc::sparse::read_sparse_tensor(&mut out.as_slice());
    }
}

/// The `decode_message` target: default (lenient) options.
pub fn decode_message(data: &[u8]) -> Outcome {
    decode_all(data, &ReadOptions::default())
}

/// The `decode_tensor_strict` target: alignment required, small metadata limit. The input is
/// also decoded from an odd offset of an aligned copy, so misaligned bodies are exercised.
pub fn decode_tensor_strict(data: &[u8]) -> Outcome {
    let options = strict_options();
    let mut shifted = vec![0u8; data.len() + 1];
    shifted[1..].copy_from_slice(data);
    let _ = decode_all(&shifted[1..], &options);
    decode_all(data, &options)
}

/// A small tensor to write and read back, within bounds whatever the input.
#[derive(Clone, Debug)]
pub struct TensorSpec {
    /// The element type.
    pub dtype: DType,
    /// The shape: at most [`TensorSpec::MAX_NDIM`] axes of at most [`TensorSpec::MAX_DIM`].
    pub shape: Vec<usize>,
    /// The layout.
    pub layout: Layout,
    /// Whether the dimensions are named.
    pub named: bool,
    /// Bytes the data is filled from (cycled).
    pub fill: Vec<u8>,
}

/// How the spec's elements are laid out in memory.
#[derive(Clone, Debug)]
pub enum Layout {
    /// Row-major.
    RowMajor,
    /// Column-major.
    ColumnMajor,
    /// Explicit byte strides, in elements (multiplied by the width); may be zero or repeat.
    Strided(Vec<usize>),
    /// The axes of a row-major tensor permuted (a transpose).
    Permuted(Vec<usize>),
    /// Every `step`-th element along each axis of a larger row-major tensor, from an offset.
    Sliced {
        /// Element offset of the first element.
        offset: usize,
        /// Step per axis.
        steps: Vec<usize>,
    },
}

impl TensorSpec {
    /// Most axes.
    pub const MAX_NDIM: usize = 5;
    /// Largest axis.
    pub const MAX_DIM: usize = 6;
    /// Largest element stride or step.
    pub const MAX_STEP: usize = 4;

    /// A spec from raw choices, each reduced into bounds.
    pub fn new(
        dtype: u8,
        dims: &[u8],
        layout: u8,
        layout_params: &[u8],
        named: bool,
        fill: &[u8],
    ) -> Self {
        let dtype = DType::ALL[dtype as usize % DType::ALL.len()];
        let shape: Vec<usize> = dims
            .iter()
            .take(Self::MAX_NDIM)
            .map(|&d| d as usize % (Self::MAX_DIM + 1))
            .collect();
        let n = shape.len();
        let param = |i: usize| layout_params.get(i).copied().unwrap_or(i as u8) as usize;
        let layout = match layout % 5 {
            0 => Layout::RowMajor,
            1 => Layout::ColumnMajor,
            2 => Layout::Strided((0..n).map(|i| param(i) % (Self::MAX_STEP * 3)).collect()),
            3 => {
                // A permutation from the parameters: a selection sort on keys.
                let mut axes: Vec<usize> = (0..n).collect();
                axes.sort_by_key(|&i| (param(i), i));
                Layout::Permuted(axes)
            }
            _ => Layout::Sliced {
                offset: param(n) % 8,
                steps: (0..n).map(|i| 1 + param(i) % Self::MAX_STEP).collect(),
            },
        };
        TensorSpec {
            dtype,
            shape,
            layout,
            named,
            fill: fill.iter().copied().take(64).collect(),
        }
    }

    /// A spec from plain bytes (the stable replay's reading of a `roundtrip` corpus file; the
    /// libFuzzer target builds its spec with `arbitrary` instead).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
        let ndim = at(1) as usize % (Self::MAX_NDIM + 1);
        let dims: Vec<u8> = (0..ndim).map(|i| at(2 + i)).collect();
        let params: Vec<u8> = (0..=ndim).map(|i| at(8 + i)).collect();
        let rest = bytes.get(16..).unwrap_or(&[]);
        Self::new(at(0), &dims, at(7), &params, at(14) & 1 == 1, rest)
    }

    /// Builds the tensor the spec describes.
    pub fn build(&self) -> Tensor<'static> {
        let width = self.dtype.byte_width();
        let n = self.shape.len();
        let (strides, data_len) = match &self.layout {
            Layout::RowMajor => (row_major(&self.shape, width), dense(&self.shape, width)),
            Layout::ColumnMajor => {
                let strides = if self.shape.contains(&0) {
                    vec![width; n]
                } else {
                    let mut acc = width;
                    self.shape
                        .iter()
                        .map(|&d| {
                            let stride = acc;
                            acc *= d;
                            stride
                        })
                        .collect()
                };
                (strides, dense(&self.shape, width))
            }
            Layout::Strided(elements) => {
                let strides: Vec<usize> = elements.iter().map(|&e| e * width).collect();
                (strides.clone(), span(&self.shape, &strides, width))
            }
            Layout::Permuted(axes) => {
                let base: Vec<usize> = axes.iter().map(|&a| self.shape[a]).collect();
                let base_strides = row_major(&base, width);
                let mut strides = vec![0; n];
                for (k, &a) in axes.iter().enumerate() {
                    strides[a] = base_strides[k];
                }
                (strides, dense(&self.shape, width))
            }
            Layout::Sliced { offset, steps } => {
                let base: Vec<usize> = self
                    .shape
                    .iter()
                    .zip(steps)
                    .map(|(&d, &s)| d * s + 1)
                    .collect();
                let base_strides = row_major(&base, width);
                let strides: Vec<usize> = base_strides
                    .iter()
                    .zip(steps)
                    .map(|(&b, &s)| b * s)
                    .collect();
                let offset = offset * width;
                let total = dense(&base, width) + offset;
                let data = self.data(total);
                let data = tensor_ipc::TensorData::Shared(tensor_ipc::Buffer::from_vec(data))
                    .slice(offset, total - offset);
                return self.assemble(data, strides);
            }
        };
        let data =
            tensor_ipc::TensorData::Shared(tensor_ipc::Buffer::from_vec(self.data(data_len)));
        self.assemble(data, strides)
    }

    fn assemble(
        &self,
        data: tensor_ipc::TensorData<'static>,
        strides: Vec<usize>,
    ) -> Tensor<'static> {
        let names = if self.named {
            (0..self.shape.len()).map(|i| format!("d{i}")).collect()
        } else {
            Vec::new()
        };
        Tensor::with_layout(self.dtype, data, self.shape.clone(), strides, names)
            .unwrap_or_else(|e| panic!("spec {self:?} builds a valid tensor: {e}"))
    }

    fn data(&self, len: usize) -> Vec<u8> {
        let fill = if self.fill.is_empty() {
            &[0x5a][..]
        } else {
            &self.fill[..]
        };
        (0..len)
            .map(|i| fill[i % fill.len()].wrapping_add((i / fill.len()) as u8))
            .collect()
    }
}

fn row_major(shape: &[usize], width: usize) -> Vec<usize> {
    if shape.contains(&0) {
        return vec![width; shape.len()];
    }
    let mut strides = vec![0; shape.len()];
    let mut acc = width;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i];
    }
    strides
}

fn dense(shape: &[usize], width: usize) -> usize {
    shape.iter().product::<usize>() * width
}

/// Bytes a strided tensor spans: one past its last element (0 when it is empty).
fn span(shape: &[usize], strides: &[usize], width: usize) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    shape
        .iter()
        .zip(strides)
        .map(|(&d, &s)| (d - 1) * s)
        .sum::<usize>()
        + width
}

/// The `roundtrip` target: build the tensor, write it, read it back (from a slice and from an
/// odd offset), and compare.
pub fn roundtrip(spec: &TensorSpec) {
    let tensor = spec.build();
    let expected = tensor.to_row_major_bytes().unwrap();
    let mut out = Vec::new();
    let written = write_tensor(&tensor, &mut out).expect("writing a valid tensor succeeds");
    assert_eq!(written, out.len());
    assert_eq!(
        written,
        tensor_ipc::tensor_size(&tensor).expect("tensor_size")
    );
    let body = tensor.dense_byte_len();
    assert_eq!(
        (written - body) % 64,
        0,
        "the body starts 64-byte aligned in the message"
    );

    let mut source = out.as_slice();
    let back = tensor_ipc::read_tensor(&mut source).expect("reading back succeeds");
    assert!(source.is_empty(), "the message is consumed exactly");
    assert_eq!(back.dtype(), tensor.dtype());
    assert_eq!(back.shape(), tensor.shape());
    assert_eq!(back.to_row_major_bytes().unwrap(), expected);
    if tensor.is_contiguous() {
        assert_eq!(back.strides(), tensor.strides());
        assert_eq!(back.dim_names(), tensor.dim_names());
    } else {
        assert!(back.is_row_major() || back.is_empty());
        assert!(back.dim_names().is_empty());
    }
    let strict = ReadOptions::new().with_require_alignment(true);
    let mut shifted = vec![0u8; out.len() + 1];
    shifted[1..].copy_from_slice(&out);
    let lenient = tensor_ipc::read_tensor(&mut &shifted[1..]).expect("a misaligned copy reads");
    assert_eq!(lenient.to_row_major_bytes().unwrap(), expected);
    match tensor_ipc::read_tensor_with(&mut &shifted[1..], &strict) {
        Ok(t) => assert_eq!(t.to_row_major_bytes().unwrap(), expected),
        Err(Error::Misaligned { .. }) => {}
        Err(e) => panic!("strict read of a misaligned message: unexpected {e}"),
    }
}
