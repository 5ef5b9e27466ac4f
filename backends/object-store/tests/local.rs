//! The backend over the local file system (`file://` URLs): the conformance suite.

use tensor_ipc::conformance::run_all;
use tensor_ipc::{TensorSinkExt, TensorSourceExt};
use tensor_ipc_object_store::{ObjectStorage, ObjectStoreSink, ObjectStoreSource};

use crate::memory::{Keys, counting};

#[test]
fn file_urls_conform() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(dir.path());
    let (storage, prefix) = ObjectStorage::from_url(&url).unwrap();
    run_all(&mut Keys::new(storage, prefix.as_ref()));
}

#[test]
fn file_url_objects_are_plain_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/t.tensor", url_of(dir.path()));
    let mut sink = ObjectStoreSink::create_url(&url).unwrap();
    sink.write_tensor(&counting(1000)).unwrap();
    assert!(
        !dir.path().join("t.tensor").exists(),
        "nothing before finish"
    );
    sink.finish().unwrap();
    let file = std::fs::read(dir.path().join("t.tensor")).unwrap();
    assert_eq!(file, crate::memory::expected_bytes(&[counting(1000)]));
    let back = ObjectStoreSource::open_url(&url)
        .unwrap()
        .read_tensor()
        .unwrap();
    assert_eq!(
        back.to_vec::<u32>().unwrap(),
        counting(1000).to_vec::<u32>().unwrap()
    );
}

fn url_of(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}
