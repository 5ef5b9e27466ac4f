//! The `plasma-store` binary: flags, start-up and SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plasma-store");

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
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("plasma.sock");
    let mut child = Command::new(BIN)
        .args(["-s", sock.to_str().unwrap(), "--memory", "4M"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "store did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
