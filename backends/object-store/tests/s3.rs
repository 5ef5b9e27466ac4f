//! The backend against a real S3 server (SeaweedFS): the conformance suite, multipart
//! uploads, header-only reads, empty objects, the environment conventions of URLs.

use std::sync::Arc;

use tensor_ipc::conformance::run_all;
use tensor_ipc::{Header, ReadOptions, TensorSinkExt, TensorSourceExt};
use tensor_ipc_object_store::{
    ObjectStorage, ObjectStoreSink, ObjectStoreSource, Path, TransferOptions,
};

use crate::memory::{
    Keys, assert_reads_back, contiguous_and_strided, counting, expected_bytes, written,
};
use crate::recording::{Call, Recording};
use crate::server::S3;

/// A key no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// The S3 storage behind a recording wrapper.
fn recorded(s3: &S3, transfer: TransferOptions) -> (ObjectStorage, Arc<Recording>) {
    let recording = Recording::new(s3.storage().store().clone());
    (
        ObjectStorage::new(recording.clone()).with_transfer(transfer),
        recording,
    )
}

#[test]
fn s3_conforms() {
    let Some(s3) = S3::shared() else { return };
    run_all(&mut Keys::new(s3.storage(), &unique("suite")));
    // Windows of 8 bytes: every header read refetches.
    let storage = s3
        .storage()
        .with_transfer(TransferOptions::new().with_read_ahead(8));
    run_all(&mut Keys::new(storage, &unique("suite-small-windows")));
}

#[test]
fn large_tensors_stream_through_multipart_uploads() {
    let Some(s3) = S3::shared() else { return };
    let part = 5 << 20;
    let (storage, recording) = recorded(
        &s3,
        TransferOptions::new()
            .with_part_size(part)
            .with_concurrency(3),
    );
    let key = Path::from(unique("large"));
    // 24 MiB contiguous (written from its memory) and 6 MiB strided (gathered): five parts.
    let tensors = contiguous_and_strided(6 << 20, 1536, 1024);
    let sink = written(&storage, &key, &tensors);
    assert!(sink.is_multipart());
    let info = sink.finish().unwrap();
    let want = expected_bytes(&tensors);
    assert_eq!(info.size, want.len() as u64);
    let calls: Vec<Call> = recording
        .take()
        .into_iter()
        .filter(|c| *c != Call::Head)
        .collect();
    let parts = calls
        .iter()
        .filter(|c| matches!(c, Call::Part { .. }))
        .count();
    assert_eq!(parts, want.len().div_ceil(part), "{calls:?}");
    assert_eq!(calls.first(), Some(&Call::StartUpload));
    assert_eq!(calls.last(), Some(&Call::Complete));

    assert_reads_back(&storage, &key, &tensors);
    storage.delete(&key).unwrap();
}

#[test]
fn headers_of_big_objects_cost_one_small_read() {
    let Some(s3) = S3::shared() else { return };
    let (storage, recording) = recorded(&s3, TransferOptions::new());
    let key = Path::from(unique("headers"));
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    sink.write_tensor(&counting(8 << 20)).unwrap(); // 32 MiB
    sink.write_tensor(&counting(16)).unwrap();
    sink.finish().unwrap();
    recording.take();
    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    let options = ReadOptions::default();
    let mut lengths = Vec::new();
    while let Some(head) = source.read_message_header(&options).unwrap() {
        let Header::Tensor(header) = head.header else {
            panic!("not a tensor")
        };
        lengths.push(header.shape[0]);
    }
    assert_eq!(lengths, [8 << 20, 16]);
    let calls = recording.take();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        Recording::bytes_fetched(&calls) <= 2 * (64 << 10),
        "{calls:?}"
    );
    storage.delete(&key).unwrap();
}

#[test]
fn empty_objects_are_empty_streams() {
    let Some(s3) = S3::shared() else { return };
    let storage = s3.storage();
    let key = Path::from(unique("empty"));
    ObjectStoreSink::create(&storage, key.clone())
        .finish()
        .unwrap();
    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    assert_eq!(source.size(), 0);
    assert!(
        source
            .read_message(&ReadOptions::default())
            .unwrap()
            .is_none()
    );
    storage.delete(&key).unwrap();
}

/// The child half of `urls_read_the_aws_environment`: only plain URLs, configured from the
/// `AWS_*` variables the parent set.
#[test]
#[ignore = "run by urls_read_the_aws_environment in a child process"]
fn child_writes_and_reads_through_urls() {
    let url = std::env::var("TENSOR_IPC_CHILD_URL").expect("run by the parent test");
    let mut sink = ObjectStoreSink::create_url(&url).unwrap();
    sink.write_tensor(&counting(4096)).unwrap();
    sink.finish().unwrap();
    let back = ObjectStoreSource::open_url(&url)
        .unwrap()
        .read_tensor()
        .unwrap();
    assert_eq!(
        back.to_vec::<u32>().unwrap(),
        counting(4096).to_vec::<u32>().unwrap()
    );
}

#[test]
fn urls_read_the_aws_environment() {
    let Some(s3) = S3::shared() else { return };
    let key = unique("env");
    let url = format!("s3://{}/{key}", s3.bucket);
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "s3::child_writes_and_reads_through_urls",
        ])
        .env_clear()
        .envs(s3.aws_env())
        .env("TENSOR_IPC_CHILD_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let storage = s3.storage();
    assert_eq!(
        storage.head(&Path::from(key.as_str())).unwrap().size,
        expected_bytes(&[counting(4096)]).len() as u64
    );
    storage.delete(&Path::from(key.as_str())).unwrap();
}
