//! Frames: `[version i64][type i64][length i64][body]`, all little-endian.

use std::io::{self, Read};
use std::os::fd::AsFd;

use crate::{Error, MAX_MESSAGE_SIZE, PROTOCOL_VERSION, Result};

/// Size of a frame header.
pub const HEADER_SIZE: usize = 24;

/// One frame as read from the wire: its raw type word and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The raw `type` word.
    pub kind: i64,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// Parses a header, checking the version and that the length is in
/// `0..=max_len`. Returns `(type, length)`.
pub fn parse_header(header: &[u8; HEADER_SIZE], max_len: u64) -> Result<(i64, usize)> {
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i * 8..i * 8 + 8]);
        i64::from_le_bytes(b)
    };
    let version = word(0);
    if version != PROTOCOL_VERSION {
        return Err(Error::BadVersion { version });
    }
    let kind = word(1);
    let length = word(2);
    let max = max_len.min(MAX_MESSAGE_SIZE);
    match u64::try_from(length) {
        Ok(len) if len <= max => {
            let len = usize::try_from(len).map_err(|_| Error::BadLength { length, max })?;
            Ok((kind, len))
        }
        _ => Err(Error::BadLength { length, max }),
    }
}

/// Reads one frame. A clean EOF before the first header byte gives
/// [`Error::Closed`]. The body buffer grows only as bytes arrive, so a
/// peer announcing a huge length and sending nothing costs no memory.
pub fn read_frame<R: Read + ?Sized>(reader: &mut R, max_len: u64) -> Result<RawFrame> {
    let mut header = [0u8; HEADER_SIZE];
    let mut got = 0;
    while got < HEADER_SIZE {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(Error::Closed),
            Ok(0) => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    let (kind, len) = parse_header(&header, max_len)?;
    let mut body = Vec::with_capacity(len.min(1 << 16));
    let read = reader.take(len as u64).read_to_end(&mut body)?;
    if read != len {
        return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(RawFrame { kind, body })
}

/// Encodes a frame (header and body) into one buffer.
pub fn encode_frame(kind: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(body.len() as i64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Sends all of `bytes` (one or more encoded frames) on a connected socket, with
/// `MSG_NOSIGNAL`: a peer that went away is an [`io::ErrorKind::BrokenPipe`] error, never a
/// SIGPIPE that kills the host process. Both the store and the client write through this.
pub fn send_all(socket: impl AsFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::net::send(&socket, bytes, rustix::net::SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_limits() {
        let bytes = encode_frame(19, &[1, 2, 3]);
        let frame = read_frame(&mut &bytes[..], MAX_MESSAGE_SIZE).unwrap();
        assert_eq!(
            frame,
            RawFrame {
                kind: 19,
                body: vec![1, 2, 3]
            }
        );

        let mut bad = bytes.clone();
        bad[0] = 1;
        assert!(matches!(
            read_frame(&mut &bad[..], MAX_MESSAGE_SIZE),
            Err(Error::BadVersion { version: 1 })
        ));
        let mut huge = encode_frame(19, &[]);
        huge[16..24].copy_from_slice(&(1i64 << 40).to_le_bytes());
        assert!(matches!(
            read_frame(&mut &huge[..], MAX_MESSAGE_SIZE),
            Err(Error::BadLength { .. })
        ));
        huge[16..24].copy_from_slice(&(-5i64).to_le_bytes());
        assert!(matches!(
            read_frame(&mut &huge[..], MAX_MESSAGE_SIZE),
            Err(Error::BadLength { length: -5, .. })
        ));
        assert!(matches!(read_frame(&mut &[][..], 10), Err(Error::Closed)));
        // Truncated body.
        assert!(matches!(
            read_frame(&mut &bytes[..26], MAX_MESSAGE_SIZE),
            Err(Error::Io(_))
        ));
    }
}
