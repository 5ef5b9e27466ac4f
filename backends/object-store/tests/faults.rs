//! Faults against real S3 servers: wrong credentials, a missing bucket, an object cut short
//! behind a reader's back, and a private server frozen or killed in the middle of uploads
//! and reads. Every failure is a typed error within a bounded time, never a hang, and an
//! interrupted upload leaves nothing under its key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tensor_ipc::{Error, Tensor, TensorSinkExt, TensorSourceExt};
use tensor_ipc_object_store::object_store::throttle::{ThrottleConfig, ThrottledStore};
use tensor_ipc_object_store::{
    ConnectOptions, ObjectStorage, ObjectStoreError, ObjectStoreSink, ObjectStoreSource, Path,
    TransferOptions,
};

use crate::memory::{counting, expected_bytes};
use crate::s3::unique;
use crate::server::{PrivateServer, S3};

/// Short timeouts and one retry: a dead or frozen server is reported within seconds.
fn impatient() -> ConnectOptions {
    ConnectOptions::new()
        .with_max_retries(1)
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(2))
}

/// The typed error inside a core error (panics with the error when there is none).
fn typed(error: &Error) -> &ObjectStoreError {
    ObjectStoreError::find(error).unwrap_or_else(|| panic!("not an object store error: {error}"))
}

#[test]
fn wrong_credentials_are_access_denied() {
    let Some(s3) = S3::shared() else { return };
    let wrong = S3 {
        secret_key: "not-the-secret".into(),
        ..s3.clone()
    };
    let storage = wrong.storage();
    let mut sink = ObjectStoreSink::create(&storage, unique("denied"));
    sink.write_tensor(&counting(10)).unwrap();
    let err = sink.finish().unwrap_err();
    assert!(
        matches!(err, ObjectStoreError::AccessDenied { .. }),
        "{err}"
    );
    let key = Path::from(unique("denied-read"));
    s3.storage()
        .put(&key, expected_bytes(&[counting(3)]).into())
        .unwrap();
    let err = ObjectStoreSource::open(&storage, key.clone()).unwrap_err();
    assert!(
        matches!(err, ObjectStoreError::AccessDenied { .. }),
        "{err}"
    );
    let unknown = S3 {
        access_key: "nobody".into(),
        ..s3.clone()
    };
    let err = ObjectStoreSource::open(&unknown.storage(), key.clone()).unwrap_err();
    assert!(
        matches!(err, ObjectStoreError::AccessDenied { .. }),
        "{err}"
    );
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::PermissionDenied
    );
    s3.storage().delete(&key).unwrap();
}

#[test]
fn a_missing_bucket_is_named_as_such() {
    let Some(s3) = S3::shared() else { return };
    let nowhere = S3 {
        bucket: "no-such-bucket-here".into(),
        ..s3.clone()
    };
    let storage = nowhere.storage();
    let mut sink = ObjectStoreSink::create(&storage, "t.tensor");
    sink.write_tensor(&counting(10)).unwrap();
    let err = sink.finish().unwrap_err();
    assert!(
        matches!(err, ObjectStoreError::NoSuchBucket { .. }),
        "{err}"
    );
    let err = ObjectStoreSource::open(&storage, "t.tensor").unwrap_err();
    assert!(
        matches!(
            err,
            ObjectStoreError::NoSuchBucket { .. } | ObjectStoreError::NotFound { .. }
        ),
        "{err}"
    );
    // A big message finds out when its upload starts.
    let big = TransferOptions::new().with_part_size(5 << 20);
    let mut sink = ObjectStoreSink::create(&storage.with_transfer(big), "big.tensor");
    let err = sink.write_tensor(&counting(2 << 20)).unwrap_err();
    assert!(
        matches!(typed(&err), ObjectStoreError::NoSuchBucket { .. }),
        "{err}"
    );
}

#[test]
fn an_object_cut_short_behind_the_reader_is_an_error() {
    let Some(s3) = S3::shared() else { return };
    let storage = s3
        .storage()
        .with_transfer(TransferOptions::new().with_read_ahead(4096));
    let key = Path::from(unique("cut"));
    let tensors = [counting(100), counting(100_000)];
    let whole = expected_bytes(&tensors);
    storage.put(&key, whole.clone().into()).unwrap();
    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    assert_eq!(source.read_tensor().unwrap().len(), 100);
    storage
        .put(&key, whole[..whole.len() - 1000].to_vec().into())
        .unwrap();
    let err = source.read_tensor().unwrap_err();
    assert!(
        matches!(typed(&err), ObjectStoreError::Changed { .. }),
        "{err}"
    );
    // Read afresh, the cut object is a truncated message.
    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    source.read_tensor().unwrap();
    let err = source.read_tensor().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                part: "message body",
                ..
            }
        ),
        "{err}"
    );
    // Deleted meanwhile: the same.
    storage.put(&key, whole.into()).unwrap();
    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    storage.delete(&key).unwrap();
    source.read_tensor().unwrap();
    let err = source.read_tensor().unwrap_err();
    assert!(
        matches!(
            typed(&err),
            ObjectStoreError::Changed { .. } | ObjectStoreError::NotFound { .. }
        ),
        "{err}"
    );
}

/// Asserts that `f` fails within `limit`, returning its error.
fn fails_within<T: std::fmt::Debug, E>(limit: Duration, f: impl FnOnce() -> Result<T, E>) -> E {
    let start = Instant::now();
    let result = f();
    let elapsed = start.elapsed();
    assert!(elapsed < limit, "took {elapsed:?}, more than {limit:?}");
    result.expect_err("must fail")
}

#[test]
fn a_server_frozen_or_killed_mid_transfer() {
    let Some(server) = PrivateServer::start("faults") else {
        return;
    };
    let transfer = TransferOptions::new()
        .with_part_size(5 << 20)
        .with_concurrency(2);
    let storage = server
        .s3
        .storage_with(impatient())
        .with_transfer(transfer.clone());
    let tensor = Tensor::from_vec((0..4 << 20).collect::<Vec<u32>>(), vec![4 << 20]).unwrap();
    let read_key = Path::from("read.tensor");
    // Written with the default (patient) timeouts: a busy machine must not fail the setup.
    let patient = server.s3.storage().with_transfer(transfer.clone());
    let mut sink = ObjectStoreSink::create(&patient, read_key.clone());
    sink.write_tensor(&tensor).unwrap(); // 16 MiB
    sink.finish().unwrap();

    // Frozen mid-upload: the upload times out, is reported, and leaves nothing.
    let upload_key = Path::from("frozen-upload.tensor");
    let mut sink = ObjectStoreSink::create(&storage, upload_key.clone());
    sink.write_tensor(&counting(2 << 20)).unwrap(); // 8 MiB: the upload has started
    assert!(sink.is_multipart());
    server.freeze();
    let err = fails_within(Duration::from_secs(30), || {
        sink.write_tensor(&tensor)
            .map_err(|e| e.to_string())
            .and_then(|_| sink.finish().map_err(|e| e.to_string()))
    });
    server.thaw();
    assert!(
        err.contains("did not answer in time") || err.contains("broke off"),
        "{err}"
    );
    assert!(
        !storage.exists(&upload_key).unwrap(),
        "nothing under the key"
    );

    // Frozen between a header and its body: the read times out.
    let mut source = ObjectStoreSource::open(&storage, read_key.clone()).unwrap();
    server.freeze();
    let err = fails_within(Duration::from_secs(30), || source.read_tensor());
    server.thaw();
    assert!(
        matches!(
            typed(&err),
            ObjectStoreError::TimedOut { .. } | ObjectStoreError::Interrupted { .. }
        ),
        "{err}"
    );

    // Killed in the middle of a body: each ranged GET is slowed down so the kill lands
    // while the body is arriving.
    let slowed = ThrottledStore::new(
        Arc::clone(storage.store()),
        ThrottleConfig {
            wait_get_per_call: Duration::from_millis(100),
            ..ThrottleConfig::default()
        },
    );
    let slow = ObjectStorage::new(Arc::new(slowed)).with_transfer(
        TransferOptions::new()
            .with_part_size(256 << 10)
            .with_concurrency(1),
    );
    let mut source = ObjectStoreSource::open(&slow, read_key.clone()).unwrap();
    let killer = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            server.kill();
        });
        fails_within(Duration::from_secs(30), || source.read_tensor())
    });
    assert!(
        matches!(
            typed(&killer),
            ObjectStoreError::Unreachable { .. } | ObjectStoreError::Interrupted { .. }
        ),
        "{killer}"
    );

    // Dead: uploads and opens fail fast with "unreachable".
    let mut sink = ObjectStoreSink::create(&storage, "dead.tensor");
    sink.write_tensor(&counting(10)).unwrap();
    let err = fails_within(Duration::from_secs(30), || sink.finish());
    assert!(matches!(err, ObjectStoreError::Unreachable { .. }), "{err}");
    let err = fails_within(Duration::from_secs(30), || {
        ObjectStoreSource::open(&storage, read_key.clone())
    });
    assert!(matches!(err, ObjectStoreError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot reach the object store"),
        "{err}"
    );
}
