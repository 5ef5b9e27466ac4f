//! Typed Plasma messages and their FlatBuffers encoding.

use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};

use crate::ObjectId;
use crate::generated::plasma::flatbuf as fb;

/// Message type words (`enum MessageType : long` of `plasma.fbs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
#[allow(missing_docs)]
pub enum MessageType {
    DisconnectClient = 0,
    CreateRequest = 1,
    CreateReply = 2,
    CreateAndSealRequest = 3,
    CreateAndSealReply = 4,
    AbortRequest = 5,
    AbortReply = 6,
    SealRequest = 7,
    SealReply = 8,
    GetRequest = 9,
    GetReply = 10,
    ReleaseRequest = 11,
    ReleaseReply = 12,
    DeleteRequest = 13,
    DeleteReply = 14,
    ContainsRequest = 15,
    ContainsReply = 16,
    ListRequest = 17,
    ListReply = 18,
    ConnectRequest = 19,
    ConnectReply = 20,
    EvictRequest = 21,
    EvictReply = 22,
    SubscribeRequest = 23,
    UnsubscribeRequest = 24,
    DataRequest = 25,
    DataReply = 26,
    Notification = 27,
    SetOptionsRequest = 28,
    SetOptionsReply = 29,
    GetDebugStringRequest = 30,
    GetDebugStringReply = 31,
    CreateAndSealBatchRequest = 32,
    CreateAndSealBatchReply = 33,
    RefreshLruRequest = 34,
    RefreshLruReply = 35,
}

impl MessageType {
    /// All types, indexed by their value.
    const ALL: [MessageType; 36] = [
        Self::DisconnectClient,
        Self::CreateRequest,
        Self::CreateReply,
        Self::CreateAndSealRequest,
        Self::CreateAndSealReply,
        Self::AbortRequest,
        Self::AbortReply,
        Self::SealRequest,
        Self::SealReply,
        Self::GetRequest,
        Self::GetReply,
        Self::ReleaseRequest,
        Self::ReleaseReply,
        Self::DeleteRequest,
        Self::DeleteReply,
        Self::ContainsRequest,
        Self::ContainsReply,
        Self::ListRequest,
        Self::ListReply,
        Self::ConnectRequest,
        Self::ConnectReply,
        Self::EvictRequest,
        Self::EvictReply,
        Self::SubscribeRequest,
        Self::UnsubscribeRequest,
        Self::DataRequest,
        Self::DataReply,
        Self::Notification,
        Self::SetOptionsRequest,
        Self::SetOptionsReply,
        Self::GetDebugStringRequest,
        Self::GetDebugStringReply,
        Self::CreateAndSealBatchRequest,
        Self::CreateAndSealBatchReply,
        Self::RefreshLruRequest,
        Self::RefreshLruReply,
    ];

    /// The type for a raw word, if it is one of the 36 defined values.
    pub fn from_i64(kind: i64) -> Option<Self> {
        usize::try_from(kind)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }

    /// The raw word.
    pub fn as_i64(self) -> i64 {
        self as i64
    }
}

/// `PlasmaError`: the status code carried by replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum Status {
    /// Success.
    #[default]
    Ok = 0,
    /// The object id already exists.
    ObjectExists = 1,
    /// The object does not exist.
    ObjectNotFound = 2,
    /// The object does not fit (or the request was refused for lack of memory).
    OutOfMemory = 3,
    /// The object is not sealed.
    ObjectNotSealed = 4,
    /// The object is referenced by a client.
    ObjectInUse = 5,
}

impl Status {
    /// The status for a raw code.
    pub fn from_i32(code: i32) -> crate::Result<Self> {
        Ok(match code {
            0 => Self::Ok,
            1 => Self::ObjectExists,
            2 => Self::ObjectNotFound,
            3 => Self::OutOfMemory,
            4 => Self::ObjectNotSealed,
            5 => Self::ObjectInUse,
            _ => return Err(crate::Error::UnknownStatus { code }),
        })
    }
}

/// `PlasmaObjectSpec`: where an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectSpec {
    /// The segment key (`store_fd`).
    pub segment_index: i32,
    /// Offset of the data from the start of the segment.
    pub data_offset: u64,
    /// Data size; `u64::MAX` marks "not available" in a Get reply.
    pub data_size: u64,
    /// Offset of the metadata (always `data_offset + data_size`).
    pub metadata_offset: u64,
    /// Metadata size.
    pub metadata_size: u64,
    /// Device (0 = host).
    pub device_num: i32,
}

impl ObjectSpec {
    /// The Get-reply placeholder of an object that is not available.
    pub const MISSING: ObjectSpec = ObjectSpec {
        segment_index: 0,
        data_offset: 0,
        data_size: u64::MAX,
        metadata_offset: 0,
        metadata_size: 0,
        device_num: 0,
    };

    fn to_fb(self) -> fb::PlasmaObjectSpec {
        fb::PlasmaObjectSpec::new(
            self.segment_index,
            self.data_offset,
            self.data_size,
            self.metadata_offset,
            self.metadata_size,
            self.device_num,
        )
    }

    pub(crate) fn from_fb(s: &fb::PlasmaObjectSpec) -> Self {
        Self {
            segment_index: s.segment_index(),
            data_offset: s.data_offset(),
            data_size: s.data_size(),
            metadata_offset: s.metadata_offset(),
            metadata_size: s.metadata_size(),
            device_num: s.device_num(),
        }
    }
}

/// `ObjectInfo`: an entry of a List reply or of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectInfo {
    /// The object.
    pub object_id: ObjectId,
    /// Data bytes.
    pub data_size: i64,
    /// Metadata bytes.
    pub metadata_size: i64,
    /// Clients holding it.
    pub ref_count: i32,
    /// Creation time, Unix seconds.
    pub create_time: i64,
    /// Seconds from create to seal, -1 while unsealed.
    pub construct_duration: i64,
    /// The digest: 8 bytes once sealed, empty before.
    pub digest: Vec<u8>,
    /// True for a deletion notification.
    pub is_deletion: bool,
}

/// Every Plasma message this crate can encode and decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Message {
    ConnectRequest,
    ConnectReply {
        memory_capacity: i64,
    },
    CreateRequest {
        object_id: ObjectId,
        evict_if_full: bool,
        data_size: u64,
        metadata_size: u64,
        device_num: i32,
    },
    CreateReply {
        object_id: ObjectId,
        object: ObjectSpec,
        error: Status,
        store_fd: i32,
        mmap_size: i64,
    },
    CreateAndSealRequest {
        object_id: ObjectId,
        evict_if_full: bool,
        data: Vec<u8>,
        metadata: Vec<u8>,
        digest: Vec<u8>,
    },
    CreateAndSealReply {
        error: Status,
    },
    CreateAndSealBatchRequest {
        object_ids: Vec<ObjectId>,
        evict_if_full: bool,
        data: Vec<Vec<u8>>,
        metadata: Vec<Vec<u8>>,
        digest: Vec<Vec<u8>>,
    },
    CreateAndSealBatchReply {
        error: Status,
    },
    AbortRequest {
        object_id: ObjectId,
    },
    AbortReply {
        object_id: ObjectId,
    },
    SealRequest {
        object_id: ObjectId,
        digest: Vec<u8>,
    },
    SealReply {
        object_id: ObjectId,
        error: Status,
    },
    GetRequest {
        object_ids: Vec<ObjectId>,
        timeout_ms: i64,
    },
    GetReply {
        object_ids: Vec<ObjectId>,
        objects: Vec<ObjectSpec>,
        store_fds: Vec<i32>,
        mmap_sizes: Vec<i64>,
    },
    ReleaseRequest {
        object_id: ObjectId,
    },
    DeleteRequest {
        object_ids: Vec<ObjectId>,
    },
    DeleteReply {
        object_ids: Vec<ObjectId>,
        errors: Vec<Status>,
    },
    ContainsRequest {
        object_id: ObjectId,
    },
    ContainsReply {
        object_id: ObjectId,
        has_object: bool,
    },
    ListRequest,
    ListReply {
        objects: Vec<ObjectInfo>,
    },
    EvictRequest {
        num_bytes: u64,
    },
    EvictReply {
        num_bytes: u64,
    },
    SubscribeRequest,
    SetOptionsRequest {
        client_name: String,
        output_memory_quota: i64,
    },
    SetOptionsReply {
        error: Status,
    },
    GetDebugStringRequest,
    GetDebugStringReply {
        debug_string: String,
    },
    RefreshLruRequest {
        object_ids: Vec<ObjectId>,
    },
    RefreshLruReply,
}

/// Writes `bytes` as a FlatBuffers string (length, bytes, NUL), which may hold
/// arbitrary binary data, typed as the `&str` offset the generated code wants.
fn bstr<'a>(fbb: &mut FlatBufferBuilder<'a>, bytes: &[u8]) -> WIPOffset<&'a str> {
    WIPOffset::new(fbb.create_byte_string(bytes).value())
}

fn bstr_vec<'a, B: AsRef<[u8]>>(
    fbb: &mut FlatBufferBuilder<'a>,
    items: &[B],
) -> WIPOffset<Vector<'a, ForwardsUOffset<&'a str>>> {
    let offsets: Vec<WIPOffset<&'a str>> = items.iter().map(|b| bstr(fbb, b.as_ref())).collect();
    fbb.create_vector(&offsets)
}

fn ids_as_bytes(ids: &[ObjectId]) -> Vec<&[u8]> {
    ids.iter().map(|id| &id.0[..]).collect()
}

fn err(s: Status) -> fb::PlasmaError {
    fb::PlasmaError(s as i32)
}

/// Encodes an `ObjectInfo` table.
pub(crate) fn encode_object_info<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    info: &ObjectInfo,
    with_digest: bool,
) -> WIPOffset<fb::ObjectInfo<'a>> {
    let object_id = Some(bstr(fbb, &info.object_id.0));
    let digest = with_digest.then(|| bstr(fbb, &info.digest));
    fb::ObjectInfo::create(
        fbb,
        &fb::ObjectInfoArgs {
            object_id,
            data_size: info.data_size,
            metadata_size: info.metadata_size,
            ref_count: info.ref_count,
            create_time: info.create_time,
            construct_duration: info.construct_duration,
            digest,
            is_deletion: info.is_deletion,
        },
    )
}

impl Message {
    /// The message type word of this message.
    pub fn kind(&self) -> MessageType {
        use MessageType as T;
        match self {
            Self::ConnectRequest => T::ConnectRequest,
            Self::ConnectReply { .. } => T::ConnectReply,
            Self::CreateRequest { .. } => T::CreateRequest,
            Self::CreateReply { .. } => T::CreateReply,
            Self::CreateAndSealRequest { .. } => T::CreateAndSealRequest,
            Self::CreateAndSealReply { .. } => T::CreateAndSealReply,
            Self::CreateAndSealBatchRequest { .. } => T::CreateAndSealBatchRequest,
            Self::CreateAndSealBatchReply { .. } => T::CreateAndSealBatchReply,
            Self::AbortRequest { .. } => T::AbortRequest,
            Self::AbortReply { .. } => T::AbortReply,
            Self::SealRequest { .. } => T::SealRequest,
            Self::SealReply { .. } => T::SealReply,
            Self::GetRequest { .. } => T::GetRequest,
            Self::GetReply { .. } => T::GetReply,
            Self::ReleaseRequest { .. } => T::ReleaseRequest,
            Self::DeleteRequest { .. } => T::DeleteRequest,
            Self::DeleteReply { .. } => T::DeleteReply,
            Self::ContainsRequest { .. } => T::ContainsRequest,
            Self::ContainsReply { .. } => T::ContainsReply,
            Self::ListRequest => T::ListRequest,
            Self::ListReply { .. } => T::ListReply,
            Self::EvictRequest { .. } => T::EvictRequest,
            Self::EvictReply { .. } => T::EvictReply,
            Self::SubscribeRequest => T::SubscribeRequest,
            Self::SetOptionsRequest { .. } => T::SetOptionsRequest,
            Self::SetOptionsReply { .. } => T::SetOptionsReply,
            Self::GetDebugStringRequest => T::GetDebugStringRequest,
            Self::GetDebugStringReply { .. } => T::GetDebugStringReply,
            Self::RefreshLruRequest { .. } => T::RefreshLruRequest,
            Self::RefreshLruReply => T::RefreshLruReply,
        }
    }

    /// Encodes the FlatBuffers body of this message.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        macro_rules! finish {
            ($t:ident, $args:expr) => {{
                let root = fb::$t::create(&mut fbb, &$args);
                fbb.finish_minimal(root);
            }};
        }
        match self {
            Self::ConnectRequest => finish!(PlasmaConnectRequest, fb::PlasmaConnectRequestArgs {}),
            Self::ConnectReply { memory_capacity } => finish!(
                PlasmaConnectReply,
                fb::PlasmaConnectReplyArgs {
                    memory_capacity: *memory_capacity
                }
            ),
            Self::CreateRequest {
                object_id,
                evict_if_full,
                data_size,
                metadata_size,
                device_num,
            } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(
                    PlasmaCreateRequest,
                    fb::PlasmaCreateRequestArgs {
                        object_id,
                        evict_if_full: *evict_if_full,
                        data_size: *data_size,
                        metadata_size: *metadata_size,
                        device_num: *device_num,
                    }
                )
            }
            Self::CreateReply {
                object_id,
                object,
                error,
                store_fd,
                mmap_size,
            } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                let spec = object.to_fb();
                finish!(
                    PlasmaCreateReply,
                    fb::PlasmaCreateReplyArgs {
                        object_id,
                        plasma_object: Some(&spec),
                        error: err(*error),
                        store_fd: *store_fd,
                        mmap_size: *mmap_size,
                        ipc_handle: None,
                    }
                )
            }
            Self::CreateAndSealRequest {
                object_id,
                evict_if_full,
                data,
                metadata,
                digest,
            } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                let data = Some(bstr(&mut fbb, data));
                let metadata = Some(bstr(&mut fbb, metadata));
                let digest = Some(bstr(&mut fbb, digest));
                finish!(
                    PlasmaCreateAndSealRequest,
                    fb::PlasmaCreateAndSealRequestArgs {
                        object_id,
                        evict_if_full: *evict_if_full,
                        data,
                        metadata,
                        digest,
                    }
                )
            }
            Self::CreateAndSealReply { error } => finish!(
                PlasmaCreateAndSealReply,
                fb::PlasmaCreateAndSealReplyArgs { error: err(*error) }
            ),
            Self::CreateAndSealBatchRequest {
                object_ids,
                evict_if_full,
                data,
                metadata,
                digest,
            } => {
                let object_ids = Some(bstr_vec(&mut fbb, &ids_as_bytes(object_ids)));
                let data = Some(bstr_vec(&mut fbb, data));
                let metadata = Some(bstr_vec(&mut fbb, metadata));
                let digest = Some(bstr_vec(&mut fbb, digest));
                finish!(
                    PlasmaCreateAndSealBatchRequest,
                    fb::PlasmaCreateAndSealBatchRequestArgs {
                        object_ids,
                        evict_if_full: *evict_if_full,
                        data,
                        metadata,
                        digest,
                    }
                )
            }
            Self::CreateAndSealBatchReply { error } => finish!(
                PlasmaCreateAndSealBatchReply,
                fb::PlasmaCreateAndSealBatchReplyArgs { error: err(*error) }
            ),
            Self::AbortRequest { object_id } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(PlasmaAbortRequest, fb::PlasmaAbortRequestArgs { object_id })
            }
            Self::AbortReply { object_id } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(PlasmaAbortReply, fb::PlasmaAbortReplyArgs { object_id })
            }
            Self::SealRequest { object_id, digest } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                let digest = Some(bstr(&mut fbb, digest));
                finish!(
                    PlasmaSealRequest,
                    fb::PlasmaSealRequestArgs { object_id, digest }
                )
            }
            Self::SealReply { object_id, error } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(
                    PlasmaSealReply,
                    fb::PlasmaSealReplyArgs {
                        object_id,
                        error: err(*error)
                    }
                )
            }
            Self::GetRequest {
                object_ids,
                timeout_ms,
            } => {
                let object_ids = Some(bstr_vec(&mut fbb, &ids_as_bytes(object_ids)));
                finish!(
                    PlasmaGetRequest,
                    fb::PlasmaGetRequestArgs {
                        object_ids,
                        timeout_ms: *timeout_ms
                    }
                )
            }
            Self::GetReply {
                object_ids,
                objects,
                store_fds,
                mmap_sizes,
            } => {
                let object_ids = Some(bstr_vec(&mut fbb, &ids_as_bytes(object_ids)));
                let specs: Vec<fb::PlasmaObjectSpec> = objects.iter().map(|o| o.to_fb()).collect();
                let plasma_objects = Some(fbb.create_vector(&specs));
                let store_fds = Some(fbb.create_vector(store_fds));
                let mmap_sizes = Some(fbb.create_vector(mmap_sizes));
                let handles: Vec<WIPOffset<fb::CudaHandle>> = Vec::new();
                let handles = Some(fbb.create_vector(&handles));
                finish!(
                    PlasmaGetReply,
                    fb::PlasmaGetReplyArgs {
                        object_ids,
                        plasma_objects,
                        store_fds,
                        mmap_sizes,
                        handles
                    }
                )
            }
            Self::ReleaseRequest { object_id } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(
                    PlasmaReleaseRequest,
                    fb::PlasmaReleaseRequestArgs { object_id }
                )
            }
            Self::DeleteRequest { object_ids } => {
                let count = i32::try_from(object_ids.len()).unwrap_or(i32::MAX);
                let object_ids = Some(bstr_vec(&mut fbb, &ids_as_bytes(object_ids)));
                finish!(
                    PlasmaDeleteRequest,
                    fb::PlasmaDeleteRequestArgs { count, object_ids }
                )
            }
            Self::DeleteReply { object_ids, errors } => {
                let count = i32::try_from(object_ids.len()).unwrap_or(i32::MAX);
                let object_ids = Some(bstr_vec(&mut fbb, &ids_as_bytes(object_ids)));
                let codes: Vec<fb::PlasmaError> = errors.iter().map(|e| err(*e)).collect();
                let errors = Some(fbb.create_vector(&codes));
                finish!(
                    PlasmaDeleteReply,
                    fb::PlasmaDeleteReplyArgs {
                        count,
                        object_ids,
                        errors
                    }
                )
            }
            Self::ContainsRequest { object_id } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(
                    PlasmaContainsRequest,
                    fb::PlasmaContainsRequestArgs { object_id }
                )
            }
            Self::ContainsReply {
                object_id,
                has_object,
            } => {
                let object_id = Some(bstr(&mut fbb, &object_id.0));
                finish!(
                    PlasmaContainsReply,
                    fb::PlasmaContainsReplyArgs {
                        object_id,
                        has_object: i32::from(*has_object)
                    }
                )
            }
            Self::ListRequest => finish!(PlasmaListRequest, fb::PlasmaListRequestArgs {}),
            Self::ListReply { objects } => {
                let infos: Vec<_> = objects
                    .iter()
                    .map(|o| encode_object_info(&mut fbb, o, true))
                    .collect();
                let objects = Some(fbb.create_vector(&infos));
                finish!(PlasmaListReply, fb::PlasmaListReplyArgs { objects })
            }
            Self::EvictRequest { num_bytes } => finish!(
                PlasmaEvictRequest,
                fb::PlasmaEvictRequestArgs {
                    num_bytes: *num_bytes
                }
            ),
            Self::EvictReply { num_bytes } => finish!(
                PlasmaEvictReply,
                fb::PlasmaEvictReplyArgs {
                    num_bytes: *num_bytes
                }
            ),
            Self::SubscribeRequest => {
                finish!(PlasmaSubscribeRequest, fb::PlasmaSubscribeRequestArgs {})
            }
            Self::SetOptionsRequest {
                client_name,
                output_memory_quota,
            } => {
                let client_name = Some(fbb.create_string(client_name));
                finish!(
                    PlasmaSetOptionsRequest,
                    fb::PlasmaSetOptionsRequestArgs {
                        client_name,
                        output_memory_quota: *output_memory_quota
                    }
                )
            }
            Self::SetOptionsReply { error } => finish!(
                PlasmaSetOptionsReply,
                fb::PlasmaSetOptionsReplyArgs { error: err(*error) }
            ),
            Self::GetDebugStringRequest => {
                finish!(
                    PlasmaGetDebugStringRequest,
                    fb::PlasmaGetDebugStringRequestArgs {}
                )
            }
            Self::GetDebugStringReply { debug_string } => {
                let debug_string = Some(fbb.create_string(debug_string));
                finish!(
                    PlasmaGetDebugStringReply,
                    fb::PlasmaGetDebugStringReplyArgs { debug_string }
                )
            }
            Self::RefreshLruRequest { object_ids } => {
                let object_ids = Some(bstr_vec(&mut fbb, &ids_as_bytes(object_ids)));
                finish!(
                    PlasmaRefreshLRURequest,
                    fb::PlasmaRefreshLRURequestArgs { object_ids }
                )
            }
            Self::RefreshLruReply => {
                finish!(PlasmaRefreshLRUReply, fb::PlasmaRefreshLRUReplyArgs {})
            }
        }
        fbb.finished_data().to_vec()
    }

    /// Encodes the whole frame (header and body).
    pub fn encode_frame(&self) -> Vec<u8> {
        crate::frame::encode_frame(self.kind().as_i64(), &self.encode_body())
    }

    /// Decodes a body of message type `kind`, verifying it first.
    pub fn decode(kind: i64, body: &[u8]) -> crate::Result<Self> {
        crate::wire::decode(kind, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> ObjectId {
        ObjectId([b; 20])
    }

    #[test]
    fn every_message_roundtrips() {
        let info = ObjectInfo {
            object_id: id(0xff),
            data_size: 5,
            metadata_size: 2,
            ref_count: 1,
            create_time: 1_700_000_000,
            construct_duration: -1,
            digest: vec![],
            is_deletion: false,
        };
        let spec = ObjectSpec {
            segment_index: 4,
            data_offset: 64,
            data_size: 16,
            metadata_offset: 80,
            metadata_size: 4,
            device_num: 0,
        };
        let all = vec![
            Message::ConnectRequest,
            Message::ConnectReply {
                memory_capacity: 100_000_000,
            },
            Message::CreateRequest {
                object_id: id(0x80),
                evict_if_full: true,
                data_size: 16,
                metadata_size: 4,
                device_num: 0,
            },
            Message::CreateReply {
                object_id: id(1),
                object: spec,
                error: Status::Ok,
                store_fd: 4,
                mmap_size: 100_007_944,
            },
            Message::CreateReply {
                object_id: id(1),
                object: ObjectSpec::default(),
                error: Status::ObjectExists,
                store_fd: 0,
                mmap_size: 0,
            },
            Message::CreateAndSealRequest {
                object_id: id(0xc3),
                evict_if_full: false,
                data: vec![0xff, 0, 0xfe],
                metadata: b"md".to_vec(),
                digest: vec![1; 8],
            },
            Message::CreateAndSealReply {
                error: Status::OutOfMemory,
            },
            Message::CreateAndSealBatchRequest {
                object_ids: vec![id(1), id(2)],
                evict_if_full: true,
                data: vec![b"a".to_vec(), vec![]],
                metadata: vec![vec![], b"m".to_vec()],
                digest: vec![vec![0; 8], vec![9; 8]],
            },
            Message::CreateAndSealBatchReply {
                error: Status::ObjectExists,
            },
            Message::AbortRequest { object_id: id(3) },
            Message::AbortReply { object_id: id(3) },
            Message::SealRequest {
                object_id: id(4),
                digest: vec![7; 8],
            },
            Message::SealReply {
                object_id: id(4),
                error: Status::Ok,
            },
            Message::GetRequest {
                object_ids: vec![id(1), id(1), id(9)],
                timeout_ms: -1,
            },
            Message::GetReply {
                object_ids: vec![id(1), id(9)],
                objects: vec![spec, ObjectSpec::MISSING],
                store_fds: vec![4],
                mmap_sizes: vec![100_007_944],
            },
            Message::ReleaseRequest { object_id: id(5) },
            Message::DeleteRequest {
                object_ids: vec![id(5), id(6)],
            },
            Message::DeleteReply {
                object_ids: vec![id(5), id(6)],
                errors: vec![Status::ObjectInUse, Status::ObjectNotSealed],
            },
            Message::ContainsRequest { object_id: id(7) },
            Message::ContainsReply {
                object_id: id(7),
                has_object: true,
            },
            Message::ListRequest,
            Message::ListReply {
                objects: vec![info.clone()],
            },
            Message::EvictRequest { num_bytes: 1000 },
            Message::EvictReply { num_bytes: 0 },
            Message::SubscribeRequest,
            Message::SetOptionsRequest {
                client_name: "client1".into(),
                output_memory_quota: 10,
            },
            Message::SetOptionsReply { error: Status::Ok },
            Message::GetDebugStringRequest,
            Message::GetDebugStringReply {
                debug_string: "hello".into(),
            },
            Message::RefreshLruRequest {
                object_ids: vec![id(8)],
            },
            Message::RefreshLruReply,
        ];
        for m in all {
            let body = m.encode_body();
            let back = Message::decode(m.kind().as_i64(), &body).unwrap();
            assert_eq!(back, m, "roundtrip of {:?}", m.kind());
        }
    }

    /// The bytes pyarrow 11 sends for `create(ID(01*20), 16, b"META")`.
    #[test]
    fn decodes_pyarrow_create_request() {
        let mut body = Vec::new();
        body.extend_from_slice(&[0x14, 0, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&[0x0c, 0, 0x20, 0, 8, 0, 7, 0, 0x0c, 0, 0x14, 0]);
        body.extend_from_slice(&[0x0c, 0, 0, 0, 0, 0, 0, 1, 0x18, 0, 0, 0]);
        body.extend_from_slice(&16u64.to_le_bytes());
        body.extend_from_slice(&4u64.to_le_bytes());
        body.extend_from_slice(&[0, 0, 0, 0, 0x14, 0, 0, 0]);
        body.extend_from_slice(&[1; 20]);
        body.extend_from_slice(&[0; 4]);
        assert_eq!(body.len(), 80);
        let m = Message::decode(1, &body).unwrap();
        assert_eq!(
            m,
            Message::CreateRequest {
                object_id: id(1),
                evict_if_full: true,
                data_size: 16,
                metadata_size: 4,
                device_num: 0
            }
        );
    }

    /// The ConnectReply bytes of the original store decode to its capacity.
    #[test]
    fn decodes_original_connect_reply() {
        let body = [
            0x0c, 0, 0, 0, 0, 0, 6, 0, 0x0c, 0, 4, 0, 6, 0, 0, 0, 0, 0xe1, 0xf5, 5, 0, 0, 0, 0,
        ];
        assert_eq!(
            Message::decode(20, &body).unwrap(),
            Message::ConnectReply {
                memory_capacity: 100_000_000
            }
        );
    }

    #[test]
    fn rejects_garbage_and_bad_ids() {
        assert!(matches!(
            Message::decode(24, &[]),
            Err(crate::Error::UnknownType { kind: 24 })
        ));
        assert!(matches!(
            Message::decode(99, &[]),
            Err(crate::Error::UnknownType { kind: 99 })
        ));
        assert!(Message::decode(1, &[0xff; 40]).is_err());
        assert!(Message::decode(1, &[]).is_err());
        let short = Message::ContainsReply {
            object_id: id(1),
            has_object: false,
        }
        .encode_body();
        assert!(Message::decode(15, &short).is_ok());
        // A 19-byte id is refused.
        let mut fbb = FlatBufferBuilder::new();
        let object_id = Some(bstr(&mut fbb, &[1; 19]));
        let root = fb::PlasmaSealRequest::create(
            &mut fbb,
            &fb::PlasmaSealRequestArgs {
                object_id,
                digest: None,
            },
        );
        fbb.finish_minimal(root);
        assert!(matches!(
            Message::decode(7, fbb.finished_data()),
            Err(crate::Error::ObjectIdLength { len: 19 })
        ));
    }

    #[test]
    fn notification_roundtrip() {
        let seal = ObjectInfo {
            object_id: id(2),
            data_size: 100,
            metadata_size: 0,
            digest: vec![3; 8],
            ..ObjectInfo::default()
        };
        let del = ObjectInfo {
            object_id: id(4),
            is_deletion: true,
            ..ObjectInfo::default()
        };
        let bytes = crate::notification::encode(&[seal.clone(), del.clone()]);
        let len = i64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(len + 8, bytes.len());
        let back = crate::notification::decode(&bytes[8..]).unwrap();
        assert_eq!(back, vec![seal, del]);
    }
}
