//! The conformance suite every backend runs (feature `conformance`).
//!
//! A backend implements [`Backend`] in its tests and calls [`run_all`]; each check panics with
//! a clear message on failure, like an assertion. Not a stable part of the public API.

use crate::dtype::DType;
use crate::error::Error;
use crate::gather::Gather;
use crate::ipc::{ReadOptions, read_tensor, tensor_size, write_tensor};
use crate::sink::{TensorSink, TensorSource, TensorSourceExt};
use crate::tensor::Tensor;
#[cfg(test)]
use crate::tensor::TensorData;

/// What a backend provides to the suite.
pub trait Backend {
    /// The backend's sink.
    type Sink: TensorSink;
    /// The backend's source.
    type Source: TensorSource<'static>;

    /// A fresh, empty sink.
    fn sink(&mut self) -> Self::Sink;

    /// A source that reads back everything `sink` received.
    fn source(&mut self, sink: Self::Sink) -> Self::Source;

    /// A source over exactly these bytes (possibly damaged), stored the backend's way.
    fn source_from_bytes(&mut self, bytes: &[u8]) -> Self::Source;
}

/// Runs every check.
pub fn run_all<B: Backend>(backend: &mut B) {
    every_dtype_round_trips(backend);
    strided_tensors_round_trip(backend);
    several_messages_read_in_order(backend);
    missing_and_damaged_data_are_errors(backend);
    whole_messages_reach_the_sink_in_one_call(backend);
    abandoned_reservations_leave_nothing_behind(backend);
}

/// A 2x3 tensor of `dtype` with values 0..6 (as the type's bytes).
fn sample(dtype: DType) -> Tensor<'static> {
    let width = dtype.byte_width();
    let mut bytes = vec![0u8; 6 * width];
    for (i, chunk) in bytes.chunks_exact_mut(width).enumerate() {
        let value: u64 = match dtype {
            DType::Float16 => u64::from(half::f16::from_f32(i as f32).to_bits()),
            DType::Float32 => u64::from((i as f32).to_bits()),
            DType::Float64 => (i as f64).to_bits(),
            _ => i as u64,
        };
        chunk.copy_from_slice(&value.to_le_bytes()[..width]);
    }
    Tensor::new(dtype, crate::Buffer::from_vec(bytes), vec![2, 3]).expect("valid sample")
}

fn assert_same(got: &Tensor<'_>, want: &Tensor<'_>, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(
        got.to_row_major_bytes().expect("gather"),
        want.to_row_major_bytes().expect("gather"),
        "{what}: values"
    );
    if !got.is_empty() {
        let address = got.as_bytes().as_ptr() as usize;
        assert_eq!(
            address % got.dtype().byte_width(),
            0,
            "{what}: data read back is not aligned for its element type"
        );
    }
}

/// Every element type writes and reads back with the same values, aligned.
pub fn every_dtype_round_trips<B: Backend>(backend: &mut B) {
    for dtype in DType::ALL {
        let tensor = sample(dtype);
        let mut sink = backend.sink();
        let written = write_tensor(&tensor, &mut sink).expect("write");
        assert_eq!(written, tensor_size(&tensor).expect("size"));
        let mut source = backend.source(sink);
        let back = read_tensor(&mut source).expect("read");
        assert_same(&back, &tensor, dtype.name());
        assert!(matches!(read_tensor(&mut source), Err(Error::EndOfStream)));
    }
}

/// Column-major tensors keep their strides; strided views come back row-major with their
/// values; names survive on contiguous tensors.
pub fn strided_tensors_round_trip<B: Backend>(backend: &mut B) {
    let base = Tensor::from_vec((0..24).collect::<Vec<i32>>(), vec![4, 6]).expect("base");
    let column_major = Tensor::from_vec((0..24).collect::<Vec<i32>>(), vec![4, 6])
        .and_then(Tensor::into_column_major)
        .and_then(|t| t.with_dim_names(["rows", "cols"]))
        .expect("column-major");
    let every_other_column = Tensor::with_layout(
        DType::Int32,
        base.data().clone(),
        vec![4, 3],
        vec![24, 8],
        Vec::new(),
    )
    .expect("view");
    let mut sink = backend.sink();
    write_tensor(&column_major, &mut sink).expect("write column-major");
    write_tensor(&every_other_column, &mut sink).expect("write view");
    let mut source = backend.source(sink);
    let back = read_tensor(&mut source).expect("read column-major");
    assert_eq!(back.strides(), column_major.strides());
    assert_eq!(back.dim_names(), ["rows", "cols"]);
    assert_same(&back, &column_major, "column-major");
    let back = read_tensor(&mut source).expect("read view");
    assert!(back.is_row_major());
    assert_same(&back, &every_other_column, "strided view");
}

/// Messages written one after another come back in order, then the stream ends.
pub fn several_messages_read_in_order<B: Backend>(backend: &mut B) {
    let tensors: Vec<Tensor<'static>> = vec![
        Tensor::from_vec(vec![1i8, 2, 3], vec![3]).expect("int8"),
        Tensor::from_vec(vec![0.5f64; 10], vec![2, 5]).expect("f64"),
        Tensor::from_vec(Vec::<u16>::new(), vec![0, 4]).expect("empty"),
        Tensor::from_vec(vec![42i64], vec![]).expect("0-d"),
    ];
    let mut sink = backend.sink();
    for t in &tensors {
        write_tensor(t, &mut sink).expect("write");
    }
    let mut source = backend.source(sink);
    let back: Vec<Tensor<'static>> = source
        .tensors(ReadOptions::default())
        .collect::<Result<_, _>>()
        .expect("read all");
    assert_eq!(back.len(), tensors.len());
    for (got, want) in back.iter().zip(&tensors) {
        assert_same(got, want, "stream");
    }
}

/// Empty, truncated and corrupted inputs give the matching errors, never a panic.
pub fn missing_and_damaged_data_are_errors<B: Backend>(backend: &mut B) {
    let mut empty = backend.source_from_bytes(&[]);
    assert!(matches!(read_tensor(&mut empty), Err(Error::EndOfStream)));

    let mut message = Vec::new();
    write_tensor(&sample(DType::Float32), &mut message).expect("write");
    for cut in [3, 7, 100, message.len() - 1] {
        let mut source = backend.source_from_bytes(&message[..cut]);
        let err = read_tensor(&mut source).expect_err("truncated input must fail");
        assert!(
            matches!(err, Error::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
    let mut garbled = message.clone();
    garbled[8..40].fill(0xAB);
    let mut source = backend.source_from_bytes(&garbled);
    assert!(matches!(
        read_tensor(&mut source),
        Err(Error::InvalidFlatbuffer(_))
    ));
}

/// What a sink was asked to do, as [`Spy`] records it.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    Reserve(usize),
    Commit,
    /// `write_parts` with the message length and each part's (address, length).
    Parts(usize, Vec<(usize, usize)>),
    /// `write_gather` with the message length, the head's length and the body's.
    Gather(usize, usize, usize),
}

/// A sink that records the calls it receives and forwards each one to the backend's sink (to
/// the same method, so the backend's own `write_parts` and `write_gather` run).
struct Spy<S> {
    inner: S,
    calls: Vec<Call>,
}

impl<S: TensorSink> TensorSink for Spy<S> {
    fn reserve(&mut self, len: usize) -> crate::Result<&mut [u8]> {
        self.calls.push(Call::Reserve(len));
        self.inner.reserve(len)
    }
    fn commit(&mut self) -> crate::Result<()> {
        self.calls.push(Call::Commit);
        self.inner.commit()
    }
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> crate::Result<()> {
        let parts_seen = parts.iter().map(|p| (p.as_ptr() as usize, p.len()));
        self.calls.push(Call::Parts(len, parts_seen.collect()));
        self.inner.write_parts(len, parts)
    }
    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> crate::Result<()> {
        self.calls.push(Call::Gather(len, head.len(), body.len()));
        self.inner.write_gather(len, head, body)
    }
}

/// The writer hands the sink each whole message in one call, so the sink can take it the
/// cheapest way: a contiguous body as one part that is the tensor's own memory (no staging
/// copy), a non-contiguous one as one gather of the body's exact size; and what the sink makes
/// of them reads back.
pub fn whole_messages_reach_the_sink_in_one_call<B: Backend>(backend: &mut B) {
    let n = 16 * 1024;
    let row_major =
        Tensor::from_vec((0..n as u32).collect::<Vec<_>>(), vec![128, 128]).expect("row-major");
    let column_major = row_major.clone().into_column_major().expect("column-major");
    let transposed = Tensor::with_layout(
        DType::UInt32,
        row_major.data().clone(),
        vec![64, 128],
        vec![4, 512],
        Vec::new(),
    )
    .expect("transposed view of half the rows");
    let mut spy = Spy {
        inner: backend.sink(),
        calls: Vec::new(),
    };
    for contiguous in [&row_major, &column_major] {
        let total = write_tensor(contiguous, &mut spy).expect("write contiguous");
        let body = (contiguous.as_bytes().as_ptr() as usize, n * 4);
        match spy.calls.as_slice() {
            [Call::Parts(len, parts)] => {
                assert_eq!(*len, total, "write_parts of the whole message");
                assert_eq!(parts.len(), 2, "the head and the body: {parts:?}");
                assert_eq!(
                    parts[1], body,
                    "the body is the tensor's memory, in one piece"
                );
            }
            calls => {
                panic!("a contiguous tensor must reach the sink as one write_parts: {calls:?}")
            }
        }
        spy.calls.clear();
    }
    let total = write_tensor(&transposed, &mut spy).expect("write transposed");
    assert_eq!(
        spy.calls,
        [Call::Gather(total, total - n * 2, n * 2)],
        "a non-contiguous tensor must reach the sink as one write_gather"
    );
    let mut source = backend.source(spy.inner);
    for want in [&row_major, &column_major, &transposed] {
        let back = read_tensor(&mut source).expect("read back");
        assert_same(&back, want, "whole message");
    }
    assert!(matches!(read_tensor(&mut source), Err(Error::EndOfStream)));
}

/// A region reserved but never committed is not part of the output: after a committed
/// message and an abandoned reservation (filled with garbage), the source holds the committed
/// message alone.
pub fn abandoned_reservations_leave_nothing_behind<B: Backend>(backend: &mut B) {
    let tensor = sample(DType::Int16);
    let mut sink = backend.sink();
    write_tensor(&tensor, &mut sink).expect("write");
    let size = tensor_size(&tensor).expect("size");
    TensorSink::reserve(&mut sink, size)
        .expect("reserve")
        .fill(0xAB);
    let mut source = backend.source(sink);
    let back = read_tensor(&mut source).expect("the committed message");
    assert_same(&back, &tensor, "before the abandoned reservation");
    assert!(
        matches!(read_tensor(&mut source), Err(Error::EndOfStream)),
        "an abandoned reservation must leave nothing in the output"
    );
}

/// A backend over plain byte vectors, to test the suite itself.
#[cfg(test)]
struct VecBackend;

#[cfg(test)]
impl Backend for VecBackend {
    type Sink = Vec<u8>;
    type Source = OwnedSource;
    fn sink(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn source(&mut self, sink: Vec<u8>) -> OwnedSource {
        OwnedSource(crate::Buffer::from_slice_ref(&sink), 0)
    }
    fn source_from_bytes(&mut self, bytes: &[u8]) -> OwnedSource {
        OwnedSource(crate::Buffer::from_slice_ref(bytes), 0)
    }
}

#[cfg(test)]
struct OwnedSource(crate::Buffer, usize);

#[cfg(test)]
impl TensorSource<'static> for OwnedSource {
    fn peek(&mut self, len: usize) -> crate::Result<&[u8]> {
        let rest = &self.0.as_slice()[self.1..];
        Ok(&rest[..len.min(rest.len())])
    }
    fn take(&mut self, len: usize) -> crate::Result<TensorData<'static>> {
        let available = self.0.len() - self.1;
        if len > available {
            return Err(Error::Truncated {
                part: "input",
                expected: len as u64,
                available: available as u64,
            });
        }
        let out = self.0.slice_with_length(self.1, len);
        self.1 += len;
        Ok(TensorData::Shared(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check but the abandoned reservation: a `Vec<u8>` has nowhere to note a pending
    /// reservation, so `reserve` appends at once (documented on its impl).
    #[test]
    fn suite_passes_on_plain_buffers() {
        let backend = &mut VecBackend;
        every_dtype_round_trips(backend);
        strided_tensors_round_trip(backend);
        several_messages_read_in_order(backend);
        missing_and_damaged_data_are_errors(backend);
        whole_messages_reach_the_sink_in_one_call(backend);
    }

    #[test]
    fn vec_reservations_are_appended_at_once() {
        let mut sink = Vec::new();
        TensorSink::reserve(&mut sink, 3).unwrap().fill(1);
        assert_eq!(sink, [1, 1, 1]);
    }
}
