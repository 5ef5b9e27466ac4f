//! The `plasma-store` binary: flags, start-up and SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plasma-store");

/// The `plasma-store` binary running as a child process (killed on drop), once it accepts
/// connections.
pub(crate) struct StoreProcess {
    pub(crate) child: std::process::Child,
    pub(crate) socket: std::path::PathBuf,
    /// Where its stderr goes, for [`start_logged`](Self::start_logged).
    log: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

impl StoreProcess {
    /// Starts the binary with `args` and `-s` a fresh socket, its stderr going to `stderr`.
    pub(crate) fn start(args: &[&str], stderr: Stdio) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, args, stderr, None)
    }

    /// Starts the binary with `args`, its stderr kept in a file (see [`log`](Self::log)).
    pub(crate) fn start_logged(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("store.log");
        let file = std::fs::File::create(&log).unwrap();
        Self::start_in(dir, args, Stdio::from(file), Some(log))
    }

    fn start_in(
        dir: tempfile::TempDir,
        args: &[&str],
        stderr: Stdio,
        log: Option<std::path::PathBuf>,
    ) -> Self {
        let socket = dir.path().join("plasma.sock");
        let child = Command::new(BIN)
            .args(args)
            .arg("-s")
            .arg(&socket)
            .stderr(stderr)
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "store did not come up"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            child,
            socket,
            log,
            _dir: dir,
        }
    }

    /// What the store has logged so far (started with [`start_logged`](Self::start_logged)).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.as_ref().expect("started logged")).unwrap()
    }

    /// The store process's id.
    pub(crate) fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.child.id() as i32).unwrap()
    }

    /// Descriptors the store process has open.
    pub(crate) fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Descriptors the store has open once the count stayed the same for 300 ms (the
    /// connection that checked the store is up may still be open at first).
    pub(crate) fn quiet_fd_count(&self) -> usize {
        let t0 = Instant::now();
        let mut last = self.fd_count();
        let mut since = Instant::now();
        while since.elapsed() < Duration::from_millis(300) && t0.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.fd_count();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        last
    }

    /// Waits (up to `limit`) until the store has `fds` descriptors open; returns how many it
    /// has then.
    pub(crate) fn settle_fds(&self, fds: usize, limit: Duration) -> usize {
        let t0 = Instant::now();
        loop {
            let now = self.fd_count();
            if now == fds || t0.elapsed() > limit {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The store process's resident memory, in bytes.
    pub(crate) fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }

    /// User + system CPU time so far, in clock ticks (10 ms each).
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime: fields 14 and 15 of the whole line.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The CPUs each thread serving a client may run on (`Cpus_allowed_list` of the threads
    /// named `plasma-client-N`).
    pub(crate) fn client_threads_cpus(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut lists = Vec::new();
        for task in std::fs::read_dir(tasks).unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("plasma-client-") {
                continue;
            }
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            if let Some(list) = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            {
                lists.push(list.trim().to_string());
            }
        }
        lists
    }
}

impl Drop for StoreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn help_lists_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--socket",
        "--memory",
        "--directory",
        "--hugepages",
        "--external-store",
        "-h",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
}

#[test]
fn unknown_external_store_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "-s",
            dir.path().join("s").to_str().unwrap(),
            "-m",
            "1M",
            "-e",
            "nope://x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such external store"));
}

#[test]
fn serves_then_exits_zero_on_sigterm() {
    let mut store = StoreProcess::start(&["--memory", "4M"], Stdio::piped());
    let (child, sock) = (&mut store.child, store.socket.clone());
    // A connected client is disconnected, not left hanging, by the shutdown.
    let mut client = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("memory 4194304 bytes"), "{err}");
    assert!(err.contains("SIGTERM received, closing the store"), "{err}");
    assert!(!sock.exists(), "the socket file is removed on the way out");
    let mut buf = [0u8; 8];
    assert_eq!(std::io::Read::read(&mut client, &mut buf).unwrap_or(0), 0);
}

#[test]
fn write_through_needs_an_object_store() {
    let out = Command::new(BIN)
        .args([
            "--write-through",
            "-e",
            "hashtable://x",
            "-s",
            "/nonexistent/p.sock",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--write-through needs an object store"),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["--write-through", "-s", "/nonexistent/p.sock"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs an external store"));
}

/// The time slice (`se.slice`, in ns) of the store's thread named `name`, if it has one.
fn thread_slice(store: &StoreProcess, name: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", store.child.id())).ok()?;
    tasks.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() != name {
            return None;
        }
        slice_in(&std::fs::read_to_string(task.path().join("sched")).ok()?)
    })
}

/// `se.slice` from a `/proc/.../sched` file (Linux 6.6 and later show it).
fn slice_in(sched: &str) -> Option<u64> {
    sched
        .lines()
        .find_map(|l| l.strip_prefix("se.slice"))
        .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
}

/// Whether this kernel keeps a thread's own slice (Linux 6.12 and later).
fn kernel_has_custom_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 12)
}

#[test]
fn a_client_thread_has_the_short_slice_while_few_clients_share_the_cores() {
    let default = std::fs::read_to_string("/proc/thread-self/sched")
        .ok()
        .and_then(|s| slice_in(&s));
    let Some(default) = default.filter(|_| kernel_has_custom_slices()) else {
        eprintln!("SKIPPED: this kernel keeps no slice of a thread's own (Linux < 6.12)");
        return;
    };
    let store = StoreProcess::start(&["--memory", "4M"], Stdio::null());
    let mut first = crate::raw_client::Client::connect(&store.socket);
    assert!(!first.contains(crate::raw_client::id(1)));
    assert_eq!(thread_slice(&store, "plasma-client-2"), Some(100_000));
    // More clients than cores: the store's own clients fill them, the kernel's slice again
    // (set before the thread waits for its client's next request).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut others: Vec<_> = (0..cores)
        .map(|_| crate::raw_client::Client::connect(&store.socket))
        .collect();
    // A reply to each says the store has accepted (and counted) it.
    for other in &mut others {
        assert!(!other.contains(crate::raw_client::id(1)));
    }
    for _ in 0..2 {
        assert!(!first.contains(crate::raw_client::id(1)));
    }
    assert_eq!(thread_slice(&store, "plasma-client-2"), Some(default));
    drop(others);
    // `--time-slice 0` keeps the kernel's.
    let store = StoreProcess::start(&["--memory", "4M", "--time-slice", "0"], Stdio::null());
    let mut client = crate::raw_client::Client::connect(&store.socket);
    assert!(!client.contains(crate::raw_client::id(1)));
    assert_eq!(thread_slice(&store, "plasma-client-2"), Some(default));
}
