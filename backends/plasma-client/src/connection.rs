//! The client's socket: typed calls (a request and its reply), reply polling and timeouts,
//! and the segment fds that follow some replies.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use tensor_ipc_plasma_protocol::frame::{RawFrame, read_frame, send_all};
use tensor_ipc_plasma_protocol::{MAX_MESSAGE_SIZE, Message, Request, fdpass, poll};

use crate::error::{ClientError, ClientResult};
use crate::segment::Segment;

/// The socket and what is known about it; only touched under its mutex.
pub(crate) struct Conn {
    stream: UnixStream,
    /// Mapped segments, keyed by the store's fd number, in lock-step with the store's
    /// per-connection "fds sent" set.
    pub(crate) segments: HashMap<i32, Arc<Segment>>,
    /// Set once the connection is unusable (I/O error, timeout, bad reply).
    broken: Option<String>,
    pub(crate) subscribed: bool,
    /// The socket's current read timeout, to skip redundant `setsockopt`s.
    read_timeout: Option<Duration>,
    /// How long any reply may take beyond a get's own timeout.
    request_timeout: Duration,
    /// Polls for a reply before sleeping (backing off while the CPU is contended).
    reply_poll: poll::Poller,
}

/// The client error for a failed socket operation.
pub(crate) fn io_failure(e: io::Error, timeout: Option<Duration>) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ClientError::Timeout(timeout.unwrap_or_default())
        }
        _ => ClientError::Disconnected(e.to_string()),
    }
}

impl Conn {
    /// A connection over `stream` (already connected), with writes bounded by
    /// `request_timeout`.
    pub(crate) fn new(
        stream: UnixStream,
        request_timeout: Duration,
        reply_poll: Duration,
    ) -> ClientResult<Self> {
        stream
            .set_write_timeout(Some(request_timeout))
            .map_err(ClientError::Io)?;
        Ok(Self {
            stream,
            segments: HashMap::new(),
            broken: None,
            subscribed: false,
            read_timeout: None,
            request_timeout,
            reply_poll: poll::Poller::new(reply_poll.min(Duration::from_secs(1))),
        })
    }

    /// The socket.
    pub(crate) fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Whether the connection is still usable.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// `Disconnected` once the connection is unusable.
    pub(crate) fn check(&self) -> ClientResult<()> {
        match &self.broken {
            Some(why) => Err(ClientError::Disconnected(why.clone())),
            None => Ok(()),
        }
    }

    /// Marks the connection unusable after `e` and returns `e`.
    pub(crate) fn fail(&mut self, e: ClientError) -> ClientError {
        if self.broken.is_none() {
            self.broken = Some(e.to_string());
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        e
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> ClientResult<()> {
        if self.read_timeout != timeout {
            if let Err(e) = self.stream.set_read_timeout(timeout) {
                return Err(self.fail(ClientError::Io(e)));
            }
            self.read_timeout = timeout;
        }
        Ok(())
    }

    /// Sends one message (never raising SIGPIPE).
    pub(crate) fn send<M: Message>(&mut self, message: &M) -> ClientResult<()> {
        self.check()?;
        if let Err(e) = send_all(&self.stream, &message.encode_frame()) {
            return Err(self.fail(io_failure(e, None)));
        }
        Ok(())
    }

    /// Sends `request` and reads its reply, waiting at most `timeout` (`None`: forever).
    /// A reply of another type, or one that does not decode, breaks the connection.
    pub(crate) fn call<R: Request>(
        &mut self,
        request: &R,
        timeout: Option<Duration>,
    ) -> ClientResult<R::Reply> {
        self.send(request)?;
        let frame = self.read_reply(timeout)?;
        if frame.kind != R::Reply::TYPE.0 {
            return Err(self.fail(ClientError::InvalidReply(format!(
                "expected {:?} (message type {}), got message type {}",
                R::Reply::TYPE,
                R::Reply::TYPE.0,
                frame.kind
            ))));
        }
        R::Reply::decode(&frame.body).map_err(|e| self.fail(e.into()))
    }

    /// Reads one reply frame. With `timeout == None` the wait for its first byte is
    /// unbounded (the socket keeps its request timeout, re-armed while nothing has arrived,
    /// which spares a `setsockopt` per call); once a frame has started, the rest must come
    /// within the timeout.
    fn read_reply(&mut self, timeout: Option<Duration>) -> ClientResult<RawFrame> {
        let socket_timeout = timeout.or(self.read_timeout).or(Some(self.request_timeout));
        self.set_read_timeout(socket_timeout)?;
        let mut reader = ReplyReader {
            stream: &self.stream,
            poll: Some(&self.reply_poll),
            patient: timeout.is_none(),
            started: false,
        };
        match read_frame(&mut reader, MAX_MESSAGE_SIZE) {
            Ok(frame) => Ok(frame),
            Err(tensor_ipc_plasma_protocol::Error::Closed) => Err(self.fail(
                ClientError::Disconnected("the store closed the connection".into()),
            )),
            Err(tensor_ipc_plasma_protocol::Error::Io(e))
                if e.kind() == io::ErrorKind::UnexpectedEof =>
            {
                Err(self.fail(ClientError::Disconnected(
                    "the store closed the connection inside a reply".into(),
                )))
            }
            Err(tensor_ipc_plasma_protocol::Error::Io(e)) => {
                Err(self.fail(io_failure(e, socket_timeout)))
            }
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Receives and maps the fd of segment `store_fd` if this connection has not seen it yet.
    pub(crate) fn ensure_segment(
        &mut self,
        store_fd: i32,
        mmap_size: i64,
        timeout: Duration,
    ) -> ClientResult<Arc<Segment>> {
        if let Some(s) = self.segments.get(&store_fd) {
            return Ok(s.clone());
        }
        self.set_read_timeout(Some(timeout))?;
        let fd = match fdpass::recv_fd(self.stream.as_fd()) {
            Ok(fd) => fd,
            Err(tensor_ipc_plasma_protocol::Error::Io(e)) => {
                return Err(self.fail(io_failure(e, Some(timeout))));
            }
            Err(tensor_ipc_plasma_protocol::Error::Closed) => {
                return Err(self.fail(ClientError::Disconnected(
                    "the store closed the connection".into(),
                )));
            }
            Err(e) => return Err(self.fail(e.into())),
        };
        let segment = Arc::new(Segment::map(fd, mmap_size).map_err(|e| self.fail(e))?);
        self.segments.insert(store_fd, segment.clone());
        Ok(segment)
    }
}

/// The socket as [`read_frame`] reads a reply from it: first polled by `poll` (yielding the
/// CPU between attempts, unless the CPU is contended), then read blocking; while nothing of the reply has
/// arrived and the caller waits without a timeout (`patient`), socket timeouts are retried.
struct ReplyReader<'c> {
    stream: &'c UnixStream,
    poll: Option<&'c poll::Poller>,
    patient: bool,
    started: bool,
}

impl Read for ReplyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(poller) = self.poll.take().filter(|_| !self.started) {
            let stream = self.stream;
            let polled = poller.poll(|| {
                rustix::net::recv(stream, &mut *buf, rustix::net::RecvFlags::DONTWAIT)
                    .map_err(io::Error::from)
            });
            // Data, or the end of the stream: done. Nothing yet, or an error: the blocking
            // read below sees it too.
            if let Some(Ok((n, _))) = polled {
                self.started = n > 0;
                return Ok(n);
            }
        }
        loop {
            match (&mut &*self.stream).read(buf) {
                Ok(n) => {
                    self.started |= n > 0;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if !self.started
                        && self.patient
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
