//! Mutation fuzzing: valid frames of every request type with random bytes
//! changed are thrown at a store; no store thread may panic, and the store
//! must keep serving well-behaved clients.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{AnyRequest, Message, ObjectId};
use tensor_ipc_plasma_store::StoreBuilder;

static PANICS: AtomicUsize = AtomicUsize::new(0);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn requests() -> Vec<AnyRequest> {
    let id = |n: u8| ObjectId([n; 20]);
    vec![
        AnyRequest::from(ConnectRequest),
        AnyRequest::from(CreateRequest {
            object_id: id(1),
            evict_if_full: true,
            data_size: 100,
            metadata_size: 4,
            device_num: 0,
        }),
        AnyRequest::from(CreateAndSealRequest {
            object_id: id(2),
            evict_if_full: true,
            data: b"hello".to_vec(),
            metadata: b"md".to_vec(),
            digest: vec![1; 8],
        }),
        AnyRequest::from(CreateAndSealBatchRequest {
            object_ids: vec![id(3), id(4)],
            evict_if_full: false,
            data: vec![b"a".to_vec(), b"bb".to_vec()],
            metadata: vec![vec![], b"m".to_vec()],
            digest: vec![vec![2; 8], vec![3; 8]],
        }),
        AnyRequest::from(AbortRequest { object_id: id(1) }),
        AnyRequest::from(SealRequest {
            object_id: id(1),
            digest: vec![4; 8],
        }),
        AnyRequest::from(GetRequest {
            object_ids: vec![id(2), id(9), id(2)],
            timeout_ms: 5,
        }),
        AnyRequest::from(ReleaseRequest { object_id: id(2) }),
        AnyRequest::from(DeleteRequest {
            object_ids: vec![id(2), id(3)],
        }),
        AnyRequest::from(ContainsRequest { object_id: id(4) }),
        AnyRequest::from(ListRequest),
        AnyRequest::from(EvictRequest { num_bytes: 10 }),
        AnyRequest::from(SetOptionsRequest {
            client_name: "fuzz".into(),
            output_memory_quota: 1000,
        }),
        AnyRequest::from(GetDebugStringRequest),
        AnyRequest::from(RefreshLruRequest {
            object_ids: vec![id(2), id(4)],
        }),
    ]
}

#[test]
fn mutated_requests_never_panic_the_store() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let dir = tempfile::tempdir().unwrap();
    let store = StoreBuilder::new()
        .socket(dir.path().join("plasma.sock"))
        .memory(1 << 20)
        .spawn()
        .unwrap();
    let frames: Vec<Vec<u8>> = requests().iter().map(AnyRequest::encode_frame).collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..1500 {
        let mut frame = frames[rng.below(frames.len())].clone();
        // Mutate 1 to 4 body bytes (the header stays valid so the body is parsed).
        for _ in 0..=rng.below(4) {
            if frame.len() > 24 {
                let at = 24 + rng.below(frame.len() - 24);
                frame[at] = rng.next() as u8;
            }
        }
        let mut s = UnixStream::connect(store.socket_path()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        // Sometimes a valid request first, so state exists to trip over.
        if rng.below(2) == 0 {
            s.write_all(&frames[rng.below(frames.len())]).unwrap();
        }
        let _ = s.write_all(&frame);
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }
    // Every connection is gone; the store still serves.
    let mut s = UnixStream::connect(store.socket_path()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&ConnectRequest.encode_frame()).unwrap();
    let frame = tensor_ipc_plasma_protocol::frame::read_frame(&mut s, 1 << 20).unwrap();
    assert_eq!(
        ConnectReply::decode(&frame.body).unwrap(),
        ConnectReply {
            memory_capacity: 1 << 20
        }
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a store thread panicked");
}
