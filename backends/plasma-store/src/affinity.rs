//! Keeping a serving thread on the CPU its client runs on while the cores are full.
//!
//! A client and the store thread that serves it hand each request and reply back and forth.
//! When no core is idle (more clients than cores, or a data loader's workers beside the
//! store), each hand-over wakes a thread on a CPU where another process is running: on the
//! client's own CPU the woken thread runs at once (the client has just gone to sleep waiting
//! for it), on another it waits for the running process to give the CPU up. Left to itself
//! the kernel puts the two on the same CPU in some runs and on different ones in others, and
//! the second kind of run is several times slower (1 KiB cycles beside two CPU hogs on two
//! cores: 11-12 thousand per second on one CPU, 1.7 thousand on two). So while the cores
//! are full a serving thread looks up, every few milliseconds, the CPU the client's process
//! last ran on (`/proc/PID/stat`, the pid from `SO_PEERCRED`) and keeps to that CPU; once a
//! core is idle again it gets its own CPU mask back (then the kernel wakes the client on the
//! idle core anyway, and the thread busy-polls from another core as before).
//!
//! The client's process is followed by its main thread (the one `/proc/PID/stat` reports):
//! a client that talks to the store from another thread gets no worse than the kernel's
//! placement across CPUs.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::process::Pid;
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// How recently busy-polling must have seen other processes' work for the cores to count as
/// full.
pub(crate) const BUSY_WINDOW: Duration = Duration::from_millis(500);

/// How often a thread looks up its client's CPU while the machine is busy.
const LOOK_EVERY: Duration = Duration::from_millis(2);

/// A serving thread's following of its client's CPU (see the [module docs](self)).
pub(crate) struct FollowClient {
    /// The client's process; looked up at the first need, `None` once that failed.
    client: Option<Option<Pid>>,
    /// The thread's own CPU mask, given back when the machine is quiet again.
    own: Option<CpuSet>,
    /// The CPU the thread is limited to, if any.
    pinned: Option<usize>,
    next_look: Instant,
}

impl FollowClient {
    /// A thread that follows no client yet.
    pub(crate) fn new() -> Self {
        Self {
            client: None,
            own: None,
            pinned: None,
            next_look: Instant::now(),
        }
    }

    /// The CPU this thread is limited to, if any.
    #[cfg(test)]
    pub(crate) fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// Called before each wait for a request: follows the client of `socket` while the
    /// cores are full, lets go otherwise.
    pub(crate) fn update(&mut self, socket: BorrowedFd<'_>, cores_full: bool) {
        if !cores_full {
            self.let_go();
            return;
        }
        let now = Instant::now();
        if now < self.next_look {
            return;
        }
        self.next_look = now + LOOK_EVERY;
        let client = *self.client.get_or_insert_with(|| {
            rustix::net::sockopt::socket_peercred(socket)
                .ok()
                .map(|cred| cred.pid)
        });
        if let Some(cpu) = client.and_then(|pid| last_cpu(pid).ok()) {
            self.pin(cpu);
        }
    }

    /// Limits the thread to `cpu` (one syscall, only on a change; never to a CPU outside
    /// its own mask).
    fn pin(&mut self, cpu: usize) {
        if self.pinned == Some(cpu) {
            return;
        }
        if self.own.is_none() {
            self.own = sched_getaffinity(None).ok();
        }
        let Some(own) = &self.own else {
            return;
        };
        if cpu >= CpuSet::MAX_CPU || !own.is_set(cpu) {
            return;
        }
        let mut only = CpuSet::new();
        only.set(cpu);
        if sched_setaffinity(None, &only).is_ok() {
            self.pinned = Some(cpu);
        }
    }

    /// Gives the thread its own CPU mask back.
    fn let_go(&mut self) {
        if self.pinned.is_none() {
            return;
        }
        if let Some(own) = &self.own
            && sched_setaffinity(None, own).is_ok()
        {
            self.pinned = None;
        }
    }
}

/// The CPU a process's main thread last ran on: field 39 of `/proc/PID/stat`.
fn last_cpu(pid: Pid) -> io::Result<usize> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero()))?;
    parse_last_cpu(&stat).ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
}

/// Field 39 (`processor`) of a `/proc/PID/stat` line; the command name (field 2, in
/// parentheses) may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_last_cpu(stat: &str) -> Option<usize> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // Field 3 is the first after the name.
    after_name
        .split_ascii_whitespace()
        .nth(39 - 3)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_processor_field_is_found_past_any_command_name() {
        let tail = (4..=52)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        for name in ["(cat)", "(a b) c)", "((x)"] {
            let line = format!("1234 {name} S {tail}\n");
            assert_eq!(parse_last_cpu(&line), Some(39), "{line}");
        }
        assert_eq!(parse_last_cpu("1234 (cat) S 1 2"), None);
        assert_eq!(parse_last_cpu("no name"), None);
    }

    #[test]
    fn this_process_runs_on_the_cpu_its_stat_names() {
        let me = rustix::process::getpid();
        let cpu = last_cpu(me).unwrap();
        assert!(sched_getaffinity(None).unwrap().is_set(cpu));
    }

    #[test]
    fn full_cores_pin_the_thread_to_the_clients_cpu_and_an_idle_core_lets_go() {
        std::thread::spawn(|| {
            let own = sched_getaffinity(None).unwrap();
            let (ours, _client) = UnixStream::pair().unwrap();
            let mut follow = FollowClient::new();
            follow.update(ours.as_fd(), false);
            assert_eq!(follow.pinned(), None, "an idle core");
            follow.update(ours.as_fd(), true);
            // The client is this process: the thread keeps to the one CPU its stat names.
            let cpu = follow.pinned().expect("pinned");
            let now = sched_getaffinity(None).unwrap();
            assert!(now.is_set(cpu) && now.count() == 1 && own.is_set(cpu));
            follow.update(ours.as_fd(), false);
            assert_eq!(follow.pinned(), None);
            assert!(sched_getaffinity(None).unwrap() == own, "its own mask back");
        })
        .join()
        .unwrap();
    }
}
