//! Every Plasma message, declared once: a type, its encoding and its decoding side by side,
//! each request followed by its reply (in `MessageType` order).
//!
//! Adding a message: declare the struct, implement [`Message`] (its `TYPE`, `build` with the
//! generated `...Args`, `decode` through `root`), and for a request [`Request`] naming the
//! reply; then list it in [`crate::AnyRequest`] or [`crate::AnyReply`].

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use crate::generated::plasma::flatbuf as fb;
use crate::message::{
    Message, MessageType, ObjectInfo, ObjectSpec, Request, Status, byte_list, bytes, bytes_list,
    check_len, count, id, id_list, ids, owned, root, text,
};
use crate::{ObjectId, Result};

type Root = WIPOffset<UnionWIPOffset>;

// ----- connect -----

/// `PlasmaConnectRequest`: the first request of every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectRequest;

impl Message for ConnectRequest {
    const TYPE: MessageType = MessageType::PlasmaConnectRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        fb::PlasmaConnectRequest::create(fbb, &fb::PlasmaConnectRequestArgs {}).as_union_value()
    }
    /// The body carries nothing and is not looked at.
    fn decode(_body: &[u8]) -> Result<Self> {
        Ok(Self)
    }
}

impl Request for ConnectRequest {
    type Reply = ConnectReply;
}

/// `PlasmaConnectReply`: the store's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectReply {
    /// The capacity in bytes (the store's `-m`).
    pub memory_capacity: i64,
}

impl Message for ConnectReply {
    const TYPE: MessageType = MessageType::PlasmaConnectReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaConnectReplyArgs {
            memory_capacity: self.memory_capacity,
        };
        fb::PlasmaConnectReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaConnectReply>(Self::TYPE, body)?;
        Ok(Self {
            memory_capacity: m.memory_capacity(),
        })
    }
}

// ----- create -----

/// `PlasmaCreateRequest`: allocate an unsealed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateRequest {
    /// The new object.
    pub object_id: ObjectId,
    /// Whether the store may evict unused objects to make room.
    pub evict_if_full: bool,
    /// Data bytes.
    pub data_size: u64,
    /// Metadata bytes.
    pub metadata_size: u64,
    /// Device (0 = host).
    pub device_num: i32,
}

impl Message for CreateRequest {
    const TYPE: MessageType = MessageType::PlasmaCreateRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaCreateRequestArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
            evict_if_full: self.evict_if_full,
            data_size: self.data_size,
            metadata_size: self.metadata_size,
            device_num: self.device_num,
        };
        fb::PlasmaCreateRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaCreateRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
            evict_if_full: m.evict_if_full(),
            data_size: m.data_size(),
            metadata_size: m.metadata_size(),
            device_num: m.device_num(),
        })
    }
}

impl Request for CreateRequest {
    type Reply = CreateReply;
}

/// `PlasmaCreateReply`: where the new object lives, or why it could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateReply {
    /// The object asked for.
    pub object_id: ObjectId,
    /// Where it lives (all zero on an error).
    pub object: ObjectSpec,
    /// The outcome.
    pub error: Status,
    /// The segment key; its fd follows the reply when this connection has not seen it.
    pub store_fd: i32,
    /// The segment's size record (8 bytes more than the mapping).
    pub mmap_size: i64,
}

impl Message for CreateReply {
    const TYPE: MessageType = MessageType::PlasmaCreateReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let spec = self.object.to_fb();
        let args = fb::PlasmaCreateReplyArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
            plasma_object: Some(&spec),
            error: self.error.to_fb(),
            store_fd: self.store_fd,
            mmap_size: self.mmap_size,
            ipc_handle: None,
        };
        fb::PlasmaCreateReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaCreateReply>(Self::TYPE, body)?;
        let spec = m.plasma_object().ok_or(crate::Error::MissingField {
            kind: Self::TYPE.0,
            field: "plasma_object",
        })?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
            object: ObjectSpec::from_fb(spec),
            error: Status::from_fb(m.error())?,
            store_fd: m.store_fd(),
            mmap_size: m.mmap_size(),
        })
    }
}

/// `PlasmaCreateAndSealRequest`: create, fill and seal a small object in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAndSealRequest {
    /// The new object.
    pub object_id: ObjectId,
    /// Whether the store may evict unused objects to make room.
    pub evict_if_full: bool,
    /// The data, inline.
    pub data: Vec<u8>,
    /// The metadata, inline.
    pub metadata: Vec<u8>,
    /// The seal digest (8 bytes).
    pub digest: Vec<u8>,
}

impl Message for CreateAndSealRequest {
    const TYPE: MessageType = MessageType::PlasmaCreateAndSealRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaCreateAndSealRequestArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
            evict_if_full: self.evict_if_full,
            data: Some(bytes(fbb, &self.data)),
            metadata: Some(bytes(fbb, &self.metadata)),
            digest: Some(bytes(fbb, &self.digest)),
        };
        fb::PlasmaCreateAndSealRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaCreateAndSealRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
            evict_if_full: m.evict_if_full(),
            data: owned(m.data()),
            metadata: owned(m.metadata()),
            digest: owned(m.digest()),
        })
    }
}

impl Request for CreateAndSealRequest {
    type Reply = CreateAndSealReply;
}

/// `PlasmaCreateAndSealReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateAndSealReply {
    /// The outcome.
    pub error: Status,
}

impl Message for CreateAndSealReply {
    const TYPE: MessageType = MessageType::PlasmaCreateAndSealReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaCreateAndSealReplyArgs {
            error: self.error.to_fb(),
        };
        fb::PlasmaCreateAndSealReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaCreateAndSealReply>(Self::TYPE, body)?;
        Ok(Self {
            error: Status::from_fb(m.error())?,
        })
    }
}

/// `PlasmaCreateAndSealBatchRequest`: several small objects, all or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAndSealBatchRequest {
    /// The new objects.
    pub object_ids: Vec<ObjectId>,
    /// Whether the store may evict unused objects to make room.
    pub evict_if_full: bool,
    /// Each object's data (as many as ids).
    pub data: Vec<Vec<u8>>,
    /// Each object's metadata (as many as ids).
    pub metadata: Vec<Vec<u8>>,
    /// Each object's digest (as many as ids).
    pub digest: Vec<Vec<u8>>,
}

impl Message for CreateAndSealBatchRequest {
    const TYPE: MessageType = MessageType::PlasmaCreateAndSealBatchRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaCreateAndSealBatchRequestArgs {
            object_ids: Some(id_list(fbb, &self.object_ids)),
            evict_if_full: self.evict_if_full,
            data: Some(bytes_list(fbb, &self.data)),
            metadata: Some(bytes_list(fbb, &self.metadata)),
            digest: Some(bytes_list(fbb, &self.digest)),
        };
        fb::PlasmaCreateAndSealBatchRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaCreateAndSealBatchRequest>(Self::TYPE, body)?;
        let message = Self {
            object_ids: ids(m.object_ids())?,
            evict_if_full: m.evict_if_full(),
            data: byte_list(m.data()),
            metadata: byte_list(m.metadata()),
            digest: byte_list(m.digest()),
        };
        let n = message.object_ids.len();
        check_len(Self::TYPE, "data", message.data.len(), n)?;
        check_len(Self::TYPE, "metadata", message.metadata.len(), n)?;
        check_len(Self::TYPE, "digest", message.digest.len(), n)?;
        Ok(message)
    }
}

impl Request for CreateAndSealBatchRequest {
    type Reply = CreateAndSealBatchReply;
}

/// `PlasmaCreateAndSealBatchReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateAndSealBatchReply {
    /// The outcome (for the whole batch).
    pub error: Status,
}

impl Message for CreateAndSealBatchReply {
    const TYPE: MessageType = MessageType::PlasmaCreateAndSealBatchReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaCreateAndSealBatchReplyArgs {
            error: self.error.to_fb(),
        };
        fb::PlasmaCreateAndSealBatchReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaCreateAndSealBatchReply>(Self::TYPE, body)?;
        Ok(Self {
            error: Status::from_fb(m.error())?,
        })
    }
}

// ----- abort, seal -----

/// `PlasmaAbortRequest`: delete an unsealed object its creator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortRequest {
    /// The object.
    pub object_id: ObjectId,
}

impl Message for AbortRequest {
    const TYPE: MessageType = MessageType::PlasmaAbortRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaAbortRequestArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
        };
        fb::PlasmaAbortRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaAbortRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
        })
    }
}

impl Request for AbortRequest {
    type Reply = AbortReply;
}

/// `PlasmaAbortReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortReply {
    /// The aborted object.
    pub object_id: ObjectId,
}

impl Message for AbortReply {
    const TYPE: MessageType = MessageType::PlasmaAbortReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaAbortReplyArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
        };
        fb::PlasmaAbortReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaAbortReply>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
        })
    }
}

/// `PlasmaSealRequest`: make a created object visible, with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealRequest {
    /// The object.
    pub object_id: ObjectId,
    /// Its digest (8 bytes).
    pub digest: Vec<u8>,
}

impl Message for SealRequest {
    const TYPE: MessageType = MessageType::PlasmaSealRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaSealRequestArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
            digest: Some(bytes(fbb, &self.digest)),
        };
        fb::PlasmaSealRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaSealRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
            digest: owned(m.digest()),
        })
    }
}

impl Request for SealRequest {
    type Reply = SealReply;
}

/// `PlasmaSealReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealReply {
    /// The object.
    pub object_id: ObjectId,
    /// The outcome.
    pub error: Status,
}

impl Message for SealReply {
    const TYPE: MessageType = MessageType::PlasmaSealReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaSealReplyArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
            error: self.error.to_fb(),
        };
        fb::PlasmaSealReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaSealReply>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
            error: Status::from_fb(m.error())?,
        })
    }
}

// ----- get, release -----

/// `PlasmaGetRequest`: sealed objects, waiting up to `timeout_ms` for missing ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRequest {
    /// The objects, in the order of the reply.
    pub object_ids: Vec<ObjectId>,
    /// Milliseconds to wait; -1 waits forever, 0 not at all.
    pub timeout_ms: i64,
}

impl Message for GetRequest {
    const TYPE: MessageType = MessageType::PlasmaGetRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaGetRequestArgs {
            object_ids: Some(id_list(fbb, &self.object_ids)),
            timeout_ms: self.timeout_ms,
        };
        fb::PlasmaGetRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaGetRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_ids: ids(m.object_ids())?,
            timeout_ms: m.timeout_ms(),
        })
    }
}

impl Request for GetRequest {
    type Reply = GetReply;
}

/// `PlasmaGetReply`: one spec per requested id, then the fds of segments this connection has
/// not seen yet (each sent after the reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetReply {
    /// The ids, as requested.
    pub object_ids: Vec<ObjectId>,
    /// Where each lives ([`ObjectSpec::MISSING`] for those not available).
    pub objects: Vec<ObjectSpec>,
    /// Segment keys whose fds follow.
    pub store_fds: Vec<i32>,
    /// Their size records (as many as `store_fds`).
    pub mmap_sizes: Vec<i64>,
}

impl Message for GetReply {
    const TYPE: MessageType = MessageType::PlasmaGetReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let specs: Vec<fb::PlasmaObjectSpec> = self.objects.iter().map(|o| o.to_fb()).collect();
        let args = fb::PlasmaGetReplyArgs {
            object_ids: Some(id_list(fbb, &self.object_ids)),
            plasma_objects: Some(fbb.create_vector(&specs)),
            store_fds: Some(fbb.create_vector(&self.store_fds)),
            mmap_sizes: Some(fbb.create_vector(&self.mmap_sizes)),
            handles: Some(fbb.create_vector::<WIPOffset<fb::CudaHandle>>(&[])),
        };
        fb::PlasmaGetReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaGetReply>(Self::TYPE, body)?;
        let message = Self {
            object_ids: ids(m.object_ids())?,
            objects: m
                .plasma_objects()
                .map(|v| v.iter().map(ObjectSpec::from_fb).collect())
                .unwrap_or_default(),
            store_fds: m
                .store_fds()
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
            mmap_sizes: m
                .mmap_sizes()
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
        };
        let (objects, fds) = (message.objects.len(), message.store_fds.len());
        check_len(
            Self::TYPE,
            "plasma_objects",
            objects,
            message.object_ids.len(),
        )?;
        check_len(Self::TYPE, "mmap_sizes", message.mmap_sizes.len(), fds)?;
        Ok(message)
    }
}

/// `PlasmaReleaseRequest`: drop this client's reference to an object. Never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// The object.
    pub object_id: ObjectId,
}

impl Message for ReleaseRequest {
    const TYPE: MessageType = MessageType::PlasmaReleaseRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaReleaseRequestArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
        };
        fb::PlasmaReleaseRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaReleaseRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
        })
    }
}

// ----- delete, contains, list -----

/// `PlasmaDeleteRequest`: delete objects (those in use or unsealed once released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// The objects.
    pub object_ids: Vec<ObjectId>,
}

impl Message for DeleteRequest {
    const TYPE: MessageType = MessageType::PlasmaDeleteRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaDeleteRequestArgs {
            count: count(&self.object_ids),
            object_ids: Some(id_list(fbb, &self.object_ids)),
        };
        fb::PlasmaDeleteRequest::create(fbb, &args).as_union_value()
    }
    /// `count` is ignored: the vector's own length bounds the loop.
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaDeleteRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_ids: ids(m.object_ids())?,
        })
    }
}

impl Request for DeleteRequest {
    type Reply = DeleteReply;
}

/// `PlasmaDeleteReply`: one status per id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteReply {
    /// The ids, as requested.
    pub object_ids: Vec<ObjectId>,
    /// Each one's outcome.
    pub errors: Vec<Status>,
}

impl Message for DeleteReply {
    const TYPE: MessageType = MessageType::PlasmaDeleteReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let codes: Vec<fb::PlasmaError> = self.errors.iter().map(|e| e.to_fb()).collect();
        let args = fb::PlasmaDeleteReplyArgs {
            count: count(&self.object_ids),
            object_ids: Some(id_list(fbb, &self.object_ids)),
            errors: Some(fbb.create_vector(&codes)),
        };
        fb::PlasmaDeleteReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaDeleteReply>(Self::TYPE, body)?;
        let object_ids = ids(m.object_ids())?;
        let errors = m
            .errors()
            .map(|v| v.iter().map(Status::from_fb).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        check_len(Self::TYPE, "errors", errors.len(), object_ids.len())?;
        Ok(Self { object_ids, errors })
    }
}

/// `PlasmaContainsRequest`: whether the store holds an object sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainsRequest {
    /// The object.
    pub object_id: ObjectId,
}

impl Message for ContainsRequest {
    const TYPE: MessageType = MessageType::PlasmaContainsRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaContainsRequestArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
        };
        fb::PlasmaContainsRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaContainsRequest>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
        })
    }
}

impl Request for ContainsRequest {
    type Reply = ContainsReply;
}

/// `PlasmaContainsReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainsReply {
    /// The object.
    pub object_id: ObjectId,
    /// Whether it is there, sealed.
    pub has_object: bool,
}

impl Message for ContainsReply {
    const TYPE: MessageType = MessageType::PlasmaContainsReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaContainsReplyArgs {
            object_id: Some(bytes(fbb, &self.object_id.0)),
            has_object: i32::from(self.has_object),
        };
        fb::PlasmaContainsReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaContainsReply>(Self::TYPE, body)?;
        Ok(Self {
            object_id: id(Self::TYPE, m.object_id())?,
            has_object: m.has_object() != 0,
        })
    }
}

/// `PlasmaListRequest`: every object of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListRequest;

impl Message for ListRequest {
    const TYPE: MessageType = MessageType::PlasmaListRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        fb::PlasmaListRequest::create(fbb, &fb::PlasmaListRequestArgs {}).as_union_value()
    }
    /// The body carries nothing and is not looked at.
    fn decode(_body: &[u8]) -> Result<Self> {
        Ok(Self)
    }
}

impl Request for ListRequest {
    type Reply = ListReply;
}

/// `PlasmaListReply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReply {
    /// Every object, in any state (an empty digest means unsealed).
    pub objects: Vec<ObjectInfo>,
}

impl Message for ListReply {
    const TYPE: MessageType = MessageType::PlasmaListReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let infos: Vec<_> = self.objects.iter().map(|o| o.build(fbb, true)).collect();
        let args = fb::PlasmaListReplyArgs {
            objects: Some(fbb.create_vector(&infos)),
        };
        fb::PlasmaListReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaListReply>(Self::TYPE, body)?;
        let objects = m
            .objects()
            .map(|v| {
                v.iter()
                    .map(|info| ObjectInfo::from_fb(Self::TYPE, info))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self { objects })
    }
}

// ----- evict, subscribe -----

/// `PlasmaEvictRequest`: free at least `num_bytes` of unused objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictRequest {
    /// Bytes to free.
    pub num_bytes: u64,
}

impl Message for EvictRequest {
    const TYPE: MessageType = MessageType::PlasmaEvictRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaEvictRequestArgs {
            num_bytes: self.num_bytes,
        };
        fb::PlasmaEvictRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaEvictRequest>(Self::TYPE, body)?;
        Ok(Self {
            num_bytes: m.num_bytes(),
        })
    }
}

impl Request for EvictRequest {
    type Reply = EvictReply;
}

/// `PlasmaEvictReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictReply {
    /// Bytes freed.
    pub num_bytes: u64,
}

impl Message for EvictReply {
    const TYPE: MessageType = MessageType::PlasmaEvictReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaEvictReplyArgs {
            num_bytes: self.num_bytes,
        };
        fb::PlasmaEvictReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaEvictReply>(Self::TYPE, body)?;
        Ok(Self {
            num_bytes: m.num_bytes(),
        })
    }
}

/// `PlasmaSubscribeRequest`: followed by a 1-byte message carrying the notification socket's
/// fd. Never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscribeRequest;

impl Message for SubscribeRequest {
    const TYPE: MessageType = MessageType::PlasmaSubscribeRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        fb::PlasmaSubscribeRequest::create(fbb, &fb::PlasmaSubscribeRequestArgs {}).as_union_value()
    }
    /// The body carries nothing and is not looked at.
    fn decode(_body: &[u8]) -> Result<Self> {
        Ok(Self)
    }
}

// ----- options, debug string, LRU -----

/// `PlasmaSetOptionsRequest`: name this client and ask for a private memory quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOptionsRequest {
    /// The client's name.
    pub client_name: String,
    /// The quota in bytes; -1 for none.
    pub output_memory_quota: i64,
}

impl Message for SetOptionsRequest {
    const TYPE: MessageType = MessageType::PlasmaSetOptionsRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaSetOptionsRequestArgs {
            client_name: Some(bytes(fbb, self.client_name.as_bytes())),
            output_memory_quota: self.output_memory_quota,
        };
        fb::PlasmaSetOptionsRequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaSetOptionsRequest>(Self::TYPE, body)?;
        Ok(Self {
            client_name: text(m.client_name()),
            output_memory_quota: m.output_memory_quota(),
        })
    }
}

impl Request for SetOptionsRequest {
    type Reply = SetOptionsReply;
}

/// `PlasmaSetOptionsReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetOptionsReply {
    /// The outcome (`OutOfMemory`: the quota was refused).
    pub error: Status,
}

impl Message for SetOptionsReply {
    const TYPE: MessageType = MessageType::PlasmaSetOptionsReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaSetOptionsReplyArgs {
            error: self.error.to_fb(),
        };
        fb::PlasmaSetOptionsReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaSetOptionsReply>(Self::TYPE, body)?;
        Ok(Self {
            error: Status::from_fb(m.error())?,
        })
    }
}

/// `PlasmaGetDebugStringRequest`: the store's debug text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetDebugStringRequest;

impl Message for GetDebugStringRequest {
    const TYPE: MessageType = MessageType::PlasmaGetDebugStringRequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        fb::PlasmaGetDebugStringRequest::create(fbb, &fb::PlasmaGetDebugStringRequestArgs {})
            .as_union_value()
    }
    /// The body carries nothing and is not looked at.
    fn decode(_body: &[u8]) -> Result<Self> {
        Ok(Self)
    }
}

impl Request for GetDebugStringRequest {
    type Reply = GetDebugStringReply;
}

/// `PlasmaGetDebugStringReply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDebugStringReply {
    /// The text (its eviction policy's state).
    pub debug_string: String,
}

impl Message for GetDebugStringReply {
    const TYPE: MessageType = MessageType::PlasmaGetDebugStringReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaGetDebugStringReplyArgs {
            debug_string: Some(bytes(fbb, self.debug_string.as_bytes())),
        };
        fb::PlasmaGetDebugStringReply::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaGetDebugStringReply>(Self::TYPE, body)?;
        Ok(Self {
            debug_string: text(m.debug_string()),
        })
    }
}

/// `PlasmaRefreshLRURequest`: mark unused objects most recently used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLruRequest {
    /// The objects.
    pub object_ids: Vec<ObjectId>,
}

impl Message for RefreshLruRequest {
    const TYPE: MessageType = MessageType::PlasmaRefreshLRURequest;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        let args = fb::PlasmaRefreshLRURequestArgs {
            object_ids: Some(id_list(fbb, &self.object_ids)),
        };
        fb::PlasmaRefreshLRURequest::create(fbb, &args).as_union_value()
    }
    fn decode(body: &[u8]) -> Result<Self> {
        let m = root::<fb::PlasmaRefreshLRURequest>(Self::TYPE, body)?;
        Ok(Self {
            object_ids: ids(m.object_ids())?,
        })
    }
}

impl Request for RefreshLruRequest {
    type Reply = RefreshLruReply;
}

/// `PlasmaRefreshLRUReply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshLruReply;

impl Message for RefreshLruReply {
    const TYPE: MessageType = MessageType::PlasmaRefreshLRUReply;
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> Root {
        fb::PlasmaRefreshLRUReply::create(fbb, &fb::PlasmaRefreshLRUReplyArgs {}).as_union_value()
    }
    /// The body carries nothing and is not looked at.
    fn decode(_body: &[u8]) -> Result<Self> {
        Ok(Self)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ObjectInfo;

    fn roundtrip<M: Message + PartialEq>(m: M) {
        let body = m.encode_body();
        let back = M::decode(&body).unwrap();
        assert_eq!(back, m, "roundtrip of {:?}", M::TYPE);
        // And through the enum of its side, by its frame type word.
        let frame = crate::frame::read_frame(&mut &m.encode_frame()[..], 1 << 20).unwrap();
        assert_eq!(frame.kind, M::TYPE.0);
        let any_ok = crate::AnyRequest::decode(frame.kind, &frame.body).is_ok()
            || crate::AnyReply::decode(frame.kind, &frame.body).is_ok();
        assert!(any_ok, "{:?} decodes as a request or a reply", M::TYPE);
    }

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
        roundtrip(ConnectRequest);
        roundtrip(ConnectReply {
            memory_capacity: 100_000_000,
        });
        roundtrip(CreateRequest {
            object_id: id(0x80),
            evict_if_full: true,
            data_size: 16,
            metadata_size: 4,
            device_num: 0,
        });
        roundtrip(CreateReply {
            object_id: id(1),
            object: spec,
            error: Status::Ok,
            store_fd: 4,
            mmap_size: 100_007_944,
        });
        roundtrip(CreateReply {
            object_id: id(1),
            object: ObjectSpec::default(),
            error: Status::ObjectExists,
            store_fd: 0,
            mmap_size: 0,
        });
        roundtrip(CreateAndSealRequest {
            object_id: id(0xc3),
            evict_if_full: false,
            data: vec![0xff, 0, 0xfe],
            metadata: b"md".to_vec(),
            digest: vec![1; 8],
        });
        roundtrip(CreateAndSealReply {
            error: Status::OutOfMemory,
        });
        roundtrip(CreateAndSealBatchRequest {
            object_ids: vec![id(1), id(2)],
            evict_if_full: true,
            data: vec![b"a".to_vec(), vec![]],
            metadata: vec![vec![], b"m".to_vec()],
            digest: vec![vec![0; 8], vec![9; 8]],
        });
        roundtrip(CreateAndSealBatchReply {
            error: Status::ObjectExists,
        });
        roundtrip(AbortRequest { object_id: id(3) });
        roundtrip(AbortReply { object_id: id(3) });
        roundtrip(SealRequest {
            object_id: id(4),
            digest: vec![7; 8],
        });
        roundtrip(SealReply {
            object_id: id(4),
            error: Status::Ok,
        });
        roundtrip(GetRequest {
            object_ids: vec![id(1), id(1), id(9)],
            timeout_ms: -1,
        });
        roundtrip(GetReply {
            object_ids: vec![id(1), id(9)],
            objects: vec![spec, ObjectSpec::MISSING],
            store_fds: vec![4],
            mmap_sizes: vec![100_007_944],
        });
        roundtrip(ReleaseRequest { object_id: id(5) });
        roundtrip(DeleteRequest {
            object_ids: vec![id(5), id(6)],
        });
        roundtrip(DeleteReply {
            object_ids: vec![id(5), id(6)],
            errors: vec![Status::ObjectInUse, Status::ObjectNotSealed],
        });
        roundtrip(ContainsRequest { object_id: id(7) });
        roundtrip(ContainsReply {
            object_id: id(7),
            has_object: true,
        });
        roundtrip(ListRequest);
        roundtrip(ListReply {
            objects: vec![info.clone()],
        });
        roundtrip(EvictRequest { num_bytes: 1000 });
        roundtrip(EvictReply { num_bytes: 0 });
        roundtrip(SubscribeRequest);
        roundtrip(SetOptionsRequest {
            client_name: "client1".into(),
            output_memory_quota: 10,
        });
        roundtrip(SetOptionsReply { error: Status::Ok });
        roundtrip(GetDebugStringRequest);
        roundtrip(GetDebugStringReply {
            debug_string: "hello".into(),
        });
        roundtrip(RefreshLruRequest {
            object_ids: vec![id(8)],
        });
        roundtrip(RefreshLruReply);
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
        let m = CreateRequest::decode(&body).unwrap();
        assert_eq!(
            m,
            CreateRequest {
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
            ConnectReply::decode(&body).unwrap(),
            ConnectReply {
                memory_capacity: 100_000_000
            }
        );
    }

    #[test]
    fn rejects_garbage_and_bad_ids() {
        assert!(matches!(
            crate::AnyRequest::decode(24, &[]),
            Err(crate::Error::UnknownType { kind: 24 })
        ));
        assert!(matches!(
            crate::AnyReply::decode(99, &[]),
            Err(crate::Error::UnknownType { kind: 99 })
        ));
        assert!(CreateRequest::decode(&[0xff; 40]).is_err());
        assert!(CreateRequest::decode(&[]).is_err());
        let short = ContainsReply {
            object_id: id(1),
            has_object: false,
        }
        .encode_body();
        assert!(ContainsRequest::decode(&short).is_ok());
        // A 19-byte id is refused.
        let mut fbb = FlatBufferBuilder::new();
        let object_id = Some(bytes(&mut fbb, &[1; 19]));
        let root = fb::PlasmaSealRequest::create(
            &mut fbb,
            &fb::PlasmaSealRequestArgs {
                object_id,
                digest: None,
            },
        );
        fbb.finish_minimal(root);
        assert!(matches!(
            SealRequest::decode(fbb.finished_data()),
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
