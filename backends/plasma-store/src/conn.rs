//! One client connection: its socket, the bytes read ahead of the frame being parsed, the
//! descriptors that came with them, and the replies the client has not taken yet.
//!
//! A connection is served in one of two modes. Most of the time an event-loop worker serves
//! it and nothing may block: reads take what the socket holds, a frame is parsed only once
//! it is complete in the read-ahead buffer, and a reply the client does not read is kept
//! (`pending`) until the socket is writable again. A request that must wait (a Get for an
//! object not sealed yet, external-store I/O, a frame larger than the buffer) is handed,
//! with its connection, to a thread of its own, where the same code may block
//! ([`Conn::may_block`]).

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use rustix::net::{RecvFlags, SendFlags};
use tensor_ipc_plasma_protocol::fdpass::{recv_with_fds_flags, send_fd_flags};
use tensor_ipc_plasma_protocol::frame::{HEADER_SIZE, parse_header, send_all};
use tensor_ipc_plasma_protocol::{Error, MAX_MESSAGE_SIZE, Message};

use crate::segment::Segment;
use crate::server::{Polling, Shared};
use crate::state::ClientId;

/// Bytes a connection reads ahead of the frame it is parsing; frames that fit are served by
/// the event loop, larger ones on a thread of their own.
pub(crate) const READ_BUFFER: usize = 16 << 10;

/// Most descriptors kept for bytes not parsed yet; older ones are closed.
const MAX_PENDING_FDS: usize = 4;

/// What the read-ahead buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Buffered {
    /// A whole frame (or a header the frame parser will refuse).
    Frame,
    /// The start of a frame that fits the buffer, or nothing.
    Partial,
    /// The header of a frame larger than the buffer: read on a thread.
    Large,
}

/// A reply part the client has not taken yet.
enum Outgoing {
    /// Frame bytes, from the offset already sent.
    Bytes(Vec<u8>, usize),
    /// The segment fd (its 1-byte message).
    Segment(Arc<Segment>),
}

/// One client connection.
pub(crate) struct Conn {
    pub(crate) client: ClientId,
    stream: Arc<UnixStream>,
    /// Descriptors that arrived with the bytes in the buffer, each with the stream position
    /// of the byte it came with (the last byte of its `recvmsg`): only the byte that follows
    /// a Subscribe should carry one.
    fds: VecDeque<(u64, OwnedFd)>,
    /// Bytes received into the buffer so far (the stream position of `buffer[end]`).
    received: u64,
    /// Segments whose fd this connection has been sent.
    sent_segments: HashSet<i32>,
    /// Bytes received but not parsed yet: `buffer[start..end]`.
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// The client closed its end (no more bytes will come).
    eof: bool,
    /// Whether this connection is served on a thread of its own, where it may block.
    may_block: bool,
    /// The store's busy-polling period and slots.
    polling: Arc<Polling>,
    /// Whether the next wait for bytes may busy-poll first (on a thread, only the first wait
    /// for a new request).
    may_poll: bool,
    /// Whether the socket is in the epoll set (a connection that started on a thread of its
    /// own joins it the first time it is given back).
    pub(crate) watched: bool,
    /// Replies not written yet because the client is not reading; sent before anything else.
    pending: VecDeque<Outgoing>,
}

impl Read for Conn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if !self.may_block {
                // The event loop parses only frames that are complete in the buffer.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if out.len() >= self.buffer.len() {
                // A large body: straight into its destination (no descriptor belongs there).
                let mut fds = Vec::new();
                let n =
                    recv_with_fds_flags(self.stream.as_fd(), out, &mut fds, RecvFlags::empty())?;
                self.received += n as u64;
                return Ok(n);
            }
            self.wait_for_bytes()?;
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Conn {
    pub(crate) fn new(client: ClientId, stream: Arc<UnixStream>, polling: Arc<Polling>) -> Self {
        Self {
            client,
            polling,
            stream,
            fds: VecDeque::new(),
            received: 0,
            sent_segments: HashSet::new(),
            buffer: vec![0u8; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            may_block: false,
            may_poll: false,
            watched: false,
            pending: VecDeque::new(),
        }
    }

    /// The connection's socket.
    pub(crate) fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether this connection is on a thread of its own (and may block).
    pub(crate) fn may_block(&self) -> bool {
        self.may_block
    }

    /// Moves the connection to (or back from) a thread of its own.
    pub(crate) fn set_may_block(&mut self, on: bool) {
        self.may_block = on;
    }

    /// Lets the next wait for bytes (on a thread) busy-poll first.
    pub(crate) fn set_may_poll(&mut self, on: bool) {
        self.may_poll = on;
    }

    /// Whether the client closed its end.
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Whether bytes of an unfinished frame are buffered.
    pub(crate) fn mid_frame(&self) -> bool {
        self.start != self.end
    }

    /// Refills the empty buffer with one `recvmsg` that waits for data: first by
    /// busy-polling (when allowed, this store polls and a polling slot is free), then asleep.
    fn wait_for_bytes(&mut self) -> io::Result<()> {
        let polling = Arc::clone(&self.polling);
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut got = None;
        if std::mem::take(&mut self.may_poll)
            && let Some(_slot) = polling.slot()
        {
            got = polling
                .poller
                .poll(|| self.recv_once(&mut buffer, RecvFlags::DONTWAIT));
        }
        let got = got.unwrap_or_else(|| self.recv_once(&mut buffer, RecvFlags::empty()));
        self.buffer = buffer;
        (self.start, self.end) = (0, got?);
        Ok(())
    }

    /// One `recvmsg` into `out`, the buffer's free part.
    fn recv_once(&mut self, out: &mut [u8], flags: RecvFlags) -> io::Result<usize> {
        let mut fds = Vec::new();
        let n = recv_with_fds_flags(self.stream.as_fd(), out, &mut fds, flags)?;
        self.received += n as u64;
        // The kernel ends a `recvmsg` with the message that carried descriptors.
        if let Some(fd) = fds.pop()
            && n > 0
        {
            self.fds.push_back((self.received - 1, fd));
            // Never hoard descriptors a client pushes at us.
            while self.fds.len() > MAX_PENDING_FDS {
                self.fds.pop_front();
            }
        }
        Ok(n)
    }

    /// The stream position of the next byte to parse.
    fn position(&self) -> u64 {
        self.received - (self.end - self.start) as u64
    }

    /// Reads what the socket holds, without waiting, into the free part of the buffer.
    pub(crate) fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            // Nothing is pending that a descriptor could belong to.
            self.fds.clear();
        } else if self.start > 0 {
            let position = self.position();
            self.fds.retain(|(at, _)| *at >= position);
            self.buffer.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        while self.end < self.buffer.len() && !self.eof {
            let mut buffer = std::mem::take(&mut self.buffer);
            let got = self.recv_once(&mut buffer[self.end..], RecvFlags::DONTWAIT);
            self.buffer = buffer;
            match got {
                Ok(0) => self.eof = true,
                // A short read took what the socket held (or stopped at a descriptor): the
                // rest, if any, makes epoll report the connection again.
                Ok(n) if self.end + n < self.buffer.len() => {
                    self.end += n;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// What the buffer holds: a whole frame, part of one, or the header of a large one.
    pub(crate) fn buffered(&self) -> Buffered {
        let have = self.end - self.start;
        let Some(header) = self.buffer[self.start..self.end].first_chunk::<HEADER_SIZE>() else {
            return Buffered::Partial;
        };
        match parse_header(header, MAX_MESSAGE_SIZE) {
            // The parser will refuse it: let it say why.
            Err(_) => Buffered::Frame,
            Ok((_, len)) if HEADER_SIZE + len <= have => Buffered::Frame,
            Ok((_, len)) if HEADER_SIZE + len > self.buffer.len() => Buffered::Large,
            Ok(_) => Buffered::Partial,
        }
    }

    /// Sends one reply (never raising SIGPIPE). Without blocking, what the client does not
    /// take now is kept and sent when its socket is writable again.
    pub(crate) fn send<M: Message>(&mut self, message: &M) -> io::Result<()> {
        let bytes = message.encode_frame();
        if self.may_block {
            self.flush_blocking()?;
            return send_all(&*self.stream, &bytes);
        }
        self.pending.push_back(Outgoing::Bytes(bytes, 0));
        self.flush().map(|_| ())
    }

    /// Sends the segment fd if this connection has not seen it yet.
    pub(crate) fn send_segment(&mut self, shared: &Shared, key: i32) -> io::Result<()> {
        if !self.sent_segments.insert(key) {
            return Ok(());
        }
        let segment = Arc::clone(shared.lock().segment());
        if self.may_block {
            self.flush_blocking()?;
            return send_fd_flags(self.stream.as_fd(), segment.fd(), SendFlags::empty());
        }
        self.pending.push_back(Outgoing::Segment(segment));
        self.flush().map(|_| ())
    }

    /// Whether replies wait for the client to read.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Sends what is pending without blocking; true once nothing is left.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
        while let Some(next) = self.pending.front_mut() {
            let sent = match next {
                Outgoing::Bytes(bytes, at) => {
                    match rustix::net::send(&*self.stream, &bytes[*at..], flags) {
                        Ok(n) => {
                            *at += n;
                            *at == bytes.len()
                        }
                        Err(rustix::io::Errno::INTR) => false,
                        Err(rustix::io::Errno::AGAIN) => return Ok(false),
                        Err(e) => return Err(e.into()),
                    }
                }
                Outgoing::Segment(segment) => {
                    match send_fd_flags(self.stream.as_fd(), segment.fd(), SendFlags::DONTWAIT) {
                        Ok(()) => true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) => return Err(e),
                    }
                }
            };
            if sent {
                self.pending.pop_front();
            }
        }
        Ok(true)
    }

    fn flush_blocking(&mut self) -> io::Result<()> {
        while let Some(next) = self.pending.pop_front() {
            match next {
                Outgoing::Bytes(bytes, at) => send_all(&*self.stream, &bytes[at..])?,
                Outgoing::Segment(segment) => {
                    send_fd_flags(self.stream.as_fd(), segment.fd(), SendFlags::empty())?
                }
            }
        }
        Ok(())
    }

    /// Receives the descriptor that follows a Subscribe request: it travels with a 1-byte
    /// message, which may already sit in the read buffer. `Ok(None)` when it has not arrived
    /// and this connection may not wait for it.
    pub(crate) fn recv_fd(&mut self) -> Result<Option<OwnedFd>, Error> {
        if self.start == self.end && !self.may_block {
            self.fill()?;
            if self.start == self.end {
                if self.eof {
                    return Err(Error::Closed);
                }
                return Ok(None);
            }
        }
        let mut byte = [0u8; 1];
        if self.read(&mut byte)? == 0 {
            return Err(Error::Closed);
        }
        let at = self.position() - 1;
        // Descriptors that came with earlier bytes were strays.
        while self.fds.front().is_some_and(|(pos, _)| *pos < at) {
            self.fds.pop_front();
        }
        match self.fds.front() {
            Some((pos, _)) if *pos == at => Ok(self.fds.pop_front().map(|(_, fd)| fd)),
            _ => Err(Error::FdCount { count: 0 }),
        }
    }

    /// Whether the client hung up (checked without reading).
    pub(crate) fn peer_gone(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::new(&*self.stream, PollFlags::RDHUP)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
            Err(_) => true,
        }
    }
}
