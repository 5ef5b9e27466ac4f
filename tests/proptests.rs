//! Property tests: random element type, shape (0-d, empty axes, up to 4 dims), layout
//! (row-major, column-major, strided views over a larger buffer with permuted axes, steps and
//! offsets, at any byte address) and dimension names; write, read, compare. The gather on
//! every path equals the element-by-element walk. And: no input makes the reader panic.
//!
//! Expectations are computed here, independently of the crate's layout code.

use proptest::prelude::*;
use tensor_ipc::gather::{Gather, GatherOptions, GatherPath, KernelChoice, StoreChoice};
use tensor_ipc::{
    Buffer, DType, ReadOptions, Tensor, TensorData, TensorSinkExt, read_tensor, read_tensor_with,
    tensor_size, write_tensor,
};
use tensor_ipc_memory::{BufferSource, MemorySink};

/// Arrow C++ `ComputeRowMajorStrides`: every stride is the width if some axis is 0.
pub(crate) fn ref_row_major(shape: &[usize], w: usize) -> Vec<usize> {
    if shape.contains(&0) {
        return vec![w; shape.len()];
    }
    let mut strides = vec![0; shape.len()];
    let mut acc = w;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i];
    }
    strides
}

/// Arrow C++ `ComputeColumnMajorStrides`.
pub(crate) fn ref_column_major(shape: &[usize], w: usize) -> Vec<usize> {
    if shape.contains(&0) {
        return vec![w; shape.len()];
    }
    let mut strides = vec![0; shape.len()];
    let mut acc = w;
    for (i, &d) in shape.iter().enumerate() {
        strides[i] = acc;
        acc *= d;
    }
    strides
}

/// The element bytes in row-major order, element by element.
fn ref_gather(data: &[u8], shape: &[usize], strides: &[usize], w: usize) -> Vec<u8> {
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(count * w);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..count {
        let offset: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&data[offset..offset + w]);
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

/// Deterministic filler bytes (xorshift64*), so that any bit pattern (NaNs included) occurs.
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Layout {
    RowMajor,
    ColumnMajor,
    /// A view over a larger row-major parent whose axes are stored in `perm` order: axis `i`
    /// of the view starts at `starts[i]`, steps by `steps[i]`, and the parent has `pads[i]`
    /// more entries than the view needs.
    View {
        perm: Vec<usize>,
        steps: Vec<usize>,
        starts: Vec<usize>,
        pads: Vec<usize>,
    },
}

#[derive(Clone, Debug)]
struct Case {
    dtype: DType,
    shape: Vec<usize>,
    layout: Layout,
    names: Option<Vec<String>>,
    /// Extra bytes before the data: any address, not only element-aligned ones.
    lead: usize,
    seed: u64,
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'z', 'X', '_', '0', ' ', 'ö', 'ß', '字', '🦀']),
        0..5,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let dims = prop_oneof![1 => Just(0usize), 6 => 1usize..5];
    (
        prop::sample::select(DType::ALL.to_vec()),
        prop::collection::vec(dims, 0..=4),
    )
        .prop_flat_map(|(dtype, shape)| {
            let n = shape.len();
            let view = (
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                prop::collection::vec(1usize..4, n),
                prop::collection::vec(0usize..3, n),
                prop::collection::vec(0usize..2, n),
            )
                .prop_map(|(perm, steps, starts, pads)| Layout::View {
                    perm,
                    steps,
                    starts,
                    pads,
                });
            let layout = prop_oneof![
                1 => Just(Layout::RowMajor),
                1 => Just(Layout::ColumnMajor),
                3 => view,
            ];
            (
                Just(dtype),
                Just(shape),
                layout,
                prop::option::of(prop::collection::vec(name_strategy(), n)),
                0usize..9,
                any::<u64>(),
            )
        })
        .prop_map(|(dtype, shape, layout, names, lead, seed)| Case {
            dtype,
            shape,
            layout,
            names,
            lead,
            seed,
        })
}

/// The tensor of a case, and the bytes its strides index into (for the reference gather).
fn build(case: &Case) -> (Tensor<'static>, Vec<u8>) {
    let w = case.dtype.byte_width();
    let shape = &case.shape;
    let (parent_len, offset, strides) = match &case.layout {
        Layout::RowMajor => (
            shape.iter().product::<usize>() * w,
            0,
            ref_row_major(shape, w),
        ),
        Layout::ColumnMajor => (
            shape.iter().product::<usize>() * w,
            0,
            ref_column_major(shape, w),
        ),
        Layout::View {
            perm,
            steps,
            starts,
            pads,
        } => {
            let parent: Vec<usize> = (0..shape.len())
                .map(|i| {
                    let needed = if shape[i] == 0 {
                        0
                    } else {
                        (shape[i] - 1) * steps[i] + 1
                    };
                    starts[i] + needed + pads[i]
                })
                .collect();
            // Row-major over the axes in `perm` order.
            let mut parent_strides = vec![0usize; shape.len()];
            let mut acc = w;
            for &axis in perm.iter().rev() {
                parent_strides[axis] = acc;
                acc *= parent[axis].max(1);
            }
            let len = if parent.contains(&0) { 0 } else { acc };
            let offset: usize = (0..shape.len())
                .map(|i| starts[i] * parent_strides[i])
                .sum();
            let strides = (0..shape.len())
                .map(|i| parent_strides[i] * steps[i])
                .collect();
            (len, offset.min(len), strides)
        }
    };
    let bytes = filler(case.seed, case.lead + parent_len);
    let buffer = Buffer::from_vec(bytes.clone());
    // Arrow C++ (`CheckTensorStridesValidity`) bounds-checks the non-empty axes of an empty
    // tensor unless its data is empty too; a view with an empty axis is given empty data.
    let data_len = if shape.contains(&0) {
        0
    } else {
        bytes.len() - case.lead - offset
    };
    let data = TensorData::Shared(buffer.slice_with_length(case.lead + offset, data_len));
    let names = case.names.clone().unwrap_or_default();
    let t = Tensor::with_layout(case.dtype, data, shape.clone(), strides, names)
        .unwrap_or_else(|e| panic!("building {case:?}: {e}"));
    (t, bytes[case.lead + offset..].to_vec())
}

/// `cases` cases, without a failure-persistence file (this binary has no `lib.rs` to put one
/// beside); a failure prints the minimal case instead.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn write_then_read_round_trips(case in case_strategy()) {
        let (t, raw) = build(&case);
        let w = case.dtype.byte_width();
        let shape = &case.shape;
        let expected_values = ref_gather(&raw, shape, t.strides(), w);
        let contiguous = t.strides() == ref_row_major(shape, w)
            || t.strides() == ref_column_major(shape, w);
        prop_assert_eq!(t.is_contiguous(), contiguous, "is_contiguous of {:?}", t.strides());
        prop_assert_eq!(t.to_row_major_bytes().unwrap(), expected_values.clone());

        let mut message = Vec::new();
        let written = write_tensor(&t, &mut message).unwrap();
        prop_assert_eq!(written, message.len());
        prop_assert_eq!(tensor_size(&t).unwrap(), written);
        let body_len = expected_values.len();
        prop_assert_eq!((written - body_len) % 64, 0, "body must start 64-aligned");

        let back = read_tensor(&mut message.as_slice()).unwrap();
        prop_assert_eq!(back.dtype(), case.dtype);
        prop_assert_eq!(back.shape(), &shape[..]);
        let expected_strides = if contiguous {
            t.strides().to_vec()
        } else {
            ref_row_major(shape, w)
        };
        prop_assert_eq!(back.strides(), &expected_strides[..]);
        prop_assert_eq!(back.to_row_major_bytes().unwrap(), expected_values.clone());
        let keeps_names = contiguous
            && case.names.as_ref().is_some_and(|n| n.iter().any(|s| !s.is_empty()));
        if keeps_names {
            prop_assert_eq!(back.dim_names(), &case.names.clone().unwrap()[..]);
        } else {
            prop_assert!(back.dim_names().is_empty(), "names {:?}", back.dim_names());
        }
        if contiguous {
            // The body is the input's memory as it is.
            prop_assert_eq!(&message[written - body_len..], &raw[..body_len]);
        }

        // The writer overwrites every byte of the region it reserves: a reused sink full of
        // stale bytes gets the same message.
        let mut stale = MemorySink::preallocated(written + 64);
        stale
            .write_tensor(&Tensor::from_vec(vec![0xA5u8; written], vec![written]).unwrap())
            .unwrap();
        stale.clear();
        prop_assert_eq!(write_tensor(&t, &mut stale).unwrap(), written);
        prop_assert_eq!(stale.as_bytes(), &message[..], "written over stale bytes");

        // The same view over borrowed bytes (at another address) writes the same message.
        let copy = t.as_bytes().to_vec();
        let borrowed = Tensor::with_layout(
            case.dtype,
            TensorData::Borrowed(&copy),
            shape.clone(),
            t.strides().to_vec(),
            t.dim_names().to_vec(),
        )
        .unwrap();
        let mut again = Vec::new();
        write_tensor(&borrowed, &mut again).unwrap();
        prop_assert_eq!(&again, &message, "borrowed data");

        // Reading back and writing again gives the same bytes (through the aligned sink).
        let mut sink = MemorySink::new();
        prop_assert_eq!(write_tensor(&back, &mut sink).unwrap(), written);
        prop_assert_eq!(sink.as_bytes(), &message[..]);

        // From a shared buffer the read is zero-copy (the body is 64-aligned in the sink).
        let buffer = sink.into_buffer();
        let zc = read_tensor(&mut BufferSource::new(buffer.clone())).unwrap();
        if body_len > 0 {
            prop_assert_eq!(zc.as_bytes().as_ptr(), buffer.as_slice()[written - body_len..].as_ptr());
        }
        prop_assert_eq!(zc.to_row_major_bytes().unwrap(), expected_values);
    }
}

/// A valid message to mutate: a small tensor of any type, sometimes named or column-major.
fn valid_message() -> impl Strategy<Value = Vec<u8>> {
    case_strategy().prop_map(|case| {
        let (t, _) = build(&case);
        let mut out = Vec::new();
        write_tensor(&t, &mut out).unwrap();
        out
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
    /// Overwrite 8 bytes with an i64 (lengths, sizes, strides are i64 in the metadata).
    SetI64(usize, i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let big = prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1i64),
        Just(0i64),
        Just(1i64 << 32),
        any::<i64>()
    ];
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        2 => (any::<usize>(), big).prop_map(|(i, v)| Mutation::SetI64(i, v)),
    ]
}

fn apply(message: &mut Vec<u8>, m: &Mutation) {
    if message.is_empty() {
        return;
    }
    let n = message.len();
    match *m {
        Mutation::Set(i, b) => message[i % n] = b,
        Mutation::Flip(i, bit) => message[i % n] ^= 1 << bit,
        Mutation::Truncate(i) => message.truncate(i % n),
        Mutation::Insert(i, b) => message.insert(i % (n + 1), b),
        Mutation::Remove(i) => {
            message.remove(i % n);
        }
        Mutation::SetI64(i, v) => {
            let at = (i % n).min(n.saturating_sub(8));
            let end = (at + 8).min(n);
            message[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
        }
    }
}

/// Reads every message of `bytes` in every mode; whatever is accepted must be usable.
fn read_all_without_panicking(bytes: &[u8]) {
    let strict = ReadOptions::new().with_require_alignment(true);
    for options in [ReadOptions::new(), strict] {
        let mut slice = bytes;
        for _ in 0..4 {
            match read_tensor_with(&mut slice, &options) {
                Ok(t) => exercise(&t),
                Err(_) => break,
            }
        }
        let mut source = BufferSource::new(Buffer::from_slice_ref(bytes));
        for _ in 0..4 {
            match read_tensor_with(&mut source, &options) {
                Ok(t) => exercise(&t),
                Err(_) => break,
            }
        }
    }
}

/// An accepted tensor is internally consistent: every element can be gathered, and it can be
/// written again and read back to the same values.
fn exercise(t: &Tensor<'_>) {
    // Accepted dimensions may be huge only if some axis is 0; gathering is bounded by the
    // data, which the reader checked.
    let values = t.to_row_major_bytes().unwrap();
    assert_eq!(values.len(), t.len() * t.dtype().byte_width());
    let mut out = Vec::new();
    let n = write_tensor(t, &mut out).expect("an accepted tensor can be written");
    assert_eq!(n, tensor_size(t).unwrap());
    let back = read_tensor(&mut out.as_slice()).expect("what we write we read");
    assert_eq!(back.to_row_major_bytes().unwrap(), values);
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read_all_without_panicking(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        legacy in any::<bool>(),
    ) {
        // Get past the framing checks so the flatbuffer verifier sees the garbage.
        let len = (bytes.len() as i32).to_le_bytes();
        let mut message = if legacy { Vec::new() } else { vec![0xFF; 4] };
        message.extend(len);
        message.extend(&bytes);
        read_all_without_panicking(&message);
    }

    #[test]
    fn mutated_messages_never_panic(
        message in valid_message(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut message = message;
        for m in &mutations {
            apply(&mut message, m);
        }
        read_all_without_panicking(&message);
    }
}

/// A strided view for the gather properties: element width, shape, byte strides, and the
/// length of the parent buffer the strides index into.
#[derive(Clone, Debug)]
struct View {
    width: usize,
    shape: Vec<usize>,
    strides: Vec<usize>,
    parent_len: usize,
    /// The path the view must take, when its kind fixes one.
    path: Option<GatherPath>,
}

/// Any permuted, stepped, padded view of up to 4 dimensions.
fn any_view() -> impl Strategy<Value = View> {
    (
        prop::sample::select(vec![1usize, 2, 4, 8]),
        prop::collection::vec(1usize..10, 1..=4),
    )
        .prop_flat_map(|(width, shape)| {
            let n = shape.len();
            (
                Just(width),
                Just(shape),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                prop::collection::vec(1usize..4, n),
                prop::collection::vec(0usize..3, n),
            )
        })
        .prop_map(|(width, shape, perm, steps, pads)| {
            // A row-major parent whose axes are stored in `perm` order.
            let parent: Vec<usize> = (0..shape.len())
                .map(|i| (shape[i] - 1) * steps[i] + 1 + pads[i])
                .collect();
            let mut parent_strides = vec![0usize; shape.len()];
            let mut acc = width;
            for &axis in perm.iter().rev() {
                parent_strides[axis] = acc;
                acc *= parent[axis];
            }
            let strides = (0..shape.len())
                .map(|i| parent_strides[i] * steps[i])
                .collect();
            View {
                width,
                shape,
                strides,
                parent_len: acc,
                path: None,
            }
        })
}

/// A 2-D transpose of single elements inside a 3-D view, wide enough for the blocked
/// transpose, with padded columns and ragged edges.
fn transpose_view() -> impl Strategy<Value = View> {
    prop::sample::select(vec![1usize, 2, 4, 8])
        .prop_flat_map(|width| {
            (
                Just(width),
                1usize..3,
                // Past two of the widest blocks (256 rows of bytes), with the rows left over.
                (16 / width)..(16 / width + 90).max(600 / width),
                (64 / width)..(64 / width + 100),
                0usize..5,
            )
        })
        .prop_map(|(width, outer, rows, cols, pad)| {
            // The parent is (outer, cols, rows + pad) row-major; the view reads it as
            // (outer, rows, cols).
            let col_stride = (rows + pad) * width;
            let plane = cols * col_stride;
            View {
                width,
                shape: vec![outer, rows, cols],
                strides: vec![plane, width, col_stride],
                parent_len: outer * plane,
                path: Some(GatherPath::PlaneTranspose),
            }
        })
}

/// A transpose of runs of `k` elements (`(cols, rows, k)` read as `(rows, cols, k)`), whose
/// rows are padded so the runs are not single contiguous elements: the tiled path.
fn tiled_view() -> impl Strategy<Value = View> {
    (
        prop::sample::select(vec![1usize, 2, 4, 8]),
        2usize..70,
        2usize..40,
        1usize..20,
        1usize..3,
    )
        .prop_map(|(width, rows, cols, k, pad)| {
            let row_stride = (k + pad) * width;
            let col_stride = rows * row_stride;
            View {
                width,
                shape: vec![rows, cols, k],
                strides: vec![row_stride, col_stride, width],
                parent_len: cols * col_stride,
                path: Some(GatherPath::PlaneTiles),
            }
        })
}

fn gather_options() -> impl Strategy<Value = GatherOptions> {
    (
        prop::sample::select(vec![
            StoreChoice::Auto,
            StoreChoice::Normal,
            StoreChoice::Streaming,
        ]),
        prop::sample::select(vec![KernelChoice::Auto, KernelChoice::Portable]),
    )
        .prop_map(|(stores, kernels)| GatherOptions { stores, kernels })
}

/// Gathers `view` with `options` into a destination at `dst_offset` bytes into a buffer
/// full of `stale` bytes, and in pieces of at most `piece` bytes, and compares both with the
/// element-by-element walk.
fn check_gather(
    view: &View,
    options: GatherOptions,
    dst_offset: usize,
    piece: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let src = filler(seed, view.parent_len);
    let want = ref_gather(&src, &view.shape, &view.strides, view.width);
    let gather = Gather::new(&src, &view.shape, &view.strides, view.width).unwrap();
    if let Some(path) = view.path {
        prop_assert_eq!(gather.path(), path, "{:?}", view);
    }
    prop_assert_eq!(gather.len(), want.len());
    for stale in [0x00u8, 0xFF] {
        let mut buffer = vec![stale; dst_offset + want.len() + 16];
        let dst = &mut buffer[dst_offset..dst_offset + want.len()];
        gather.write_to_with(dst, options).unwrap();
        prop_assert!(
            dst == &want[..],
            "{:?} {:?} at +{}",
            view,
            options,
            dst_offset
        );
        prop_assert!(
            buffer[..dst_offset].iter().all(|&b| b == stale),
            "wrote before"
        );
        prop_assert!(
            buffer[dst_offset + want.len()..]
                .iter()
                .all(|&b| b == stale),
            "wrote after"
        );
    }
    let mut pieces = Vec::new();
    for part in gather.chunks(piece) {
        prop_assert!(part.len() <= piece.max(view.width));
        part.append_to(&mut pieces).unwrap();
    }
    prop_assert!(pieces == want, "{:?} in pieces of {}", view, piece);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// The gather, on every path (row by row, tiles, blocked transpose; normal and streaming
    /// stores; SSE2 and portable kernels; at any destination alignment; whole or in pieces)
    /// writes exactly the element-by-element gather, and nothing outside its destination.
    #[test]
    fn gather_equals_the_element_walk(
        view in prop_oneof![2 => any_view(), 1 => transpose_view(), 1 => tiled_view()],
        options in gather_options(),
        dst_offset in 0usize..17,
        piece in 1usize..5000,
        seed in any::<u64>(),
    ) {
        check_gather(&view, options, dst_offset, piece, seed)?;
    }
}
