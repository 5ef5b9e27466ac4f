//! Busy-polling a socket for a little while before sleeping on it, as the store does for a
//! client's next request and the client for each reply, backing off when the CPU is
//! contended.
//!
//! Polling pays when a core is idle: the answer usually follows within microseconds, and
//! catching it awake saves a cross-CPU wake-up of tens of microseconds. It costs when other
//! threads want the CPU (a data loader's workers beside the store): each turn yields the CPU,
//! a CPU-bound thread then runs for a whole time slice (milliseconds), and the poller, having
//! spent its share, no longer gets the quick wake-up a sleeping thread gets. So a [`Poller`]
//! watches the turns of its loop: one that took longer than [`CONTENDED_TURN`] means another
//! thread had the CPU, and the poller stops at once (the caller sleeps in a blocking receive)
//! and polls no more for a back-off that doubles while contention lasts (from
//! [`MIN_BACKOFF`] to [`MAX_BACKOFF`]), then tries again.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A turn of the polling loop that takes longer than this means another thread ran on the
/// CPU meanwhile: the CPU is contended.
pub const CONTENDED_TURN: Duration = Duration::from_micros(100);

/// The first back-off after contention is seen.
pub const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A busy-poller that backs off when the CPU is contended (see the [module docs](self)).
/// Shared by the threads of one process (its state is atomic), so that what one thread sees
/// of the machine's load holds for all.
#[derive(Debug)]
pub struct Poller {
    period: Duration,
    epoch: Instant,
    /// Nanoseconds after `epoch` before which nobody polls.
    resume_at: AtomicU64,
    /// The next back-off, in nanoseconds.
    backoff: AtomicU64,
    /// Nanoseconds after `epoch` when contention was last seen (0: never).
    contended_at: AtomicU64,
}

/// How a poll ended.
enum Turns {
    /// Every turn was quick.
    Quiet,
    /// A turn was slow: another thread had the CPU.
    Contended,
    /// The answer came at the first attempt: nothing learnt.
    Unknown,
}

impl Poller {
    /// A poller that polls for up to `period` (zero: never).
    pub fn new(period: Duration) -> Self {
        Poller {
            period,
            epoch: Instant::now(),
            resume_at: AtomicU64::new(0),
            backoff: AtomicU64::new(nanos(MIN_BACKOFF)),
            contended_at: AtomicU64::new(0),
        }
    }

    /// How long one poll may last.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether polling is suspended now, after contention was seen.
    pub fn backing_off(&self) -> bool {
        nanos(self.epoch.elapsed()) < self.resume_at.load(Ordering::Relaxed)
    }

    /// Whether a poll saw the CPU contended within the last `window`: the machine is busy
    /// with other work (while polling backs off, the last contention seen stands).
    pub fn contended_within(&self, window: Duration) -> bool {
        let at = self.contended_at.load(Ordering::Relaxed);
        at != 0 && nanos(self.epoch.elapsed()).saturating_sub(at) < nanos(window)
    }

    /// Calls `attempt` (a non-blocking receive) until it gives something other than
    /// `WouldBlock`/`Interrupted`, yielding the CPU between attempts; `None` when the period
    /// ran out, polling is backing off, or a slow turn showed the CPU contended (the caller
    /// then sleeps in a blocking receive).
    pub fn poll<T>(&self, mut attempt: impl FnMut() -> io::Result<T>) -> Option<io::Result<T>> {
        if self.period.is_zero() || self.backing_off() {
            return None;
        }
        let start = Instant::now();
        let until = start.checked_add(self.period);
        let mut last = start;
        let mut turns = Turns::Unknown;
        let result = loop {
            match attempt() {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    let now = Instant::now();
                    if now.duration_since(last) > CONTENDED_TURN {
                        turns = Turns::Contended;
                        break None;
                    }
                    if until.is_none_or(|until| now >= until) {
                        turns = Turns::Quiet;
                        break None;
                    }
                    std::thread::yield_now();
                    last = Instant::now();
                    if last.duration_since(now) > CONTENDED_TURN {
                        turns = Turns::Contended;
                        break None;
                    }
                    turns = Turns::Quiet;
                }
                other => break Some(other),
            }
        };
        match turns {
            Turns::Contended => self.back_off(),
            Turns::Quiet => self.backoff.store(nanos(MIN_BACKOFF), Ordering::Relaxed),
            Turns::Unknown => {}
        }
        result
    }

    /// Suspends polling for the current back-off and doubles it.
    fn back_off(&self) {
        let backoff = self.backoff.load(Ordering::Relaxed);
        let now = nanos(self.epoch.elapsed()).max(1);
        self.contended_at.store(now, Ordering::Relaxed);
        self.resume_at
            .store(now.saturating_add(backoff), Ordering::Relaxed);
        self.backoff.store(
            backoff.saturating_mul(2).min(nanos(MAX_BACKOFF)),
            Ordering::Relaxed,
        );
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_first_answer_or_when_the_period_ends() {
        let poller = Poller::new(Duration::from_secs(5));
        let mut calls = 0;
        let got = poller.poll(|| {
            calls += 1;
            if calls < 3 {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(got.unwrap().unwrap(), 3);
        let poller = Poller::new(Duration::from_millis(20));
        let t0 = Instant::now();
        let never = poller.poll(|| Err::<(), _>(io::ErrorKind::WouldBlock.into()));
        assert!(never.is_none());
        assert!(t0.elapsed() >= Duration::from_millis(20) || poller.backing_off());
        let broken = poller.poll(|| Err::<(), _>(io::ErrorKind::ConnectionReset.into()));
        if !poller.backing_off() {
            assert_eq!(
                broken.unwrap().unwrap_err().kind(),
                io::ErrorKind::ConnectionReset
            );
        }
        assert!(Poller::new(Duration::ZERO).poll(|| Ok(1)).is_none());
    }

    #[test]
    fn a_slow_turn_stops_the_poll_and_backs_off() {
        let poller = Poller::new(Duration::from_secs(5));
        assert!(!poller.contended_within(Duration::from_secs(60)));
        let mut calls = 0;
        let t0 = Instant::now();
        let got = poller.poll(|| {
            calls += 1;
            // The second attempt comes after a turn as slow as another thread's time slice.
            if calls == 2 {
                std::thread::sleep(3 * CONTENDED_TURN);
            }
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        assert!(got.is_none(), "gave up");
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "long before the period"
        );
        assert!(poller.backing_off());
        assert!(poller.contended_within(Duration::from_secs(60)));
        assert!(
            poller.poll(|| Ok(())).is_none(),
            "no polling while backing off"
        );
        // The back-off doubles, up to its cap.
        assert_eq!(
            poller.backoff.load(Ordering::Relaxed),
            nanos(2 * MIN_BACKOFF)
        );
        std::thread::sleep(MIN_BACKOFF * 2);
        assert!(!poller.backing_off(), "polls again after the back-off");
        for _ in 0..30 {
            poller.back_off();
        }
        assert_eq!(poller.backoff.load(Ordering::Relaxed), nanos(MAX_BACKOFF));
    }
}
