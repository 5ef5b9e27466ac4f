//! Where messages go ([`TensorSink`]) and where they come from ([`TensorSource`]).
//!
//! Both traits are small and synchronous so that any backend (a growable buffer, a file, a
//! shared-memory object) can implement them; the conveniences live in [`TensorSinkExt`] and
//! [`TensorSourceExt`], implemented for every sink and source.

use crate::error::{Error, Result};
use crate::gather::Gather;
use crate::ipc::{self, Message, MessageHeader, ReadOptions};
use crate::tensor::{Tensor, TensorData};

/// A destination for tensor messages.
///
/// The writer announces each message's exact size before writing a byte of it and hands the
/// sink the whole message at once, so each sink takes it the cheapest way its medium allows
/// (one copy of the body, no intermediate buffer):
///
/// * [`write_parts`](TensorSink::write_parts): every byte already sits in memory (a
///   contiguous tensor's header and data, a sparse tensor's buffers);
/// * [`write_gather`](TensorSink::write_gather): a header, then a non-contiguous body to be
///   gathered into row-major order;
/// * [`reserve`](TensorSink::reserve) and [`commit`](TensorSink::commit): the sink lends a
///   region of the message's size, the caller writes it, then commits. Both methods above
///   default to this, so a sink needs only these two.
///
/// A reservation that is not committed is abandoned: the next `reserve`, or the end of the
/// sink, discards it, and it never becomes part of the output (the conformance suite checks
/// this; the one exception is `Vec<u8>`, which has nowhere to note a pending reservation).
pub trait TensorSink {
    /// Lends a writable region of exactly `len` bytes for the next message. Its initial
    /// contents are unspecified: the writer overwrites every byte.
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]>;

    /// Completes the message written into the region returned by the last
    /// [`reserve`](TensorSink::reserve).
    fn commit(&mut self) -> Result<()>;

    /// Writes one whole message of `len` bytes given as `parts`, in order, whose lengths add
    /// up to `len`. The writers call this instead of `reserve`/`commit` when every byte of the
    /// message already sits in memory (a contiguous tensor, a sparse tensor's buffers).
    ///
    /// The default reserves `len` bytes, copies the parts and commits. A sink may override it
    /// to work on each piece while it is still in the CPU cache: the Plasma sink computes its
    /// seal digest that way instead of reading the whole object again.
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        check_parts_len(len, parts)?;
        let region = self.reserve(len)?;
        if region.len() != len {
            return Err(Error::SinkState(
                "reserve returned a region of the wrong size",
            ));
        }
        copy_parts(region, parts)?;
        self.commit()
    }

    /// Writes one whole message of `len` bytes: `head`, then the bytes of `body` (whose
    /// lengths add up to `len`). The writer calls this for a non-contiguous tensor, whose body
    /// is gathered into row-major order; the sink decides where the gather writes (into its
    /// reserved region, its spare capacity, or piece by piece through a small staging buffer
    /// with [`Gather::chunks`]).
    ///
    /// The default reserves `len` bytes, copies `head`, gathers the body after it and
    /// commits.
    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> Result<()> {
        check_gather_len(len, head, body)?;
        let region = self.reserve(len)?;
        if region.len() != len {
            return Err(Error::SinkState(
                "reserve returned a region of the wrong size",
            ));
        }
        let (head_region, body_region) = region.split_at_mut(head.len());
        head_region.copy_from_slice(head);
        body.write_to(body_region)?;
        self.commit()
    }
}

/// Checks that `head` and `body` add up to exactly `len` bytes ([`Error::SinkState`]
/// otherwise), before a sink reserves or creates anything for them.
pub fn check_gather_len(len: usize, head: &[u8], body: &Gather<'_>) -> Result<()> {
    if head.len().checked_add(body.len()) != Some(len) {
        return Err(Error::SinkState(
            "the message head and body do not add up to the message length",
        ));
    }
    Ok(())
}

/// Checks that `parts` add up to exactly `len` bytes ([`Error::SinkState`] otherwise), before
/// a sink reserves or creates anything for them.
pub fn check_parts_len(len: usize, parts: &[&[u8]]) -> Result<()> {
    let total = parts
        .iter()
        .try_fold(0usize, |sum, p| sum.checked_add(p.len()));
    if total != Some(len) {
        return Err(Error::SinkState(
            "the message parts do not add up to the message length",
        ));
    }
    Ok(())
}

/// Copies `parts`, one after another, into `region`, whose length must be exactly the sum of
/// theirs ([`Error::SinkState`] otherwise). The building block of
/// [`TensorSink::write_parts`].
pub fn copy_parts(region: &mut [u8], parts: &[&[u8]]) -> Result<()> {
    check_parts_len(region.len(), parts)?;
    let mut at = 0;
    for part in parts {
        region[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(())
}

/// A source of tensor messages, read zero-copy where the source's memory allows it.
///
/// `'a` is how long the returned bytes may be borrowed: `'static` for sources that hand out
/// shared buffers (a [`Buffer`](arrow_buffer::Buffer), an mmap), the slice's lifetime for a
/// source over borrowed bytes.
pub trait TensorSource<'a> {
    /// Returns up to `len` upcoming bytes without consuming them; fewer only at the end of the
    /// input.
    fn peek(&mut self, len: usize) -> Result<&[u8]>;

    /// Consumes exactly `len` bytes and returns them, sharing memory rather than copying
    /// where the source can. [`Error::Truncated`] if fewer remain.
    fn take(&mut self, len: usize) -> Result<TensorData<'a>>;

    /// Consumes exactly `len` bytes without returning them. [`Error::Truncated`] if fewer
    /// remain.
    ///
    /// The default takes the bytes and drops them. A source that fetches bytes on demand (an
    /// object store) overrides it to move past them without fetching them, which is how
    /// [`read_message_header`](crate::read_message_header) reads a header without its body.
    fn skip(&mut self, len: usize) -> Result<()> {
        self.take(len).map(drop)
    }
}

impl<S: TensorSink + ?Sized> TensorSink for &mut S {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        (**self).reserve(len)
    }
    fn commit(&mut self) -> Result<()> {
        (**self).commit()
    }
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        (**self).write_parts(len, parts)
    }
    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> Result<()> {
        (**self).write_gather(len, head, body)
    }
}

impl<'a, S: TensorSource<'a> + ?Sized> TensorSource<'a> for &mut S {
    fn peek(&mut self, len: usize) -> Result<&[u8]> {
        (**self).peek(len)
    }
    fn take(&mut self, len: usize) -> Result<TensorData<'a>> {
        (**self).take(len)
    }
    fn skip(&mut self, len: usize) -> Result<()> {
        (**self).skip(len)
    }
}

/// Appends messages to a `Vec<u8>` (which may reallocate; see the memory backend for an
/// aligned sink).
///
/// Whole messages are appended without zero-filling: [`write_parts`](TensorSink::write_parts)
/// grows the vector once and extends it with each part, and
/// [`write_gather`](TensorSink::write_gather) gathers the body straight into the spare
/// capacity. [`reserve`](TensorSink::reserve) appends `len` zero bytes at once (the vector
/// has no room to note a pending reservation, so an uncommitted one stays; truncate the
/// vector to drop it) and `commit` does nothing.
impl TensorSink for Vec<u8> {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        let start = self.len();
        let end = start.checked_add(len).ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the vector length would overflow",
        })?;
        self.try_reserve(len)
            .map_err(|_| Error::AllocationFailed { bytes: len as u64 })?;
        self.resize(end, 0);
        Ok(&mut self[start..])
    }
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        check_parts_len(len, parts)?;
        self.try_reserve(len)
            .map_err(|_| Error::AllocationFailed { bytes: len as u64 })?;
        for part in parts {
            self.extend_from_slice(part);
        }
        Ok(())
    }
    fn write_gather(&mut self, len: usize, head: &[u8], body: &Gather<'_>) -> Result<()> {
        check_gather_len(len, head, body)?;
        self.try_reserve(len)
            .map_err(|_| Error::AllocationFailed { bytes: len as u64 })?;
        self.extend_from_slice(head);
        body.append_to(self)
    }
}

/// Reads messages from the front of a byte slice, advancing it past each one (like
/// `std::io::Read for &[u8]`), borrowing the bytes zero-copy.
impl<'a> TensorSource<'a> for &'a [u8] {
    fn peek(&mut self, len: usize) -> Result<&[u8]> {
        Ok(&self[..len.min(self.len())])
    }
    fn take(&mut self, len: usize) -> Result<TensorData<'a>> {
        if len > self.len() {
            return Err(Error::Truncated {
                part: "input",
                expected: len as u64,
                available: self.len() as u64,
            });
        }
        let (head, tail) = self.split_at(len);
        *self = tail;
        Ok(TensorData::Borrowed(head))
    }
}

/// Conveniences for every [`TensorSink`].
pub trait TensorSinkExt: TensorSink {
    /// Writes one dense tensor message; see [`write_tensor`](crate::write_tensor).
    fn write_tensor(&mut self, tensor: &Tensor<'_>) -> Result<usize> {
        ipc::write_tensor(tensor, self)
    }
}

impl<S: TensorSink + ?Sized> TensorSinkExt for S {}

/// Conveniences for every [`TensorSource`].
pub trait TensorSourceExt<'a>: TensorSource<'a> {
    /// Reads one dense tensor; see [`read_tensor`](crate::read_tensor).
    fn read_tensor(&mut self) -> Result<Tensor<'a>> {
        ipc::read_tensor(self)
    }

    /// Reads the next message of any kind, `None` at the end of the stream.
    fn read_message(&mut self, options: &ReadOptions) -> Result<Option<Message<'a>>> {
        ipc::read_message(self, options)
    }

    /// Reads the next message's header and moves past its body without reading it, `None`
    /// at the end of the stream; see [`read_message_header`](crate::read_message_header).
    fn read_message_header(&mut self, options: &ReadOptions) -> Result<Option<MessageHeader>> {
        ipc::read_message_header(self, options)
    }

    /// Iterates over the dense tensors of a stream until its end; stops after the first error.
    fn tensors(&mut self, options: ReadOptions) -> Tensors<'_, 'a, Self> {
        Tensors {
            source: self,
            options,
            done: false,
            _data: std::marker::PhantomData,
        }
    }
}

impl<'a, S: TensorSource<'a> + ?Sized> TensorSourceExt<'a> for S {}

/// The iterator returned by [`TensorSourceExt::tensors`].
#[derive(Debug)]
pub struct Tensors<'s, 'a, S: ?Sized> {
    source: &'s mut S,
    options: ReadOptions,
    done: bool,
    _data: std::marker::PhantomData<TensorData<'a>>,
}

impl<'a, S: TensorSource<'a> + ?Sized> Iterator for Tensors<'_, 'a, S> {
    type Item = Result<Tensor<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = ipc::read_message(self.source, &self.options)
            .and_then(|m| m.map(|m| m.into_tensor(&self.options)).transpose());
        match item {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that only implements `reserve` and `commit`, recording its calls.
    #[derive(Default)]
    struct Recording {
        bytes: Vec<u8>,
        calls: Vec<&'static str>,
    }

    impl TensorSink for Recording {
        fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
            self.calls.push("reserve");
            self.bytes = vec![0xEE; len];
            Ok(&mut self.bytes)
        }
        fn commit(&mut self) -> Result<()> {
            self.calls.push("commit");
            Ok(())
        }
    }

    #[test]
    fn write_parts_defaults_to_reserve_copy_commit() {
        let mut sink = Recording::default();
        sink.write_parts(7, &[b"ab", b"", b"cde", b"fg"]).unwrap();
        assert_eq!(sink.bytes, b"abcdefg");
        assert_eq!(sink.calls, ["reserve", "commit"]);
        // Through `&mut S` too.
        let mut sink = Recording::default();
        <&mut Recording as TensorSink>::write_parts(&mut &mut sink, 3, &[b"xyz"]).unwrap();
        assert_eq!(sink.bytes, b"xyz");
    }

    #[test]
    fn parts_that_do_not_fill_the_region_are_refused() {
        let mut region = [0u8; 4];
        assert!(matches!(
            copy_parts(&mut region, &[b"abc"]),
            Err(Error::SinkState(_))
        ));
        assert!(matches!(
            copy_parts(&mut region, &[b"abc", b"de"]),
            Err(Error::SinkState(_))
        ));
        assert_eq!(region, [0; 4], "nothing written on refusal");
        let mut sink = Recording::default();
        assert!(sink.write_parts(5, &[b"abc"]).is_err());
        assert!(sink.calls.is_empty(), "checked before anything is reserved");
    }
}
