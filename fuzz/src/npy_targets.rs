//! The body of the `npy` fuzz target: hostile `.npy` files through the CLI's header parser
//! (`tensor_ipc_cli::npy`) and, when the header parses and the data is there, through what
//! `tensor-ipc convert` does with it: the tensor over the data, its message, and (for small
//! arrays) every sparse conversion within a small output bound. Shared by the libFuzzer
//! binary, the stable replay driver and the CLI's test binary (`cli/tests/fuzz_corpus.rs`).

use tensor_ipc::sparse::FromDenseOptions;
use tensor_ipc::{SparseFormat, SparseTensor, Tensor, TensorData, layout, write_tensor};
use tensor_ipc_cli::npy;

/// The most bytes a sparse conversion of a fuzz input may make.
const MAX_OUTPUT: u64 = 1 << 20;

/// Runs one input; panics only when an invariant breaks.
pub fn npy(data: &[u8]) {
    let Ok(header) = npy::parse_header(data) else {
        return;
    };
    assert!(
        header.data_offset <= data.len(),
        "the header lies inside the input"
    );
    let width = header.dtype.byte_width();
    assert_eq!(
        layout::dense_byte_len(&header.shape, width).ok(),
        Some(header.data_len)
    );
    // numpy's own header for the same array parses to the same array.
    let again = npy::format_header(header.dtype, &header.shape, header.fortran_order)
        .expect("every parsed dtype has a .npy spelling");
    let reparsed = npy::parse_header(&again).expect("format_header output parses");
    assert_eq!(
        (reparsed.dtype, &reparsed.shape, reparsed.fortran_order),
        (header.dtype, &header.shape, header.fortran_order)
    );
    let body = &data[header.data_offset..];
    if body.len() != header.data_len {
        return;
    }
    let strides = if header.fortran_order {
        layout::column_major_strides(&header.shape, width)
    } else {
        layout::row_major_strides(&header.shape, width)
    };
    let Ok(strides) = strides else { return };
    let tensor = Tensor::with_layout(
        header.dtype,
        TensorData::Borrowed(body),
        header.shape.clone(),
        strides,
        Vec::new(),
    )
    .expect("a parsed header's shape fits its data");
    let mut message = Vec::new();
    write_tensor(&tensor, &mut message).expect("a valid tensor encodes");
    let options = FromDenseOptions::default().with_max_output_bytes(MAX_OUTPUT);
    for format in SparseFormat::ALL {
        // Errors are fine (shape, bound); panics are not.
        if let Ok(sparse) = SparseTensor::from_dense_with(&tensor, format, &options) {
            let dense = sparse.to_dense().expect("a converted tensor densifies");
            assert_eq!(dense.shape(), tensor.shape());
        }
    }
}
