//! Outputs appear whole or not at all, and nothing else appears: a conversion that fails
//! while writing (a file-size limit) or is killed with SIGTERM or SIGINT in the middle of its
//! write leaves the output's directory exactly as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tensor_ipc::sparse::{CompressedAxis, CsxIndex, IndexVector, SparseIndex};
use tensor_ipc::{DType, SparseTensor, write_sparse_tensor};

const BIN: &str = env!("CARGO_BIN_EXE_tensor-ipc");

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A tiny CSR message whose dense form is a `rows x cols` float64 matrix (8 bytes each).
fn tiny_sparse_of_a_big_matrix(path: &Path, rows: usize, cols: usize) {
    let indptr: Vec<i64> = std::iter::once(0)
        .chain(std::iter::repeat_n(1, rows))
        .collect();
    let index = CsxIndex::new(
        CompressedAxis::Row,
        IndexVector::from_values(DType::Int64, &indptr).unwrap(),
        IndexVector::from_values(DType::Int64, &[3]).unwrap(),
    )
    .unwrap();
    let st = SparseTensor::new(
        DType::Float64,
        vec![rows, cols],
        SparseIndex::Csx(index),
        tensor_ipc::Buffer::from_vec(7.5f64.to_le_bytes().to_vec()),
        vec![],
    )
    .unwrap();
    let mut message = Vec::new();
    write_sparse_tensor(&st, &mut message).unwrap();
    std::fs::write(path, message).unwrap();
}

#[test]
fn a_conversion_that_fails_while_writing_leaves_the_directory_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.arrow_tensor");
    tiny_sparse_of_a_big_matrix(&input, 1024, 1024); // an 8 MiB .npy
    let output = dir.path().join("out.npy");
    std::fs::write(&output, b"the old output").unwrap();
    let before = listing(dir.path());
    // A 1 MiB file-size limit (in 512- or 1024-byte blocks, whichever the shell counts),
    // SIGXFSZ ignored so that the write fails with EFBIG instead of killing the command.
    let script = format!(
        "trap '' XFSZ; ulimit -f 1024 && exec '{BIN}' convert '{}' '{}'",
        input.display(),
        output.display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("tensor-ipc: error: "), "{stderr}");
    assert_eq!(listing(dir.path()), before, "{stderr}");
    assert_eq!(std::fs::read(&output).unwrap(), b"the old output");
    // Without the limit the same conversion succeeds.
    let out = Command::new(BIN)
        .args(["convert".as_ref(), input.as_os_str(), output.as_os_str()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(listing(dir.path()), before);
    assert!(std::fs::metadata(&output).unwrap().len() > 8 << 20);
}

/// The file the process has open in `dir` other than `except` (its temporary output; an
/// `O_TMPFILE` shows as `DIR/#INODE (deleted)`, a named one by its name), if any.
fn writes_in(pid: u32, dir: &Path, except: &Path) -> Option<PathBuf> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .find(|target: &PathBuf| target.starts_with(dir) && target != except)
}

/// Kills conversions with SIGTERM and SIGINT once their output is open, and checks that each
/// died of the signal and left the directory as it was: with the `O_TMPFILE` output (which
/// has no name to remove) and with the named temporary file the signal handler removes.
#[test]
fn a_conversion_killed_while_writing_leaves_nothing_behind() {
    killed_conversions_leave_nothing_behind(false);
    killed_conversions_leave_nothing_behind(true);
}

fn killed_conversions_leave_nothing_behind(named: bool) {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.arrow_tensor");
    tiny_sparse_of_a_big_matrix(&input, 4096, 2048); // a 64 MiB .npy
    let output = dir.path().join("out.npy");
    let before = listing(dir.path());
    let mut killed = 0;
    for (round, signal) in [rustix::process::Signal::TERM, rustix::process::Signal::INT]
        .into_iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let mut command = Command::new(BIN);
        command
            .args(["convert".as_ref(), input.as_os_str(), output.as_os_str()])
            .stderr(Stdio::null());
        if named {
            command.env(tensor_ipc_file::NAMED_TEMPORARIES_VAR, "1");
        }
        let mut child = command.spawn().unwrap();
        let started = Instant::now();
        let mut open = None;
        while open.is_none()
            && started.elapsed() < Duration::from_secs(20)
            && child.try_wait().unwrap().is_none()
        {
            open = writes_in(child.id(), dir.path(), &input);
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Some(open) = &open {
            // The temporary file is the kind asked for.
            let name = open.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                name.starts_with(".out.npy."),
                named,
                "round {round}: {name}"
            );
        }
        // Later and later into the write.
        std::thread::sleep(Duration::from_millis(2 * round as u64));
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, signal);
        let status = child.wait().unwrap();
        eprintln!("named {named}, round {round}: {signal:?}: {status:?}");
        if status.signal() == Some(signal.as_raw()) {
            killed += 1;
        }
        // Whole (the signal came after the rename) or absent.
        if let Ok(meta) = std::fs::metadata(&output) {
            assert_eq!(
                meta.len(),
                128 + (64 << 20),
                "round {round}: a partial output"
            );
        }
        let _ = std::fs::remove_file(&output);
        assert_eq!(listing(dir.path()), before, "round {round}: {status:?}");
    }
    assert!(
        killed >= 3,
        "only {killed} of 6 conversions were killed mid-way (named {named})"
    );
}
