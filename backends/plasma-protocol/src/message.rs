//! What every Plasma message is ([`Message`]), how a request names its reply ([`Request`]),
//! the values messages carry ([`Status`], [`ObjectSpec`], [`ObjectInfo`]), and the field
//! conversions the declarations in [`crate::messages`] share.
//!
//! Bodies are decoded through the flatc-generated verifier and accessors (see
//! `schema/regen-plasma.sh`: Plasma's binary `string` fields are generated as byte vectors),
//! so no hand-written code reads a flatbuffer by offset.

use std::fmt;

use flatbuffers::{
    FlatBufferBuilder, Follow, ForwardsUOffset, UnionWIPOffset, Vector, Verifiable,
    VerifierOptions, WIPOffset,
};

use crate::generated::plasma::flatbuf as fb;
use crate::{Error, MAX_IDS_PER_REQUEST, ObjectId, Result};

/// The `type` word of a frame header (`enum MessageType : long` of `plasma.fbs`), as flatc
/// generates it: `MessageType::PlasmaSealRequest`, ..., with the raw value in `.0`.
pub use fb::MessageType;

/// A Plasma message: a frame type word and a FlatBuffers body.
pub trait Message: Sized + fmt::Debug {
    /// The type word of its frames.
    const TYPE: MessageType;

    /// Builds the body's root table in `fbb` (the caller finishes the buffer).
    fn build(&self, fbb: &mut FlatBufferBuilder<'_>) -> WIPOffset<UnionWIPOffset>;

    /// Decodes a body of this message type, verifying it first.
    fn decode(body: &[u8]) -> Result<Self>;

    /// The body bytes, laid out as Arrow 11's C++ code lays them out.
    fn encode_body(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let root = self.build(&mut fbb);
        fbb.finish_minimal(root);
        fbb.finished_data().to_vec()
    }

    /// The whole frame: header and body.
    fn encode_frame(&self) -> Vec<u8> {
        crate::frame::encode_frame(Self::TYPE.0, &self.encode_body())
    }
}

/// A request the store answers, and the type of its answer. Requests the store never answers
/// (`ReleaseRequest`, `SubscribeRequest`) are [`Message`]s only.
pub trait Request: Message {
    /// The reply the store sends for this request.
    type Reply: Message;
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
    pub fn from_i32(code: i32) -> Result<Self> {
        Ok(match code {
            0 => Self::Ok,
            1 => Self::ObjectExists,
            2 => Self::ObjectNotFound,
            3 => Self::OutOfMemory,
            4 => Self::ObjectNotSealed,
            5 => Self::ObjectInUse,
            _ => return Err(Error::UnknownStatus { code }),
        })
    }

    pub(crate) fn to_fb(self) -> fb::PlasmaError {
        fb::PlasmaError(self as i32)
    }

    pub(crate) fn from_fb(code: fb::PlasmaError) -> Result<Self> {
        Self::from_i32(code.0)
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

    pub(crate) fn to_fb(self) -> fb::PlasmaObjectSpec {
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

impl ObjectInfo {
    /// Builds the table; `with_digest: false` leaves the digest out (deletion notifications).
    pub(crate) fn build<'b>(
        &self,
        fbb: &mut FlatBufferBuilder<'b>,
        with_digest: bool,
    ) -> WIPOffset<fb::ObjectInfo<'b>> {
        let object_id = Some(bytes(fbb, &self.object_id.0));
        let digest = with_digest.then(|| bytes(fbb, &self.digest));
        fb::ObjectInfo::create(
            fbb,
            &fb::ObjectInfoArgs {
                object_id,
                data_size: self.data_size,
                metadata_size: self.metadata_size,
                ref_count: self.ref_count,
                create_time: self.create_time,
                construct_duration: self.construct_duration,
                digest,
                is_deletion: self.is_deletion,
            },
        )
    }

    pub(crate) fn from_fb(kind: MessageType, info: fb::ObjectInfo<'_>) -> Result<Self> {
        Ok(Self {
            object_id: id(kind, info.object_id())?,
            data_size: info.data_size(),
            metadata_size: info.metadata_size(),
            ref_count: info.ref_count(),
            create_time: info.create_time(),
            construct_duration: info.construct_duration(),
            digest: owned(info.digest()),
            is_deletion: info.is_deletion(),
        })
    }
}

// ----- field conversions shared by the message declarations -----

/// A byte-vector offset of the generated builders.
pub(crate) type BytesOffset<'b> = WIPOffset<Vector<'b, u8>>;
/// A vector of byte vectors, as the generated accessors give `[string]` fields.
pub(crate) type BytesList<'a> = Vector<'a, ForwardsUOffset<Vector<'a, u8>>>;

/// Writes `data` as Arrow writes a `string` field (length, bytes, NUL); any bytes allowed.
pub(crate) fn bytes<'b>(fbb: &mut FlatBufferBuilder<'b>, data: &[u8]) -> BytesOffset<'b> {
    WIPOffset::new(fbb.create_byte_string(data).value())
}

/// Writes a `[string]` field of binary items.
pub(crate) fn bytes_list<'b, B: AsRef<[u8]>>(
    fbb: &mut FlatBufferBuilder<'b>,
    items: &[B],
) -> WIPOffset<Vector<'b, ForwardsUOffset<Vector<'b, u8>>>> {
    let offsets: Vec<BytesOffset<'b>> = items.iter().map(|b| bytes(fbb, b.as_ref())).collect();
    fbb.create_vector(&offsets)
}

/// Writes a `[string]` field of object ids.
pub(crate) fn id_list<'b>(
    fbb: &mut FlatBufferBuilder<'b>,
    ids: &[ObjectId],
) -> WIPOffset<Vector<'b, ForwardsUOffset<Vector<'b, u8>>>> {
    let raw: Vec<&[u8]> = ids.iter().map(|id| &id.0[..]).collect();
    bytes_list(fbb, &raw)
}

/// The `count` field that accompanies an id list in Delete messages.
pub(crate) fn count(ids: &[ObjectId]) -> i32 {
    i32::try_from(ids.len()).unwrap_or(i32::MAX)
}

/// A required object id field.
pub(crate) fn id(kind: MessageType, field: Option<Vector<'_, u8>>) -> Result<ObjectId> {
    let field = field.ok_or(Error::MissingField {
        kind: kind.0,
        field: "object_id",
    })?;
    ObjectId::from_slice(field.bytes())
}

/// An optional byte field, absent as empty.
pub(crate) fn owned(field: Option<Vector<'_, u8>>) -> Vec<u8> {
    field.map(|v| v.bytes().to_vec()).unwrap_or_default()
}

/// An optional text field, decoded leniently (invalid UTF-8 replaced).
pub(crate) fn text(field: Option<Vector<'_, u8>>) -> String {
    String::from_utf8_lossy(field.map(|v| v.bytes()).unwrap_or_default()).into_owned()
}

/// An id list field, absent as empty, at most [`MAX_IDS_PER_REQUEST`] long.
pub(crate) fn ids(field: Option<BytesList<'_>>) -> Result<Vec<ObjectId>> {
    let Some(list) = field else {
        return Ok(Vec::new());
    };
    if list.len() > MAX_IDS_PER_REQUEST {
        return Err(Error::TooManyIds {
            count: list.len(),
            max: MAX_IDS_PER_REQUEST,
        });
    }
    list.iter()
        .map(|b| ObjectId::from_slice(b.bytes()))
        .collect()
}

/// A list of byte fields, absent as empty.
pub(crate) fn byte_list(field: Option<BytesList<'_>>) -> Vec<Vec<u8>> {
    field
        .map(|list| list.iter().map(|b| b.bytes().to_vec()).collect())
        .unwrap_or_default()
}

/// Checks that a parallel vector has as many entries as the one it goes with.
pub(crate) fn check_len(
    kind: MessageType,
    field: &'static str,
    found: usize,
    expected: usize,
) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(Error::LengthMismatch {
        kind: kind.0,
        field,
        found,
        expected,
    })
}

/// Verifies `body` as a root table `T` with the generated verifier and returns it. The limits
/// let a request carry [`MAX_IDS_PER_REQUEST`] ids and bound the work on hostile input.
pub(crate) fn root<'a, T>(kind: MessageType, body: &'a [u8]) -> Result<T::Inner>
where
    T: Follow<'a> + Verifiable + 'a,
{
    let options = VerifierOptions {
        max_tables: MAX_IDS_PER_REQUEST * 2 + 16,
        max_apparent_size: 1 << 31,
        ..VerifierOptions::default()
    };
    flatbuffers::root_with_opts::<T>(&options, body).map_err(|source| Error::Flatbuffer {
        kind: kind.0,
        source,
    })
}
