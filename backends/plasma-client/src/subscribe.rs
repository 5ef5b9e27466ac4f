//! Seal and deletion notifications.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::error::{ClientError, ClientResult};
use tensor_ipc_plasma_protocol::{MAX_MESSAGE_SIZE, ObjectId, notification};

/// One event of the store: an object was sealed, or deleted (or evicted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The object.
    pub object_id: ObjectId,
    /// Data bytes; -1 for a deletion (as the C++ client reports it).
    pub data_size: i64,
    /// Metadata bytes; -1 for a deletion.
    pub metadata_size: i64,
    /// The seal digest (8 bytes) of a seal; empty for a deletion.
    pub digest: Vec<u8>,
    /// Whether the object was deleted rather than sealed.
    pub is_deletion: bool,
}

/// The notification stream of a [`subscribe`](super::PlasmaClient::subscribe)
/// call. Iterating blocks until the next notification; use
/// [`recv_timeout`](Subscription::recv_timeout) to bound the wait. The
/// subscription lives independently of the client (dropping it closes the
/// socket, and the store drops the subscriber).
#[derive(Debug)]
pub struct Subscription {
    stream: UnixStream,
    /// Bytes of a partly received message.
    partial: Vec<u8>,
    queue: VecDeque<Notification>,
}

impl Subscription {
    pub(crate) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            partial: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// The next notification, waiting at most `timeout` (`None`: forever).
    /// `Ok(None)` when the time ran out.
    pub fn recv_timeout(
        &mut self,
        timeout: Option<Duration>,
    ) -> ClientResult<Option<Notification>> {
        if let Some(n) = self.queue.pop_front() {
            return Ok(Some(n));
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(n) = self.try_decode()? {
                return Ok(Some(n));
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
            self.stream
                .set_read_timeout(wait)
                .map_err(ClientError::Io)?;
            let mut buf = [0u8; 64 * 1024];
            let want = self.wanted().min(buf.len());
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(ClientError::Disconnected(
                        "the store closed the notification socket".into(),
                    ));
                }
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(ClientError::Disconnected(e.to_string())),
            }
        }
    }

    /// Bytes still needed to complete the current length prefix or message.
    fn wanted(&self) -> usize {
        if self.partial.len() < 8 {
            return 8 - self.partial.len();
        }
        let len = self.announced().unwrap_or(0);
        (8 + len).saturating_sub(self.partial.len()).max(1)
    }

    fn announced(&self) -> Option<usize> {
        let word: [u8; 8] = self.partial.get(..8)?.try_into().ok()?;
        usize::try_from(i64::from_le_bytes(word)).ok()
    }

    /// Decodes a complete buffered message into the queue and pops one.
    fn try_decode(&mut self) -> ClientResult<Option<Notification>> {
        if self.partial.len() < 8 {
            return Ok(None);
        }
        let len = match self.announced() {
            Some(len) if len as u64 <= MAX_MESSAGE_SIZE => len,
            _ => {
                return Err(ClientError::InvalidReply(
                    "notification length out of range".into(),
                ));
            }
        };
        if self.partial.len() < 8 + len {
            return Ok(None);
        }
        let infos = notification::decode(&self.partial[8..8 + len])?;
        self.partial.drain(..8 + len);
        for info in infos {
            self.queue.push_back(if info.is_deletion {
                Notification {
                    object_id: info.object_id,
                    data_size: -1,
                    metadata_size: -1,
                    digest: Vec::new(),
                    is_deletion: true,
                }
            } else {
                Notification {
                    object_id: info.object_id,
                    data_size: info.data_size,
                    metadata_size: info.metadata_size,
                    digest: info.digest,
                    is_deletion: false,
                }
            });
        }
        Ok(self.queue.pop_front())
    }
}

/// The notification socket, for callers that wait on it with `poll`/`select` (or read it
/// themselves, as `pyarrow.plasma`'s `get_notification_socket` users do).
impl AsFd for Subscription {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Iterator for Subscription {
    type Item = ClientResult<Notification>;

    /// Blocks until the next notification; `None` once the store is gone.
    fn next(&mut self) -> Option<Self::Item> {
        match self.recv_timeout(None) {
            Ok(Some(n)) => Some(Ok(n)),
            Ok(None) => None,
            Err(ClientError::Disconnected(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
