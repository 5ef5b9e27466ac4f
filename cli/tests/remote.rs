//! The `tensor-ipc` binary with object-store URLs (against the real S3 server that
//! `.ci/s3-server.sh run` starts, configured through the `AWS_*` environment as a user would)
//! and Plasma object ids (against this project's `plasma-store`): `convert` and `inspect`
//! through `s3://` and a plain `http://` WebDAV server (`.ci/webdav-server.sh run`), `cp`
//! between files, URLs and Plasma objects, and their errors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tensor_ipc::{DType, Tensor, TensorSourceExt};
use tensor_ipc_cli::npy;

use crate::s3_server::S3;

/// Runs the CLI with `env` added to a cleaned environment (no stray `AWS_*`).
fn cli_with(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tensor-ipc"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .args(args)
        .output()
        .expect("the tensor-ipc binary runs")
}

fn ok(env: &[(&str, String)], args: &[&str]) -> String {
    let out = cli_with(env, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Expects one error line and a failure status; returns the line.
fn fails(env: &[(&str, String)], args: &[&str]) -> String {
    let out = cli_with(env, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("tensor-ipc: error: "), "{stderr}");
    stderr.trim_end().to_owned()
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("cli-{name}-{}-{nanos}", std::process::id())
}

/// A C-order float64 `.npy` file of `rows x cols` counting values.
fn npy_file(dir: &Path, rows: usize, cols: usize) -> PathBuf {
    let values: Vec<f64> = (0..rows * cols).map(|i| i as f64 * 0.5).collect();
    let mut bytes = npy::format_header(DType::Float64, &[rows, cols], false).unwrap();
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    let path = dir.join("a.npy");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn convert_and_inspect_through_s3_urls() {
    let Some(s3) = S3::shared() else { return };
    let env = s3.aws_env();
    let dir = tempfile::tempdir().unwrap();
    let npy_in = npy_file(dir.path(), 300, 500); // 1.2 MB
    let url = format!("s3://{}/{}.arrow_tensor", s3.bucket, unique("convert"));
    let local = dir.path().join("a.arrow_tensor");
    ok(&env, &["convert", s(&npy_in), &url]);
    ok(&env, &["convert", s(&npy_in), s(&local)]);
    // The object holds exactly what the file holds, and inspects the same.
    let copied = dir.path().join("copied.arrow_tensor");
    ok(&env, &["cp", &url, s(&copied)]);
    assert_eq!(
        std::fs::read(&copied).unwrap(),
        std::fs::read(&local).unwrap()
    );
    let remote_lines = ok(&env, &["inspect", &url]);
    assert_eq!(remote_lines, ok(&env, &["inspect", s(&local)]));
    assert!(remote_lines.starts_with("0: offset=0 kind=tensor dtype=float64 shape=[300,500]"));
    // And back to the same .npy bytes.
    let npy_out = dir.path().join("back.npy");
    ok(&env, &["convert", &url, s(&npy_out)]);
    assert_eq!(
        std::fs::read(&npy_out).unwrap(),
        std::fs::read(&npy_in).unwrap()
    );
    // A .npy may itself live in the bucket.
    let npy_url = format!("s3://{}/{}.npy", s3.bucket, unique("npy"));
    ok(&env, &["convert", s(&local), &npy_url]);
    let again = dir.path().join("again.arrow_tensor");
    ok(&env, &["convert", &npy_url, s(&again)]);
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&local).unwrap()
    );
}

/// A plain `http://` URL of a WebDAV server (`.ci/webdav-server.sh run`): a tensor larger
/// than one upload part goes up in one PUT (HTTP has no multipart uploads) and comes back
/// the same.
#[test]
fn convert_and_inspect_through_http_urls() {
    let Ok(endpoint) = std::env::var("TENSOR_IPC_HTTP_ENDPOINT") else {
        crate::peers::skipped(
            "the CLI against a real HTTP (WebDAV) server",
            "TENSOR_IPC_HTTP_ENDPOINT is not set; run through `bash .ci/webdav-server.sh run`",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let npy_in = npy_file(dir.path(), 2048, 1280); // 20 MiB: more than one 16 MiB part
    let url = format!("{endpoint}/{}/a.arrow_tensor", unique("http"));
    let local = dir.path().join("a.arrow_tensor");
    ok(&[], &["convert", s(&npy_in), &url]);
    ok(&[], &["convert", s(&npy_in), s(&local)]);
    assert_eq!(
        ok(&[], &["inspect", &url]),
        ok(&[], &["inspect", s(&local)])
    );
    let npy_out = dir.path().join("back.npy");
    ok(&[], &["convert", &url, s(&npy_out)]);
    assert_eq!(
        std::fs::read(&npy_out).unwrap(),
        std::fs::read(&npy_in).unwrap()
    );
    let missing = format!("{endpoint}/{}/missing.arrow_tensor", unique("http"));
    assert!(fails(&[], &["inspect", &missing]).ends_with("no such object"));
}

#[test]
fn remote_failures_are_one_line() {
    let Some(s3) = S3::shared() else { return };
    let env = s3.aws_env();
    let missing = format!("s3://{}/{}", s3.bucket, unique("missing"));
    let line = fails(&env, &["inspect", &missing]);
    assert!(line.ends_with("no such object"), "{line}");
    let nobucket = "s3://no-such-bucket-here/t.arrow_tensor";
    let line = fails(&env, &["inspect", nobucket]);
    assert!(
        line.contains("bucket does not exist") || line.contains("no such object"),
        "{line}"
    );
    let dir = tempfile::tempdir().unwrap();
    let npy_in = npy_file(dir.path(), 2, 3);
    let line = fails(&env, &["convert", s(&npy_in), nobucket]);
    assert!(line.contains("the bucket does not exist"), "{line}");
    let mut wrong = env.clone();
    wrong[2].1 = "not-the-secret".into();
    let line = fails(&wrong, &["convert", s(&npy_in), &missing]);
    assert!(line.contains("access denied"), "{line}");
    let line = fails(&env, &["cp", s(&npy_in), "ftp://host/x"]);
    assert!(line.contains("unsupported URL scheme"), "{line}");
    let id = format!("plasma:{}", "ab".repeat(20));
    let line = fails(&env, &["cp", &missing, &id]);
    assert!(line.contains("no such object"), "{line}");
    let line = fails(&env, &["convert", s(&npy_in), &id]);
    assert!(line.contains("(--socket PATH)"), "{line}");
}

/// This project's plasma-store on a private socket, killed on drop.
struct Store {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Store {
    fn start() -> Option<Store> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let binary = std::env::var_os("PLASMA_STORE_OURS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/plasma-store"));
        if !binary.exists() {
            crate::peers::skipped(
                "cp with plasma: ids",
                &format!(
                    "no plasma-store at {} (cargo build --release -p tensor-ipc-plasma-store)",
                    binary.display()
                ),
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("plasma.sock");
        let child = Command::new(&binary)
            .arg("-s")
            .arg(&socket)
            .args(["-m", "200000000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Store {
            child,
            socket,
            _dir: dir,
        })
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cp_between_files_urls_and_plasma_objects() {
    let Some(s3) = S3::shared() else { return };
    let Some(store) = Store::start() else { return };
    let env = s3.aws_env();
    let socket = s(&store.socket).to_owned();
    let dir = tempfile::tempdir().unwrap();
    // A stream of two messages.
    let mut stream = Vec::new();
    let first = Tensor::from_vec(
        (0..250_000).map(|i| i as f32).collect::<Vec<_>>(),
        vec![500, 500],
    )
    .unwrap();
    let second = Tensor::from_vec(vec![7i16; 10], vec![10]).unwrap();
    tensor_ipc::write_tensor(&first, &mut stream).unwrap();
    tensor_ipc::write_tensor(&second, &mut stream).unwrap();
    let file = dir.path().join("stream.arrow_tensor");
    std::fs::write(&file, &stream).unwrap();

    let url = format!("s3://{}/{}", s3.bucket, unique("cp"));
    let id = format!("plasma:{}", "31".repeat(20));
    let id2 = format!("plasma:{}", "32".repeat(20));
    ok(&env, &["cp", s(&file), &url]);
    ok(&env, &["cp", &url, &id, "--socket", &socket]);
    ok(&env, &["cp", &id, &id2, "--socket", &socket]);
    let back = dir.path().join("back.arrow_tensor");
    ok(&env, &["cp", &id2, s(&back), "--socket", &socket]);
    assert_eq!(std::fs::read(&back).unwrap(), stream);
    let url2 = format!("s3://{}/{}", s3.bucket, unique("cp-from-plasma"));
    ok(&env, &["cp", &id, &url2, "--socket", &socket]);
    let lines = ok(&env, &["inspect", &url2]);
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert_eq!(lines, ok(&env, &["inspect", &id, "--socket", &socket]));

    // What a Plasma reader sees is the stream.
    let client = tensor_ipc_plasma_client::PlasmaClient::connect(&store.socket).unwrap();
    let mut source = tensor_ipc_plasma_client::PlasmaSource::get(
        &client,
        tensor_ipc_plasma_client::ObjectId([b'1'; 20]),
        Some(Duration::from_secs(1)),
    )
    .unwrap();
    assert_eq!(
        source.read_tensor().unwrap().to_vec::<f32>().unwrap(),
        first.to_vec::<f32>().unwrap()
    );
    assert_eq!(
        source.read_tensor().unwrap().to_vec::<i16>().unwrap(),
        [7; 10]
    );

    // An existing object is not replaced; a garbage file is not copied.
    let line = fails(&env, &["cp", s(&file), &id, "--socket", &socket]);
    assert!(line.contains("already exists"), "{line}");
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"\x93NUMPY not a tensor stream").unwrap();
    let line = fails(&env, &["cp", s(&garbage), &url2]);
    assert!(line.contains("message 0 at byte offset 0"), "{line}");
    assert!(line.contains("NumPy .npy file"), "{line}");
}
