//! File descriptor passing over a Unix socket, as Plasma does it: each fd
//! travels alone in a `sendmsg` whose data part is one byte (`0x14`, ignored
//! by receivers).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

use crate::{Error, Result};

/// The payload byte the original store sends with each fd.
pub const FD_PAYLOAD_BYTE: u8 = 0x14;

/// Sends `fd` over `socket` in its own 1-byte message.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    let payload = [FD_PAYLOAD_BYTE];
    loop {
        match sendmsg(
            socket,
            &[IoSlice::new(&payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives exactly one fd carried by a 1-byte message.
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut fds = Vec::new();
    let mut byte = [0u8; 1];
    let n = recv_with_fds(socket, &mut byte, &mut fds)?;
    if n == 0 {
        return Err(Error::Closed);
    }
    if fds.len() != 1 {
        return Err(Error::FdCount { count: fds.len() });
    }
    Ok(fds.pop().expect("one fd"))
}

/// One `recvmsg` into `buf` that also collects any descriptors that come
/// with the bytes into `fds` (up to 4 per call; extra ones are closed by the
/// kernel's truncation). Returns the byte count (0 at EOF).
pub fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    recv_with_fds_flags(socket, buf, fds, RecvFlags::empty())
}

/// [`recv_with_fds`] with extra flags (`DONTWAIT` for a non-blocking attempt).
pub fn recv_with_fds_flags(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    flags: RecvFlags,
) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    loop {
        match recvmsg(
            socket,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | flags,
        ) {
            Ok(msg) => {
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(rights) = m {
                        fds.extend(rights);
                    }
                }
                return Ok(msg.bytes);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn passes_one_fd() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = std::fs::File::from(
            rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap(),
        );
        file.write_all(b"hello").unwrap();
        send_fd(a.as_fd(), file.as_fd()).unwrap();
        let got = recv_fd(b.as_fd()).unwrap();
        let mut f2 = std::fs::File::from(got);
        f2.rewind().unwrap();
        let mut s = String::new();
        f2.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }
}
