//! The backend over in-memory stores (`memory://` and a recording wrapper): the conformance
//! suite, what the sink uploads and when, what the source fetches.

use std::sync::Arc;

use proptest::prelude::*;
use tensor_ipc::conformance::{Backend, run_all};
use tensor_ipc::{
    DType, Error, Header, ReadOptions, Tensor, TensorSink, TensorSinkExt, TensorSourceExt,
    read_tensor, write_tensor,
};
use tensor_ipc_object_store::object_store::memory::InMemory;
use tensor_ipc_object_store::{
    ObjectStorage, ObjectStoreError, ObjectStoreSink, ObjectStoreSource, Path, TransferOptions,
};

use crate::recording::{Call, Recording};

/// Each sink writes a new key of one storage.
pub struct Keys {
    pub storage: ObjectStorage,
    pub prefix: String,
    pub next: u32,
}

impl Keys {
    pub fn new(storage: ObjectStorage, prefix: &str) -> Keys {
        Keys {
            storage,
            prefix: prefix.to_owned(),
            next: 0,
        }
    }

    pub fn key(&mut self) -> Path {
        self.next += 1;
        Path::from(format!("{}/{}.tensor", self.prefix, self.next))
    }
}

impl Backend for Keys {
    type Sink = ObjectStoreSink;
    type Source = ObjectStoreSource;
    fn sink(&mut self) -> ObjectStoreSink {
        let key = self.key();
        ObjectStoreSink::create(&self.storage, key)
    }
    fn source(&mut self, sink: ObjectStoreSink) -> ObjectStoreSource {
        let (storage, url) = (self.storage.clone(), sink.url().to_owned());
        let info = sink.finish().expect("finish");
        assert_eq!(info.url, url);
        let key = url
            .strip_prefix(&storage.url_of(&Path::from("")))
            .expect("own url");
        ObjectStoreSource::open(&storage, Path::from(key)).expect("open")
    }
    fn source_from_bytes(&mut self, bytes: &[u8]) -> ObjectStoreSource {
        let key = self.key();
        self.storage
            .put(&key, bytes::Bytes::copy_from_slice(bytes))
            .expect("put");
        ObjectStoreSource::open(&self.storage, key).expect("open")
    }
}

/// A fresh in-memory store behind a recording wrapper.
pub fn recorded(transfer: TransferOptions) -> (ObjectStorage, Arc<Recording>) {
    let recording = Recording::new(Arc::new(InMemory::new()));
    let storage = ObjectStorage::new(recording.clone()).with_transfer(transfer);
    (storage, recording)
}

/// `n` u32 values counting up.
pub fn counting(n: usize) -> Tensor<'static> {
    Tensor::from_vec((0..n as u32).collect::<Vec<_>>(), vec![n]).unwrap()
}

/// Every other column of a `rows x 2*cols` u32 matrix: not contiguous, so its body is gathered
/// (`write_gather`) into the upload's parts a piece at a time.
pub fn strided(rows: usize, cols: usize) -> Tensor<'static> {
    let base = counting(rows * cols * 2);
    Tensor::with_layout(
        DType::UInt32,
        base.data().clone(),
        vec![rows, cols],
        vec![cols * 8, 8],
        Vec::new(),
    )
    .unwrap()
}

/// What `write_tensor` writes for these tensors, back to back.
pub fn expected_bytes(tensors: &[Tensor<'_>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for t in tensors {
        write_tensor(t, &mut bytes).unwrap();
    }
    bytes
}

/// A float32 tensor of `len` counting values (written from its own memory) and a `rows x
/// cols` strided one (gathered), as the large-object tests write them.
pub fn contiguous_and_strided(len: usize, rows: usize, cols: usize) -> [Tensor<'static>; 2] {
    let values = (0..len).map(|i| i as f32).collect::<Vec<_>>();
    [
        Tensor::from_vec(values, vec![len]).unwrap(),
        strided(rows, cols),
    ]
}

/// A sink for `key` with `tensors` written and not finished: nothing is under the key yet.
pub fn written(storage: &ObjectStorage, key: &Path, tensors: &[Tensor<'_>]) -> ObjectStoreSink {
    let mut sink = ObjectStoreSink::create(storage, key.clone());
    for t in tensors {
        sink.write_tensor(t).unwrap();
    }
    assert!(
        !storage.exists(key).unwrap(),
        "nothing visible before finish"
    );
    sink
}

/// Reads the object at `key` back: exactly `tensors`' values and shapes, each body 64-byte
/// aligned, and then the end of the stream.
pub fn assert_reads_back(storage: &ObjectStorage, key: &Path, tensors: &[Tensor<'_>]) {
    let mut source = ObjectStoreSource::open(storage, key.clone()).unwrap();
    assert_eq!(source.size(), expected_bytes(tensors).len() as u64);
    for t in tensors {
        let read = source.read_tensor().unwrap();
        assert_eq!(read.shape(), t.shape());
        assert_eq!(read.as_bytes().as_ptr() as usize % 64, 0);
        assert_eq!(
            read.to_row_major_bytes().unwrap(),
            t.to_row_major_bytes().unwrap()
        );
    }
    let options = tensor_ipc::ReadOptions::default();
    assert!(
        source.read_message_header(&options).unwrap().is_none(),
        "nothing more"
    );
}

fn object_bytes(storage: &ObjectStorage, key: &Path) -> Vec<u8> {
    let store = storage.store().clone();
    let key = key.clone();
    std::thread::spawn(move || tokio_free_get(store.as_ref(), &key))
        .join()
        .unwrap()
}

/// Reads a whole object with a throwaway single-threaded runtime.
fn tokio_free_get(store: &dyn tensor_ipc_object_store::ObjectStore, key: &Path) -> Vec<u8> {
    use tensor_ipc_object_store::object_store::ObjectStoreExt;
    futures::executor::block_on(async { store.get(key).await.unwrap().bytes().await.unwrap() })
        .to_vec()
}

#[test]
fn memory_urls_conform() {
    let (storage, _) = ObjectStorage::from_url("memory://conformance/").unwrap();
    run_all(&mut Keys::new(storage, "suite"));
}

#[test]
fn tiny_parts_and_windows_conform() {
    // Every message spans parts and windows (64-byte parts keep the suite's 64 KiB messages
    // within the 10,000-part limit): multipart uploads, refetched windows and
    // bodies fetched in several ranges all go through the suite.
    for part_size in [64, 100] {
        let transfer = TransferOptions::new()
            .with_part_size(part_size)
            .with_read_ahead(8)
            .with_concurrency(3);
        let (storage, _) = recorded(transfer);
        run_all(&mut Keys::new(storage, "tiny"));
    }
}

#[test]
fn small_messages_go_up_in_one_put_when_finished() {
    let (storage, recording) = recorded(TransferOptions::new().with_part_size(1 << 20));
    let key = Path::from("small.tensor");
    let tensors = [counting(10), strided(3, 4), counting(1000)];
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    for t in &tensors {
        sink.write_tensor(t).unwrap();
    }
    assert!(!sink.is_multipart());
    assert!(recording.take().is_empty(), "nothing sent before finish");
    assert!(
        !storage.exists(&key).unwrap(),
        "nothing visible before finish"
    );
    assert_eq!(recording.take(), [Call::Head]);
    let info = sink.finish().unwrap();
    let want = expected_bytes(&tensors);
    assert_eq!(recording.take(), [Call::Put { len: want.len() }]);
    assert_eq!(info.size, want.len() as u64);
    assert_eq!(object_bytes(&storage, &key), want);
}

#[test]
fn large_messages_stream_in_parts_and_appear_on_completion() {
    let part = 64 << 10;
    let (storage, recording) = recorded(
        TransferOptions::new()
            .with_part_size(part)
            .with_concurrency(2),
    );
    let key = Path::from("large.tensor");
    let tensors = [counting(100_000), strided(300, 200), counting(5)];
    let want = expected_bytes(&tensors);
    let sink = written(&storage, &key, &tensors);
    assert!(sink.is_multipart());
    sink.finish().unwrap();
    let calls: Vec<Call> = recording
        .take()
        .into_iter()
        .filter(|c| *c != Call::Head)
        .collect();
    assert_eq!(calls[0], Call::StartUpload);
    assert_eq!(calls.last(), Some(&Call::Complete));
    let parts: Vec<usize> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Part { len } => Some(*len),
            _ => None,
        })
        .collect();
    assert_eq!(parts.len(), want.len().div_ceil(part));
    assert!(parts[..parts.len() - 1].iter().all(|&len| len == part));
    assert!(!calls.iter().any(|c| matches!(c, Call::Put { .. })));
    assert_eq!(object_bytes(&storage, &key), want);
}

/// A store without multipart uploads (a plain HTTP server): every message still arrives,
/// in one PUT on `finish` of the parts kept until then, and nothing is visible before.
#[test]
fn stores_without_multipart_uploads_get_one_put() {
    let part = 64 << 10;
    let transfer = TransferOptions::new().with_part_size(part);
    let recording = Recording::without_multipart(Arc::new(InMemory::new()));
    let storage = ObjectStorage::new(recording.clone()).with_transfer(transfer.clone());
    let key = Path::from("large.tensor");
    let tensors = [counting(100_000), strided(300, 200), counting(5)];
    let want = expected_bytes(&tensors);
    let sink = written(&storage, &key, &tensors);
    assert!(!sink.is_multipart());
    let info = sink.finish().unwrap();
    let calls: Vec<Call> = recording
        .take()
        .into_iter()
        .filter(|c| *c != Call::Head)
        .collect();
    assert_eq!(calls, [Call::StartUpload, Call::Put { len: want.len() }]);
    assert_eq!(info.size, want.len() as u64);
    assert_eq!(object_bytes(&storage, &key), want);
    // The whole suite, with messages spanning many parts.
    let recording = Recording::without_multipart(Arc::new(InMemory::new()));
    let storage = ObjectStorage::new(recording).with_transfer(transfer.with_part_size(100));
    run_all(&mut Keys::new(storage, "no-multipart"));
}

#[test]
fn a_failed_part_aborts_the_upload_and_the_sink() {
    let part = 16 << 10;
    let (storage, recording) = recorded(TransferOptions::new().with_part_size(part));
    let key = Path::from("failed.tensor");
    recording.fail_part(2);
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    let first = sink.write_tensor(&counting(100_000));
    // The failure shows on a later part's wait or at the latest on finish.
    let outcome = first.map_err(|e| e.to_string()).and_then(|_| {
        sink.write_tensor(&counting(10_000))
            .map_err(|e| e.to_string())
    });
    let message = match outcome {
        Err(message) => message,
        Ok(_) => sink.finish().unwrap_err().to_string(),
    };
    assert!(message.contains("part 2 refused by the test"), "{message}");
    let calls = recording.take();
    assert!(calls.contains(&Call::Abort), "{calls:?}");
    assert!(!calls.contains(&Call::Complete));
    assert!(!storage.exists(&key).unwrap());
}

#[test]
fn a_failed_sink_refuses_further_writes() {
    let (storage, recording) = recorded(TransferOptions::new().with_part_size(1024));
    recording.fail_part(1);
    let mut sink = ObjectStoreSink::create(&storage, "refuses.tensor");
    let mut failed = false;
    for _ in 0..8 {
        if sink.write_tensor(&counting(2000)).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the refused part surfaced while writing");
    let err = sink.write_tensor(&counting(3)).unwrap_err();
    let typed = ObjectStoreError::find(&err);
    assert!(
        matches!(typed, Some(ObjectStoreError::SinkState { .. })),
        "{err}"
    );
    assert!(sink.finish().is_err());
}

#[test]
fn dropping_an_unfinished_sink_aborts() {
    let (storage, recording) = recorded(TransferOptions::new().with_part_size(4096));
    let mut sink = ObjectStoreSink::create(&storage, "dropped.tensor");
    sink.write_tensor(&counting(10_000)).unwrap();
    drop(sink);
    assert!(recording.take().contains(&Call::Abort));
    assert!(!storage.exists(&Path::from("dropped.tensor")).unwrap());
    recording.take();
    // A sink that never filled a part sent nothing at all.
    let sink = ObjectStoreSink::create(&storage, "never.tensor");
    drop(sink);
    assert!(recording.take().is_empty());
}

#[test]
fn an_uncommitted_reservation_is_discarded() {
    let (storage, _) = recorded(TransferOptions::new().with_part_size(100));
    let mut sink = ObjectStoreSink::create(&storage, "discard.tensor");
    sink.reserve(40).unwrap().fill(0xEE);
    sink.reserve(500).unwrap().fill(0xDD);
    sink.write_tensor(&counting(7)).unwrap();
    assert!(sink.commit().is_err(), "commit without reserve");
    // A reservation still pending at `finish` is abandoned too, as by every sink (the
    // conformance suite's rule).
    sink.reserve(3).unwrap().fill(0xCC);
    sink.finish().unwrap();
    let mut source = ObjectStoreSource::open(&storage, "discard.tensor").unwrap();
    assert_eq!(
        source.read_tensor().unwrap().to_vec::<u32>().unwrap(),
        [0, 1, 2, 3, 4, 5, 6]
    );
    assert!(matches!(source.read_tensor(), Err(Error::EndOfStream)));
}

#[test]
fn headers_are_read_without_their_bodies() {
    let (storage, recording) = recorded(TransferOptions::new().with_read_ahead(4096));
    let key = Path::from("headers.tensor");
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    sink.write_tensor(&counting(1 << 20)).unwrap();
    sink.write_tensor(&counting(3)).unwrap();
    sink.write_tensor(&counting(1 << 18)).unwrap();
    sink.finish().unwrap();
    recording.take();
    let mut source = ObjectStoreSource::open(&storage, key).unwrap();
    let options = ReadOptions::default();
    let mut shapes = Vec::new();
    while let Some(head) = source.read_message_header(&options).unwrap() {
        let Header::Tensor(header) = head.header else {
            panic!("not a tensor")
        };
        shapes.push(header.shape);
    }
    assert_eq!(shapes, [vec![1 << 20], vec![3], vec![1 << 18]]);
    let calls = recording.take();
    // The first window holds the first header; the second, fetched after skipping the first
    // body, holds the small second message and the third header.
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(Recording::bytes_fetched(&calls) <= 2 * 4096, "{calls:?}");
}

#[test]
fn bodies_arrive_aligned_in_ranges_of_one_part() {
    let part = 100_000;
    let (storage, recording) = recorded(
        TransferOptions::new()
            .with_part_size(part)
            .with_read_ahead(1000),
    );
    let key = Path::from("ranges.tensor");
    let tensor = Tensor::from_vec(
        (0..250_000).map(f64::from).collect::<Vec<_>>(),
        vec![500, 500],
    )
    .unwrap();
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    sink.write_tensor(&tensor).unwrap();
    sink.finish().unwrap();
    recording.take();
    let mut source = ObjectStoreSource::open(&storage, key).unwrap();
    let back = read_tensor(&mut source).unwrap();
    assert_eq!(
        back.to_vec::<f64>().unwrap(),
        tensor.to_vec::<f64>().unwrap()
    );
    assert_eq!(back.as_bytes().as_ptr() as usize % 64, 0, "64-byte aligned");
    let calls = recording.take();
    let body_ranges: Vec<_> = calls[1..]
        .iter()
        .map(|c| match c {
            Call::Get { range: Some(r) } => r.end - r.start,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        body_ranges.len(),
        (2_000_000usize - 1000 + 256).div_ceil(part)
    );
    assert!(body_ranges.iter().all(|&len| len <= part as u64));
    assert_eq!(Recording::bytes_fetched(&calls), source.size());
}

#[test]
fn an_object_replaced_while_read_is_an_error() {
    let (storage, _) = recorded(TransferOptions::new().with_read_ahead(512));
    let key = Path::from("replaced.tensor");
    let mut sink = ObjectStoreSink::create(&storage, key.clone());
    sink.write_tensor(&counting(10)).unwrap();
    sink.write_tensor(&counting(10_000)).unwrap();
    sink.finish().unwrap();
    let whole = object_bytes(&storage, &key);
    let mut source = ObjectStoreSource::open(&storage, key.clone()).unwrap();
    assert_eq!(source.read_tensor().unwrap().len(), 10);
    // Cut the object short behind the source's back.
    storage
        .put(
            &key,
            bytes::Bytes::copy_from_slice(&whole[..whole.len() / 2]),
        )
        .unwrap();
    let err = source.read_tensor().unwrap_err();
    assert!(
        matches!(
            ObjectStoreError::find(&err),
            Some(ObjectStoreError::Changed { .. })
        ),
        "{err}"
    );
    // Opened afresh, the cut object is a truncated message.
    let mut source = ObjectStoreSource::open(&storage, key).unwrap();
    source.read_tensor().unwrap();
    assert!(matches!(
        source.read_tensor(),
        Err(Error::Truncated {
            part: "message body",
            ..
        })
    ));
}

#[test]
fn missing_objects_and_empty_objects() {
    let (storage, _) = recorded(TransferOptions::new());
    let err = ObjectStoreSource::open(&storage, "absent.tensor").unwrap_err();
    assert!(matches!(err, ObjectStoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("absent.tensor"), "{err}");
    let sink = ObjectStoreSink::create(&storage, "empty.tensor");
    assert_eq!(sink.finish().unwrap().size, 0);
    let mut source = ObjectStoreSource::open(&storage, "empty.tensor").unwrap();
    assert_eq!(source.size(), 0);
    assert!(matches!(source.read_tensor(), Err(Error::EndOfStream)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any sequence of messages, any part size and window: the object holds exactly what
    /// `write_tensor` writes, and reads back tensor by tensor.
    #[test]
    fn any_messages_any_parts(
        sizes in prop::collection::vec((0usize..3000, any::<bool>()), 1..6),
        part_size in 1usize..5000,
        read_ahead in 8usize..3000,
        concurrency in 1usize..4,
    ) {
        let transfer = TransferOptions::new()
            .with_part_size(part_size)
            .with_read_ahead(read_ahead)
            .with_concurrency(concurrency);
        let (storage, _) = recorded(transfer);
        let tensors: Vec<Tensor<'static>> = sizes
            .iter()
            .map(|&(n, gather)| if gather && n > 0 { strided(n, 2) } else { counting(n) })
            .collect();
        let key = Path::from("prop.tensor");
        let mut sink = ObjectStoreSink::create(&storage, key.clone());
        for t in &tensors {
            sink.write_tensor(t).unwrap();
        }
        sink.finish().unwrap();
        prop_assert_eq!(object_bytes(&storage, &key), expected_bytes(&tensors));
        let mut source = ObjectStoreSource::open(&storage, key).unwrap();
        for t in &tensors {
            let back = source.read_tensor().unwrap();
            prop_assert_eq!(back.to_vec::<u32>().unwrap(), t.to_vec::<u32>().unwrap());
        }
        prop_assert!(matches!(source.read_tensor(), Err(Error::EndOfStream)));
    }
}
