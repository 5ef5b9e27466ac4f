//! The time slice the store's serving threads ask the kernel for.
//!
//! On a machine whose cores are busy with other work (a data loader's workers beside the
//! store), a request wakes the store thread that serves it, and that thread waits for the
//! running process's slice to run out before it gets the core. Since Linux 6.12 a thread may
//! ask for a slice of its own (`sched_setattr(2)`'s `sched_runtime` under `SCHED_OTHER`, 0.1
//! to 100 ms, no privilege needed), and a woken thread with a shorter slice than the running
//! one preempts it at once: the store's threads run for microseconds at a time, so a short
//! slice costs them nothing and takes the wait out of every request. Earlier kernels accept
//! the call and ignore the value.

use std::io;
use std::time::Duration;

/// `struct sched_attr` of `sched_setattr(2)`, its first version (48 bytes).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

/// The calling thread's scheduling attributes.
fn get_attr() -> io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is a writable `sched_attr` of `SCHED_ATTR_SIZE` bytes that outlives the
    // call; pid 0 is the calling thread; flags must be 0.
    let got = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &raw mut attr,
            SCHED_ATTR_SIZE,
            0,
        )
    };
    if got == 0 {
        Ok(attr)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel for a time slice of `slice` for the calling thread, keeping its policy
/// and nice value; a thread under a real-time or deadline policy is left as it is.
pub(crate) fn request_slice(slice: Duration) -> io::Result<()> {
    let mut attr = get_attr()?;
    let fair = [libc::SCHED_OTHER, libc::SCHED_BATCH]
        .iter()
        .any(|&policy| attr.policy == policy as u32);
    if !fair {
        return Ok(());
    }
    attr.size = SCHED_ATTR_SIZE;
    attr.flags = 0;
    attr.runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    // SAFETY: `attr` is a valid `sched_attr` of `SCHED_ATTR_SIZE` bytes that outlives the
    // call; pid 0 is the calling thread; flags must be 0.
    let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) };
    if set == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A serving thread's time slice: the short one asked for while at most one client per core
/// is connected (the store's threads then take cores from other work, which is what a short
/// slice is for), the kernel's default beyond (the store's own clients fill the cores, and
/// preempting them for each request only adds context switches).
pub(crate) struct ThreadSlice {
    /// The slice to ask for; `None` once the kernel refused one.
    short: Option<Duration>,
    is_short: bool,
}

impl ThreadSlice {
    /// A thread still on the kernel's slice; a `short` of zero: it stays there.
    pub(crate) fn new(short: Duration) -> Self {
        Self {
            short: Some(short).filter(|s| !s.is_zero()),
            is_short: false,
        }
    }

    /// Switches the calling thread to the short slice or back (one syscall, only on a
    /// change).
    pub(crate) fn set(&mut self, short: bool) {
        let Some(slice) = self.short else {
            return;
        };
        if short == self.is_short {
            return;
        }
        match request_slice(if short { slice } else { Duration::ZERO }) {
            Ok(()) => self.is_short = short,
            Err(_) => self.short = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this kernel keeps a thread's own slice (Linux 6.12 and later).
    pub(crate) fn kernel_has_custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (6, 12)
    }

    #[test]
    fn a_thread_gets_the_slice_it_asks_for_and_keeps_its_policy_and_nice_value() {
        std::thread::spawn(|| {
            let before = get_attr().unwrap();
            let mut slice = ThreadSlice::new(Duration::from_micros(250));
            slice.set(true);
            let after = get_attr().unwrap();
            assert_eq!((after.policy, after.nice), (before.policy, before.nice));
            // The kernel reports a thread's slice: its default before, the one asked for after.
            let expected = if kernel_has_custom_slices() {
                250_000
            } else {
                before.runtime
            };
            assert_eq!(after.runtime, expected);
            slice.set(false);
            assert_eq!(get_attr().unwrap().runtime, before.runtime);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn no_slice_asked_leaves_the_thread_alone() {
        std::thread::spawn(|| {
            let before = get_attr().unwrap().runtime;
            let mut slice = ThreadSlice::new(Duration::ZERO);
            slice.set(true);
            assert_eq!(get_attr().unwrap().runtime, before);
        })
        .join()
        .unwrap();
    }
}
