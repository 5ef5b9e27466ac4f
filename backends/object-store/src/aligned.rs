//! [`AlignedBytes`]: a fallible, 64-byte aligned allocation that becomes a shared [`Buffer`]
//! without a copy. Safe code only: the memory is a `Vec` of 64-byte blocks viewed as bytes.

use arrow_buffer::Buffer;
use bytemuck::{Pod, Zeroable};

/// The alignment of every allocation, as Arrow's (and a tensor body's within its message).
pub(crate) const ALIGNMENT: usize = 64;

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Block([u8; ALIGNMENT]);

/// `len` zeroed bytes at a 64-byte aligned address.
pub(crate) struct AlignedBytes {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBytes {
    /// Allocates `len` zeroed bytes; [`tensor_ipc::Error::AllocationFailed`] when the memory
    /// is not there (a hostile length never aborts the process).
    pub(crate) fn zeroed(len: usize) -> tensor_ipc::Result<AlignedBytes> {
        let failed = || tensor_ipc::Error::AllocationFailed { bytes: len as u64 };
        let count = len.div_ceil(ALIGNMENT);
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(count).map_err(|_| failed())?;
        blocks.resize(count, Block::zeroed());
        Ok(AlignedBytes { blocks, len })
    }

    /// The bytes, writable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Block, u8>(&mut self.blocks)[..self.len]
    }

    /// The bytes as a shared buffer owning this allocation (no copy).
    pub(crate) fn into_buffer(self) -> Buffer {
        Buffer::from(bytes::Bytes::from_owner(self))
    }
}

impl AsRef<[u8]> for AlignedBytes {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice::<Block, u8>(&self.blocks)[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_zeroed_and_shared_without_a_copy() {
        for len in [0, 1, 63, 64, 65, 1000] {
            let mut bytes = AlignedBytes::zeroed(len).unwrap();
            let slice = bytes.as_mut_slice();
            assert_eq!(slice.len(), len);
            assert!(slice.iter().all(|&b| b == 0));
            slice.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
            let address = slice.as_ptr() as usize;
            let buffer = bytes.into_buffer();
            assert_eq!(buffer.len(), len);
            if len > 0 {
                assert_eq!(buffer.as_ptr() as usize, address, "no copy");
                assert_eq!(address % ALIGNMENT, 0);
                assert_eq!(buffer[len - 1], (len - 1) as u8);
            }
        }
    }

    #[test]
    fn an_impossible_size_is_an_error() {
        assert!(matches!(
            AlignedBytes::zeroed(usize::MAX - 10),
            Err(tensor_ipc::Error::AllocationFailed { .. })
        ));
    }
}
