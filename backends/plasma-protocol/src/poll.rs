//! Busy-polling a socket for a little while before sleeping on it, as the store does for a
//! client's next request and the client for each reply.

use std::io;
use std::time::{Duration, Instant};

/// Calls `attempt` (a non-blocking receive) until it gives something other than
/// `WouldBlock`/`Interrupted`, or until `period` has passed, yielding the CPU between
/// attempts so that any runnable thread goes first. `None` when the period ran out (the
/// caller then sleeps in a blocking receive).
pub fn busy_poll<T>(
    period: Duration,
    mut attempt: impl FnMut() -> io::Result<T>,
) -> Option<io::Result<T>> {
    let until = Instant::now().checked_add(period);
    loop {
        match attempt() {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                if until.is_none_or(|until| Instant::now() >= until) {
                    return None;
                }
                std::thread::yield_now();
            }
            other => return Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_first_answer_or_when_the_period_ends() {
        let mut calls = 0;
        let got = busy_poll(Duration::from_secs(5), || {
            calls += 1;
            if calls < 3 {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(got.unwrap().unwrap(), 3);
        let t0 = Instant::now();
        let never = busy_poll(Duration::from_millis(20), || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        assert!(never.is_none());
        assert!(t0.elapsed() >= Duration::from_millis(20));
        let broken = busy_poll(Duration::from_secs(5), || {
            Err::<(), _>(io::ErrorKind::ConnectionReset.into())
        });
        assert_eq!(
            broken.unwrap().unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
    }
}
