//! Fuzz targets for `tensor-ipc`. The target bodies live in [`targets`] (shared with the stable
//! replay driver and the main crate's hostile-input test) and in [`plasma_targets`] (shared
//! with the Plasma crate's corpus test) and in [`npy_targets`] (shared with the CLI's corpus
//! test); this crate adds the `arbitrary` input of the
//! `roundtrip` target.

pub mod npy_targets;
pub mod plasma_targets;
pub mod targets;

pub use npy_targets::npy;
pub use plasma_targets::plasma_message;
pub use targets::{Outcome, TensorSpec, decode_message, decode_tensor_strict, roundtrip};

/// The structured input of the `roundtrip` target; every value is reduced into bounds by
/// [`TensorSpec::new`].
#[derive(Clone, Debug, arbitrary::Arbitrary)]
pub struct RoundtripInput {
    /// Index into the eleven element types.
    pub dtype: u8,
    /// Axis sizes (at most five are used, each reduced modulo 7).
    pub dims: Vec<u8>,
    /// Layout choice: row-major, column-major, strided, permuted, sliced.
    pub layout: u8,
    /// Strides, permutation keys or slice steps.
    pub layout_params: Vec<u8>,
    /// Name the dimensions.
    pub named: bool,
    /// Fill pattern of the data.
    pub fill: Vec<u8>,
}

impl RoundtripInput {
    /// The spec this input describes.
    pub fn spec(&self) -> TensorSpec {
        TensorSpec::new(
            self.dtype,
            &self.dims,
            self.layout,
            &self.layout_params,
            self.named,
            &self.fill,
        )
    }
}

/// Runs the `roundtrip` target on raw fuzzer bytes, as the libFuzzer binary does.
pub fn roundtrip_bytes(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    if let Ok(input) = <RoundtripInput as arbitrary::Arbitrary>::arbitrary(&mut u) {
        roundtrip(&input.spec());
    }
}
