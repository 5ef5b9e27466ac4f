//! Subscribers, their notification queues, and the one memory budget all queues share.
//!
//! Each subscriber has a writer thread doing blocking writes on its socket, so a subscriber
//! that does not read stalls only its own thread. A notification is encoded once and shared
//! by every queue it is in. What the queues hold together is bounded by a [`Budget`]
//! (`--notification-memory`): a notification that would exceed it first drops the slowest
//! subscribers (those with the most bytes queued), with a log line each, closing their
//! sockets; each queue is also bounded by [`crate::MAX_SUBSCRIBER_QUEUE`] messages.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rustix::net::{SendFlags, Shutdown};

use crate::MAX_SUBSCRIBER_QUEUE;
use crate::state::ClientId;

/// A notification message, encoded once and shared by the queues it is in.
pub(crate) type Notification = Arc<[u8]>;

/// What a queued notification costs a queue beyond its bytes (its entry in the queue).
const ENTRY_COST: usize = std::mem::size_of::<Notification>();

/// The budget of bytes all subscribers' queues hold together.
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The bytes queued for all subscribers.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The bound.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// What queuing `message` costs one queue.
    pub(crate) fn cost(message: &Notification) -> usize {
        message.len() + ENTRY_COST
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Notification>,
    /// Bytes charged to the budget for `messages` (and the one being written).
    bytes: usize,
    closed: bool,
}

/// One subscriber: its socket and pending messages.
pub(crate) struct Subscriber {
    client: ClientId,
    fd: OwnedFd,
    queue: Mutex<Queue>,
    ready: Condvar,
    budget: Arc<Budget>,
}

impl Subscriber {
    /// Wraps the notification socket a client sent and starts its writer.
    pub(crate) fn start(client: ClientId, fd: OwnedFd, budget: Arc<Budget>) -> Arc<Self> {
        // The client made its end non-blocking; this side's writes are done by
        // a dedicated thread, so blocking writes are what we want.
        if let Ok(flags) = rustix::fs::fcntl_getfl(&fd) {
            let _ = rustix::fs::fcntl_setfl(&fd, flags - rustix::fs::OFlags::NONBLOCK);
        }
        let sub = Arc::new(Self {
            client,
            fd,
            queue: Mutex::default(),
            ready: Condvar::new(),
            budget,
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

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client that subscribed.
    pub(crate) fn client(&self) -> ClientId {
        self.client
    }

    /// Bytes queued for this subscriber (what it has not read yet).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue().bytes
    }

    /// Messages queued for this subscriber.
    pub(crate) fn queued_messages(&self) -> usize {
        self.queue().messages.len()
    }

    /// Queues a message, charging the budget (the caller made room in it). Returns false if
    /// the subscriber is gone or its queue overflowed (it is then closed).
    pub(crate) fn push(&self, message: &Notification) -> bool {
        let mut q = self.queue();
        if q.closed {
            return false;
        }
        if q.messages.len() >= MAX_SUBSCRIBER_QUEUE {
            drop(q);
            self.close();
            return false;
        }
        let cost = Budget::cost(message);
        self.budget.used.fetch_add(cost, Ordering::AcqRel);
        q.bytes += cost;
        q.messages.push_back(Arc::clone(message));
        self.ready.notify_one();
        true
    }

    /// Stops the subscription: drops queued messages (giving their bytes back to the
    /// budget) and shuts the socket down, which also unblocks a writer stuck in `send`.
    pub(crate) fn close(&self) {
        let mut q = self.queue();
        if !q.closed {
            q.closed = true;
            q.messages.clear();
            self.budget.release(std::mem::take(&mut q.bytes));
        }
        drop(q);
        let _ = rustix::net::shutdown(&self.fd, Shutdown::Both);
        self.ready.notify_all();
    }

    fn run(&self) {
        loop {
            let message: Notification = {
                let mut q = self.queue();
                while q.messages.is_empty() && !q.closed {
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.closed {
                    return;
                }
                // Still charged until written.
                match q.messages.front() {
                    Some(m) => Arc::clone(m),
                    None => continue,
                }
            };
            if self.send_all(&message).is_err() {
                self.close();
                return;
            }
            let mut q = self.queue();
            if q.closed {
                return;
            }
            q.messages.pop_front();
            let cost = Budget::cost(&message);
            q.bytes -= cost;
            self.budget.release(cost);
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
