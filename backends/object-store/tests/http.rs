//! The backend against a real HTTP server with WebDAV (WsgiDAV, started around the tests by
//! `.ci/webdav-server.sh run`, its address in `TENSOR_IPC_HTTP_ENDPOINT`): the conformance
//! suite over an `http://` URL, and messages larger than a part, which a plain HTTP server
//! takes in one PUT (it has no multipart uploads). Without a server the tests skip loudly,
//! and fail under `CI`.

use tensor_ipc::conformance::run_all;
use tensor_ipc_object_store::{ObjectStorage, Path, TransferOptions};

use crate::memory::{Keys, assert_reads_back, contiguous_and_strided, written};
use crate::s3::unique;

/// The server's base URL, or `None` (after saying so) when the tests run without one.
fn server() -> Option<String> {
    match std::env::var("TENSOR_IPC_HTTP_ENDPOINT") {
        Ok(endpoint) => Some(endpoint),
        Err(_) => {
            crate::peers::skipped(
                "the tests against a real HTTP (WebDAV) server",
                "TENSOR_IPC_HTTP_ENDPOINT is not set; run them through \
                 `bash .ci/webdav-server.sh run cargo test`",
            );
            None
        }
    }
}

/// The server's root as storage (a plain `http://` URL: plain HTTP allowed by the URL alone).
fn storage(endpoint: &str, transfer: TransferOptions) -> ObjectStorage {
    ObjectStorage::from_url(&format!("{endpoint}/"))
        .expect("http storage")
        .0
        .with_transfer(transfer)
}

#[test]
fn http_conforms() {
    let Some(endpoint) = server() else { return };
    run_all(&mut Keys::new(
        storage(&endpoint, TransferOptions::new()),
        &unique("suite"),
    ));
    // Parts of 4 KiB: the suite's larger messages span many parts, all sent in one PUT.
    let small_parts = TransferOptions::new().with_part_size(4 << 10);
    run_all(&mut Keys::new(
        storage(&endpoint, small_parts),
        &unique("suite-small-parts"),
    ));
}

#[test]
fn messages_larger_than_a_part_go_up_in_one_put() {
    let Some(endpoint) = server() else { return };
    let storage = storage(&endpoint, TransferOptions::new().with_part_size(1 << 20));
    let key = Path::from(format!("{}/large.tensor", unique("large")));
    let tensors = contiguous_and_strided(3 << 20, 1024, 600);
    let sink = written(&storage, &key, &tensors);
    assert!(!sink.is_multipart());
    sink.finish().unwrap();
    assert_reads_back(&storage, &key, &tensors);
    storage.delete(&key).unwrap();
}
