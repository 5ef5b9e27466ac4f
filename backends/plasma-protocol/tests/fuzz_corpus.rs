//! The `plasma_message` fuzz target (`fuzz/src/plasma_targets.rs`, included below) replayed as
//! an ordinary test over its committed corpus, plus the corpus's seeds: one input per message
//! type, made here from sample messages. `WRITE_FUZZ_SEEDS=1 cargo test -p
//! tensor-ipc-plasma-protocol --test tests fuzz_corpus` rewrites the seed files; without it the
//! test checks that the committed ones are exactly what this generator makes (so they also pin
//! the encoder's bytes).

use std::path::PathBuf;

use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{Message, ObjectId, ObjectInfo, ObjectSpec, Status, notification};

#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/plasma_targets.rs"]
mod targets;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/plasma_message")
}

/// A message's name (its type's) and its whole frame.
fn sample<M: Message>(message: M) -> (String, Vec<u8>) {
    let name = std::any::type_name::<M>()
        .rsplit("::")
        .next()
        .unwrap_or_default();
    (name.to_owned(), message.encode_frame())
}

/// One message of every type the crate encodes, with realistic contents: `(name, frame)`.
fn sample_messages() -> Vec<(String, Vec<u8>)> {
    let id = |n: u8| ObjectId([n; 20]);
    let spec = ObjectSpec {
        segment_index: 3,
        data_offset: 4096,
        data_size: 1000,
        metadata_offset: 5096,
        metadata_size: 8,
        device_num: 0,
    };
    let info = ObjectInfo {
        object_id: id(1),
        data_size: 1000,
        metadata_size: 8,
        ref_count: 1,
        create_time: 1_700_000_000,
        construct_duration: 0,
        digest: vec![7; 8],
        is_deletion: false,
    };
    vec![
        sample(ConnectRequest),
        sample(ConnectReply {
            memory_capacity: 1 << 30,
        }),
        sample(CreateRequest {
            object_id: id(1),
            evict_if_full: true,
            data_size: 1000,
            metadata_size: 8,
            device_num: 0,
        }),
        sample(CreateReply {
            object_id: id(1),
            object: spec,
            error: Status::Ok,
            store_fd: 3,
            mmap_size: 1 << 30,
        }),
        sample(CreateAndSealRequest {
            object_id: id(2),
            evict_if_full: true,
            data: b"data".to_vec(),
            metadata: b"md".to_vec(),
            digest: vec![1; 8],
        }),
        sample(CreateAndSealReply {
            error: Status::ObjectExists,
        }),
        sample(CreateAndSealBatchRequest {
            object_ids: vec![id(3), id(4)],
            evict_if_full: false,
            data: vec![b"a".to_vec(), b"bb".to_vec()],
            metadata: vec![vec![], b"m".to_vec()],
            digest: vec![vec![2; 8], vec![3; 8]],
        }),
        sample(CreateAndSealBatchReply {
            error: Status::OutOfMemory,
        }),
        sample(AbortRequest { object_id: id(5) }),
        sample(AbortReply { object_id: id(5) }),
        sample(SealRequest {
            object_id: id(1),
            digest: vec![9; 8],
        }),
        sample(SealReply {
            object_id: id(1),
            error: Status::Ok,
        }),
        sample(GetRequest {
            object_ids: vec![id(1), id(6)],
            timeout_ms: -1,
        }),
        sample(GetReply {
            object_ids: vec![id(1), id(6)],
            objects: vec![spec, ObjectSpec::MISSING],
            store_fds: vec![3],
            mmap_sizes: vec![1 << 30],
        }),
        sample(ReleaseRequest { object_id: id(1) }),
        sample(DeleteRequest {
            object_ids: vec![id(1), id(7)],
        }),
        sample(DeleteReply {
            object_ids: vec![id(1), id(7)],
            errors: vec![Status::ObjectInUse, Status::ObjectNotFound],
        }),
        sample(ContainsRequest { object_id: id(1) }),
        sample(ContainsReply {
            object_id: id(1),
            has_object: true,
        }),
        sample(ListRequest),
        sample(ListReply {
            objects: vec![info.clone()],
        }),
        sample(EvictRequest { num_bytes: 1 << 20 }),
        sample(EvictReply { num_bytes: 1 << 21 }),
        sample(SubscribeRequest),
        sample(SetOptionsRequest {
            client_name: "loader-3".into(),
            output_memory_quota: 1 << 28,
        }),
        sample(SetOptionsReply { error: Status::Ok }),
        sample(GetDebugStringRequest),
        sample(GetDebugStringReply {
            debug_string: "num clients with quota: 0".into(),
        }),
        sample(RefreshLruRequest {
            object_ids: vec![id(1)],
        }),
        sample(RefreshLruReply),
    ]
}

/// The seed files: for each sample, the target's input (type byte, then the flatbuffer body)
/// and the whole frame; plus a notification body.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, frame) in sample_messages() {
        // The type word is little-endian and below 256: its first byte.
        let kind = frame[8];
        let mut input = vec![kind];
        input.extend_from_slice(&frame[24..]);
        out.push((format!("seed_{name}"), input));
        out.push((format!("seed_frame_{name}"), frame));
    }
    let infos = [ObjectInfo {
        object_id: ObjectId([8; 20]),
        data_size: -1,
        metadata_size: -1,
        ref_count: 0,
        create_time: 0,
        construct_duration: 0,
        digest: vec![],
        is_deletion: true,
    }];
    let mut input = vec![0u8];
    input.extend_from_slice(&notification::encode(&infos));
    out.push(("seed_notification".into(), input));
    out
}

#[test]
fn seeds_are_committed_and_the_corpus_replays_cleanly() {
    let dir = corpus_dir();
    let write = std::env::var_os("WRITE_FUZZ_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in seeds() {
        targets::plasma_message(&bytes);
        let path = dir.join(&name);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (WRITE_FUZZ_SEEDS=1 makes it)", path.display())
            });
            assert_eq!(committed, bytes, "{name} differs from the generator's");
        }
    }
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        targets::plasma_message(&data);
        replayed += 1;
    }
    assert!(replayed >= seeds().len(), "{replayed} corpus files");
}
