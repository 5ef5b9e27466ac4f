//! The backend against a real Azure Blob Storage server: Azurite, Microsoft's emulator,
//! started around the tests by `.ci/azurite.sh run` (which exports
//! `AZURE_STORAGE_USE_EMULATOR` and `AZURITE_BLOB_STORAGE_URL`, as object_store reads them,
//! and `TENSOR_IPC_AZURE_CONTAINER`). The conformance suite over an `az://` URL, a message
//! streamed as blocks and committed only on finish, an abandoned upload leaving nothing.
//! Without a server the tests skip loudly, and fail under `CI`.

use tensor_ipc::conformance::run_all;
use tensor_ipc_object_store::{ObjectStorage, Path, TransferOptions};

use crate::memory::{Keys, assert_reads_back, contiguous_and_strided, written};
use crate::s3::unique;

/// The container's URL, or `None` (after saying so) when the tests run without a server.
fn container() -> Option<String> {
    match std::env::var("TENSOR_IPC_AZURE_CONTAINER") {
        Ok(name) => Some(format!("az://{name}/")),
        Err(_) => {
            crate::peers::skipped(
                "the tests against a real Azure Blob Storage server (Azurite)",
                "TENSOR_IPC_AZURE_CONTAINER is not set; run them through \
                 `bash .ci/azurite.sh run cargo test`",
            );
            None
        }
    }
}

fn storage(url: &str, transfer: TransferOptions) -> ObjectStorage {
    ObjectStorage::from_url(url)
        .expect("azure storage")
        .0
        .with_transfer(transfer)
}

#[test]
fn azure_conforms() {
    let Some(url) = container() else { return };
    run_all(&mut Keys::new(
        storage(&url, TransferOptions::new()),
        &unique("suite"),
    ));
}

#[test]
fn large_messages_stream_as_blocks_and_appear_on_finish() {
    let Some(url) = container() else { return };
    let transfer = TransferOptions::new()
        .with_part_size(1 << 20)
        .with_concurrency(3);
    let storage = storage(&url, transfer);
    let key = Path::from(unique("large"));
    let tensors = contiguous_and_strided(3 << 20, 1024, 600);
    let sink = written(&storage, &key, &tensors);
    assert!(sink.is_multipart());
    sink.finish().unwrap();
    assert_reads_back(&storage, &key, &tensors);
    storage.delete(&key).unwrap();

    // Abandoned after some blocks went up: nothing under the key.
    let key = Path::from(unique("abandoned"));
    let sink = written(&storage, &key, &tensors[..1]);
    assert!(sink.is_multipart());
    drop(sink);
    assert!(
        !storage.exists(&key).unwrap(),
        "an abandoned upload leaves nothing"
    );
}
