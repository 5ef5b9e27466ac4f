//! The `plasma_message` fuzz target (`fuzz/src/plasma_targets.rs`, included below) replayed as
//! an ordinary test over its committed corpus, plus the corpus's seeds: one input per message
//! type, made here from sample messages. `WRITE_FUZZ_SEEDS=1 cargo test -p tensor-ipc-plasma
//! --test client fuzz_corpus` rewrites the seed files; without it the test checks that the
//! committed ones are exactly what this generator makes.

use std::path::PathBuf;

use tensor_ipc_plasma::{Message, ObjectId, ObjectInfo, ObjectSpec, Status, notification};

#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/plasma_targets.rs"]
mod targets;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/plasma_message")
}

/// One message of every type the crate encodes, with realistic contents.
fn sample_messages() -> Vec<Message> {
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
        Message::ConnectRequest,
        Message::ConnectReply {
            memory_capacity: 1 << 30,
        },
        Message::CreateRequest {
            object_id: id(1),
            evict_if_full: true,
            data_size: 1000,
            metadata_size: 8,
            device_num: 0,
        },
        Message::CreateReply {
            object_id: id(1),
            object: spec,
            error: Status::Ok,
            store_fd: 3,
            mmap_size: 1 << 30,
        },
        Message::CreateAndSealRequest {
            object_id: id(2),
            evict_if_full: true,
            data: b"data".to_vec(),
            metadata: b"md".to_vec(),
            digest: vec![1; 8],
        },
        Message::CreateAndSealReply {
            error: Status::ObjectExists,
        },
        Message::CreateAndSealBatchRequest {
            object_ids: vec![id(3), id(4)],
            evict_if_full: false,
            data: vec![b"a".to_vec(), b"bb".to_vec()],
            metadata: vec![vec![], b"m".to_vec()],
            digest: vec![vec![2; 8], vec![3; 8]],
        },
        Message::CreateAndSealBatchReply {
            error: Status::OutOfMemory,
        },
        Message::AbortRequest { object_id: id(5) },
        Message::AbortReply { object_id: id(5) },
        Message::SealRequest {
            object_id: id(1),
            digest: vec![9; 8],
        },
        Message::SealReply {
            object_id: id(1),
            error: Status::Ok,
        },
        Message::GetRequest {
            object_ids: vec![id(1), id(6)],
            timeout_ms: -1,
        },
        Message::GetReply {
            object_ids: vec![id(1), id(6)],
            objects: vec![spec, ObjectSpec::MISSING],
            store_fds: vec![3],
            mmap_sizes: vec![1 << 30],
        },
        Message::ReleaseRequest { object_id: id(1) },
        Message::DeleteRequest {
            object_ids: vec![id(1), id(7)],
        },
        Message::DeleteReply {
            object_ids: vec![id(1), id(7)],
            errors: vec![Status::ObjectInUse, Status::ObjectNotFound],
        },
        Message::ContainsRequest { object_id: id(1) },
        Message::ContainsReply {
            object_id: id(1),
            has_object: true,
        },
        Message::ListRequest,
        Message::ListReply {
            objects: vec![info.clone()],
        },
        Message::EvictRequest { num_bytes: 1 << 20 },
        Message::EvictReply { num_bytes: 1 << 21 },
        Message::SubscribeRequest,
        Message::SetOptionsRequest {
            client_name: "loader-3".into(),
            output_memory_quota: 1 << 28,
        },
        Message::SetOptionsReply { error: Status::Ok },
        Message::GetDebugStringRequest,
        Message::GetDebugStringReply {
            debug_string: "num clients with quota: 0".into(),
        },
        Message::RefreshLruRequest {
            object_ids: vec![id(1)],
        },
        Message::RefreshLruReply,
    ]
}

/// The seed files: for each sample, the target's input (type byte, then the flatbuffer body)
/// and the whole frame; plus a notification body.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for message in sample_messages() {
        let name = format!("{:?}", message.kind());
        let frame = message.encode_frame();
        let kind = u8::try_from(message.kind() as i64).expect("message types fit a byte");
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
