//! The backend against a real Azure Blob Storage server: Azurite, Microsoft's emulator,
//! started around the tests by `.ci/azurite.sh run` (which exports
//! `AZURE_STORAGE_USE_EMULATOR` and `AZURITE_BLOB_STORAGE_URL`, as object_store reads them,
//! and `TENSOR_IPC_AZURE_CONTAINER`). The conformance suite over an `az://` URL, a message
//! streamed as blocks and committed only on finish, an abandoned upload leaving nothing.
//! Without a server the tests skip loudly, and fail under `CI`.

use tensor_ipc::conformance::run_all;
use tensor_ipc::{ReadOptions, Tensor, TensorSinkExt, TensorSourceExt};
use tensor_ipc_object_store::{
    ObjectStorage, ObjectStoreSink, ObjectStoreSource, Path, TransferOptions,
};

use crate::memory::{Keys, expected_bytes, strided};
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
    let storage = storage(
        &url,
        TransferOptions::new()
            .with_part_size(1 << 20)
            .with_concurrency(3),
    );
    let key = Path::from(unique("large"));
    let tensors = [
        Tensor::from_vec(
            (0..3 << 20).map(|i| i as f32).collect::<Vec<_>>(),
            vec![3 << 20],
        )
        .unwrap(),
        strided(1024, 600),
    ];
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    for t in &tensors {
        sink.write_tensor(t).unwrap();
    }
    assert!(sink.is_multipart());
    assert!(
        !storage.exists(&key).unwrap(),
        "nothing visible before finish"
    );
    let want = expected_bytes(&tensors);
    assert_eq!(sink.finish().unwrap().size, want.len() as u64);

    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    assert_eq!(source.size(), want.len() as u64);
    assert_eq!(
        source.read_tensor().unwrap().as_bytes(),
        tensors[0].as_bytes()
    );
    assert_eq!(
        source.read_tensor().unwrap().to_vec::<u32>().unwrap(),
        tensors[1].to_vec::<u32>().unwrap()
    );
    let options = ReadOptions::default();
    assert!(source.read_message_header(&options).unwrap().is_none());
    storage.delete(&key).unwrap();

    // Abandoned after some blocks went up: nothing under the key.
    let key = Path::from(unique("abandoned"));
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    sink.write_tensor(&tensors[0]).unwrap();
    assert!(sink.is_multipart());
    drop(sink);
    assert!(
        !storage.exists(&key).unwrap(),
        "an abandoned upload leaves nothing"
    );
}
