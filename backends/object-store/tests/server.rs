//! The real S3 server (SeaweedFS) the tests run against, found and started through
//! `.ci/s3-server.sh`: the shared one its `run` command starts (settings in
//! `TENSOR_IPC_S3_*`), and private ones a fault test starts, freezes and kills.
//!
//! Without a server the tests that need one skip loudly (recorded by `peers::skipped` in
//! `target/peer-skips.log`), and fail under `CI`. The including test binary also includes
//! `tests/support/peers.rs` as `peers`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use rustix::process::{Pid, Signal, kill_process_group};
use tensor_ipc_object_store::{ConnectOptions, ObjectStorage};

/// How to reach an S3 server.
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub bucket: String,
}

/// `.ci/s3-server.sh`.
fn script() -> PathBuf {
    crate::peers::workspace_root().join(".ci/s3-server.sh")
}

/// No server: a failure under CI, a recorded skip elsewhere.
fn missing(why: &str) {
    crate::peers::skipped(
        "the tests against a real S3 server",
        &format!("{why}; run them through `bash .ci/s3-server.sh run cargo test`"),
    );
}

impl S3 {
    /// The shared server, or `None` (after saying so) when the tests run without one.
    pub fn shared() -> Option<S3> {
        let get = |name: &str| std::env::var(format!("TENSOR_IPC_S3_{name}")).ok();
        match (
            get("ENDPOINT"),
            get("ACCESS_KEY"),
            get("SECRET_KEY"),
            get("REGION"),
            get("BUCKET"),
        ) {
            (Some(endpoint), Some(access_key), Some(secret_key), Some(region), Some(bucket)) => {
                Some(S3 {
                    endpoint,
                    access_key,
                    secret_key,
                    region,
                    bucket,
                })
            }
            _ => {
                missing("TENSOR_IPC_S3_ENDPOINT is not set");
                None
            }
        }
    }

    /// `options` with this server's endpoint and keys.
    pub fn options(&self, options: ConnectOptions) -> ConnectOptions {
        options
            .with_config("aws_endpoint", &self.endpoint)
            .with_config("aws_access_key_id", &self.access_key)
            .with_config("aws_secret_access_key", &self.secret_key)
            .with_config("aws_region", &self.region)
            .with_config("aws_allow_http", "true")
    }

    /// The bucket as storage, with the default connect options.
    pub fn storage(&self) -> ObjectStorage {
        self.storage_with(ConnectOptions::default())
    }

    /// The bucket as storage.
    pub fn storage_with(&self, options: ConnectOptions) -> ObjectStorage {
        let url = format!("s3://{}/", self.bucket);
        ObjectStorage::from_url_with(&url, &self.options(options))
            .expect("s3 storage")
            .0
    }

    /// The settings as the environment variables object_store reads.
    pub fn aws_env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

/// A server of a test's own, killed when dropped.
pub struct PrivateServer {
    pub s3: S3,
    group: Pid,
    dir: PathBuf,
}

impl PrivateServer {
    /// Starts a server (a few seconds), or `None` (after saying so) when there is no shared
    /// server either: the private ones are started only where the shared one is.
    pub fn start(name: &str) -> Option<PrivateServer> {
        S3::shared()?;
        let root = std::env::var("TENSOR_IPC_S3_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir());
        let dir = root.join(format!("{name}-{}", std::process::id()));
        let output = Command::new("bash")
            .arg(script())
            .args([
                "start".as_ref(),
                dir.as_os_str(),
                "--max-seconds".as_ref(),
                "300".as_ref(),
            ])
            .output()
            .expect("run .ci/s3-server.sh");
        assert!(
            output.status.success(),
            "s3-server.sh start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let settings: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let get = |name: &str| settings[&format!("TENSOR_IPC_S3_{name}")].clone();
        let pid: i32 = get("PID").parse().expect("pid");
        Some(PrivateServer {
            s3: S3 {
                endpoint: get("ENDPOINT"),
                access_key: get("ACCESS_KEY"),
                secret_key: get("SECRET_KEY"),
                region: get("REGION"),
                bucket: get("BUCKET"),
            },
            group: Pid::from_raw(pid).expect("a positive pid"),
            dir,
        })
    }

    fn signal(&self, signal: Signal) {
        kill_process_group(self.group, signal).expect("signal the server");
    }

    /// Stops the server in its tracks (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal(Signal::STOP);
    }

    /// Lets a frozen server go on.
    pub fn thaw(&self) {
        self.signal(Signal::CONT);
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&self) {
        let _ = kill_process_group(self.group, Signal::KILL);
        for _ in 0..100 {
            if kill_process_group(self.group, Signal::CONT).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
