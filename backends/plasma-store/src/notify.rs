//! Subscribers and their bounded notification queues.
//!
//! Each subscriber has a writer thread doing blocking writes on its socket,
//! so a subscriber that does not read stalls only its own thread; the store
//! queues at most [`crate::MAX_SUBSCRIBER_QUEUE`] messages for it and drops
//! the subscription (closing its socket) beyond that.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};

use rustix::net::{SendFlags, Shutdown};

use crate::MAX_SUBSCRIBER_QUEUE;

#[derive(Default)]
struct Queue {
    messages: VecDeque<Vec<u8>>,
    closed: bool,
}

/// One subscriber: its socket and pending messages.
pub(crate) struct Subscriber {
    fd: OwnedFd,
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Subscriber {
    /// Wraps the notification socket a client sent and starts its writer.
    pub(crate) fn start(fd: OwnedFd) -> Arc<Self> {
        // The client made its end non-blocking; this side's writes are done by
        // a dedicated thread, so blocking writes are what we want.
        if let Ok(flags) = rustix::fs::fcntl_getfl(&fd) {
            let _ = rustix::fs::fcntl_setfl(&fd, flags - rustix::fs::OFlags::NONBLOCK);
        }
        let sub = Arc::new(Self {
            fd,
            queue: Mutex::default(),
            ready: Condvar::new(),
        });
        let writer = Arc::clone(&sub);
        let spawned = std::thread::Builder::new()
            .name("plasma-notify".into())
            .spawn(move || writer.run());
        if spawned.is_err() {
            sub.close();
        }
        sub
    }

    /// Queues a message. Returns false if the subscriber is gone or its queue
    /// overflowed (it is then closed).
    pub(crate) fn push(&self, message: Vec<u8>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.closed {
            return false;
        }
        if q.messages.len() >= MAX_SUBSCRIBER_QUEUE {
            drop(q);
            self.close();
            return false;
        }
        q.messages.push_back(message);
        self.ready.notify_one();
        true
    }

    /// Stops the subscription: drops queued messages and shuts the socket
    /// down, which also unblocks a writer stuck in `send`.
    pub(crate) fn close(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.closed = true;
        q.messages.clear();
        drop(q);
        let _ = rustix::net::shutdown(&self.fd, Shutdown::Both);
        self.ready.notify_all();
    }

    fn run(&self) {
        loop {
            let batch: Vec<Vec<u8>> = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.messages.is_empty() && !q.closed {
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.closed {
                    return;
                }
                q.messages.drain(..).collect()
            };
            for message in batch {
                if self.send_all(&message).is_err() {
                    self.close();
                    return;
                }
            }
        }
    }

    fn send_all(&self, mut bytes: &[u8]) -> rustix::io::Result<()> {
        while !bytes.is_empty() {
            match rustix::net::send(&self.fd, bytes, SendFlags::NOSIGNAL) {
                Ok(0) => return Err(rustix::io::Errno::PIPE),
                Ok(n) => bytes = &bytes[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    // Still non-blocking (fcntl failed): wait for room.
                    let mut fds = [rustix::event::PollFd::new(
                        &self.fd,
                        rustix::event::PollFlags::OUT,
                    )];
                    let _ = rustix::event::poll(&mut fds, None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
