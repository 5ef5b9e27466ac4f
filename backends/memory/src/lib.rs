//! The in-memory backend of tensor-ipc: an aligned, growable sink and zero-copy sources over
//! shared [`Buffer`]s.
//!
//! ```
//! use tensor_ipc::{Tensor, TensorSinkExt, TensorSourceExt};
//! use tensor_ipc_memory::{BufferSource, MemorySink};
//!
//! let mut sink = MemorySink::new();
//! sink.write_tensor(&Tensor::from_vec(vec![1u8, 2, 3], vec![3])?)?;
//! let mut source = BufferSource::new(sink.into_buffer());
//! assert_eq!(source.read_tensor()?.to_vec::<u8>()?, [1, 2, 3]);
//! # Ok::<(), tensor_ipc::Error>(())
//! ```
//!
//! Byte slices are sources too: `&[u8]` implements [`TensorSource`] in the core crate.

#![warn(missing_docs)]

use arrow_buffer::{Buffer, MutableBuffer};
use tensor_ipc::{Error, Result, TensorData, TensorSink, TensorSource, check_parts_len};

/// A growable in-memory sink whose memory is 64-byte aligned (Arrow's allocation alignment).
///
/// Messages are appended back to back, exactly as Arrow C++ writes them to a stream. Memory
/// written once is reused after [`clear`](MemorySink::clear) without being zeroed again, so a
/// preallocated sink costs one copy of each message and nothing else; a message given as
/// parts ([`write_parts`](TensorSink::write_parts), a contiguous tensor) is copied once into
/// fresh memory too, without zero-filling it first.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// The allocation; its length is the high-water mark of initialised bytes.
    buffer: MutableBuffer,
    /// Bytes of committed messages.
    len: usize,
    /// End of the region lent by the last `reserve`, until it is committed.
    pending: Option<usize>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sink with room for `capacity` bytes, allocated (and zeroed) up front so that
    /// writes up to that size never reallocate or touch fresh pages.
    pub fn preallocated(capacity: usize) -> Self {
        let mut buffer = MutableBuffer::with_capacity(capacity);
        buffer.resize(capacity, 0);
        MemorySink {
            buffer,
            len: 0,
            pending: None,
        }
    }

    /// The committed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_slice()[..self.len]
    }

    /// Number of committed bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been committed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every message, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
        self.pending = None;
    }

    /// The committed bytes as a shared, immutable [`Buffer`] (no copy).
    pub fn into_buffer(mut self) -> Buffer {
        self.buffer.truncate(self.len);
        self.buffer.into()
    }
}

impl TensorSink for MemorySink {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        let end = self.len.checked_add(len).ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the sink length would overflow",
        })?;
        if end > self.buffer.len() {
            self.buffer.resize(end, 0);
        }
        self.pending = Some(end);
        Ok(&mut self.buffer.as_slice_mut()[self.len..end])
    }

    fn commit(&mut self) -> Result<()> {
        let end = self
            .pending
            .take()
            .ok_or(Error::SinkState("commit without reserve"))?;
        self.len = end;
        Ok(())
    }

    /// Copies each part once: over memory already written, or appended after it.
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        check_parts_len(len, parts)?;
        let end = self.len.checked_add(len).ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the sink length would overflow",
        })?;
        self.pending = None;
        self.buffer.reserve(end.saturating_sub(self.buffer.len()));
        let mut at = self.len;
        for part in parts {
            // The piece that lands on initialised memory, then the rest appended.
            let inside = self.buffer.len().saturating_sub(at).min(part.len());
            self.buffer.as_slice_mut()[at..at + inside].copy_from_slice(&part[..inside]);
            self.buffer.extend_from_slice(&part[inside..]);
            at += part.len();
        }
        self.len = end;
        Ok(())
    }
}

/// A source over a shared [`Buffer`]: every tensor read shares the buffer's memory.
#[derive(Clone, Debug)]
pub struct BufferSource {
    buffer: Buffer,
    position: usize,
}

impl BufferSource {
    /// A source reading `buffer` from its start.
    pub fn new(buffer: Buffer) -> Self {
        BufferSource {
            buffer,
            position: 0,
        }
    }

    /// The whole buffer, consumed or not.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// Bytes consumed so far: the offset of the next message.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buffer.len() - self.position
    }
}

impl From<Buffer> for BufferSource {
    fn from(buffer: Buffer) -> Self {
        BufferSource::new(buffer)
    }
}

impl TensorSource<'static> for BufferSource {
    fn peek(&mut self, len: usize) -> Result<&[u8]> {
        let end = self.position + len.min(self.remaining());
        Ok(&self.buffer.as_slice()[self.position..end])
    }

    fn take(&mut self, len: usize) -> Result<TensorData<'static>> {
        if len > self.remaining() {
            return Err(Error::Truncated {
                part: "input",
                expected: len as u64,
                available: self.remaining() as u64,
            });
        }
        let bytes = self.buffer.slice_with_length(self.position, len);
        self.position += len;
        Ok(TensorData::Shared(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor_ipc::{Tensor, TensorSinkExt, TensorSourceExt};

    #[test]
    fn sink_reuses_memory_without_reallocating() {
        let t = Tensor::from_vec(vec![7u32; 1024], vec![1024]).unwrap();
        let size = tensor_ipc::tensor_size(&t).unwrap();
        let mut sink = MemorySink::preallocated(size);
        let base = sink.buffer.as_ptr();
        for _ in 0..3 {
            sink.clear();
            sink.write_tensor(&t).unwrap();
            assert_eq!(sink.len(), size);
            assert_eq!(sink.buffer.as_ptr(), base);
        }
        assert_eq!(base as usize % 64, 0);
    }

    #[test]
    fn parts_overwrite_then_extend_the_written_memory() {
        let mut sink = MemorySink::new();
        sink.write_parts(6, &[b"abc", b"def"]).unwrap();
        sink.clear();
        sink.write_parts(2, &[b"x", b"y"]).unwrap();
        sink.write_parts(7, &[b"", b"1234", b"567"]).unwrap();
        assert_eq!(sink.as_bytes(), b"xy1234567");
        assert!(sink.write_parts(3, &[b"ab"]).is_err());
        assert_eq!(sink.len(), 9);
        TensorSink::reserve(&mut sink, 4).unwrap().fill(b'!');
        sink.write_parts(1, &[b"z"]).unwrap();
        assert_eq!(
            sink.as_bytes(),
            b"xy1234567z",
            "the reservation was abandoned"
        );
    }

    #[test]
    fn commit_without_reserve_is_an_error() {
        assert!(matches!(
            MemorySink::new().commit(),
            Err(Error::SinkState(_))
        ));
    }

    #[test]
    fn buffer_source_is_zero_copy() {
        let mut sink = MemorySink::new();
        sink.write_tensor(&Tensor::from_vec(vec![1.0f64; 8], vec![8]).unwrap())
            .unwrap();
        let buffer = sink.into_buffer();
        let mut source = BufferSource::new(buffer.clone());
        let t = source.read_tensor().unwrap();
        assert_eq!(t.as_bytes().as_ptr(), buffer.as_slice()[192..].as_ptr());
        assert_eq!(source.remaining(), 0);
    }
}

#[cfg(test)]
mod conformance {
    use super::*;
    use tensor_ipc::conformance::{Backend, run_all};

    struct Memory;

    impl Backend for Memory {
        type Sink = MemorySink;
        type Source = BufferSource;
        fn sink(&mut self) -> MemorySink {
            MemorySink::new()
        }
        fn source(&mut self, sink: MemorySink) -> BufferSource {
            BufferSource::new(sink.into_buffer())
        }
        fn source_from_bytes(&mut self, bytes: &[u8]) -> BufferSource {
            BufferSource::new(Buffer::from_slice_ref(bytes))
        }
    }

    #[test]
    fn memory_backend_conforms() {
        run_all(&mut Memory);
    }
}
