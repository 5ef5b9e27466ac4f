//! Verified decoding of Plasma bodies.
//!
//! Object ids and inline data travel as FlatBuffers `string`s holding
//! arbitrary bytes, which the generated `&str` accessors would reject (or,
//! unverified, turn into invalid `str`s). So bodies are verified here with
//! string fields treated as byte vectors (same layout), and then read through
//! `flatbuffers::Table` with the generated slot constants.

use flatbuffers::{
    ForwardsUOffset, InvalidFlatbuffer, Table, Vector, Verifiable, Verifier, VerifierOptions,
};

use crate::generated::plasma::flatbuf as fb;
use crate::message::{Message, MessageType, ObjectInfo, ObjectSpec, Status};
use crate::{Error, MAX_IDS_PER_REQUEST, ObjectId, Result};

type Bytes<'a> = ForwardsUOffset<Vector<'a, u8>>;
type BytesVec<'a> = ForwardsUOffset<Vector<'a, ForwardsUOffset<Vector<'a, u8>>>>;

/// Kinds of fields, for the table verifier.
#[derive(Clone, Copy)]
enum F {
    Bytes,
    BytesVec,
    Bool,
    I32,
    I64,
    Spec,
    SpecVec,
    I32Vec,
    I64Vec,
    InfoVec,
    HandleVec,
    Handle,
}

/// `ObjectInfo` with binary strings, for verification only.
struct InfoBin;

impl Verifiable for InfoBin {
    fn run_verifier(v: &mut Verifier<'_, '_>, pos: usize) -> Result<(), InvalidFlatbuffer> {
        visit(
            v,
            pos,
            &[
                F::Bytes,
                F::I64,
                F::I64,
                F::I32,
                F::I64,
                F::I64,
                F::Bytes,
                F::Bool,
            ],
        )
    }
}

/// `CudaHandle`, for verification only.
struct HandleBin;

impl Verifiable for HandleBin {
    fn run_verifier(v: &mut Verifier<'_, '_>, pos: usize) -> Result<(), InvalidFlatbuffer> {
        v.visit_table(pos)?
            .visit_field::<ForwardsUOffset<Vector<'_, u8>>>("handle", 4, false)?
            .finish();
        Ok(())
    }
}

fn visit(v: &mut Verifier<'_, '_>, pos: usize, fields: &[F]) -> Result<(), InvalidFlatbuffer> {
    let mut t = v.visit_table(pos)?;
    for (i, f) in fields.iter().enumerate() {
        let slot = (4 + 2 * i) as u16;
        t = match f {
            F::Bytes => t.visit_field::<Bytes<'_>>("bytes", slot, false)?,
            F::BytesVec => t.visit_field::<BytesVec<'_>>("bytes_vec", slot, false)?,
            F::Bool => t.visit_field::<bool>("bool", slot, false)?,
            F::I32 => t.visit_field::<i32>("i32", slot, false)?,
            F::I64 => t.visit_field::<i64>("i64", slot, false)?,
            F::Spec => t.visit_field::<fb::PlasmaObjectSpec>("spec", slot, false)?,
            F::SpecVec => t.visit_field::<ForwardsUOffset<Vector<'_, fb::PlasmaObjectSpec>>>(
                "specs", slot, false,
            )?,
            F::I32Vec => t.visit_field::<ForwardsUOffset<Vector<'_, i32>>>("i32s", slot, false)?,
            F::I64Vec => t.visit_field::<ForwardsUOffset<Vector<'_, i64>>>("i64s", slot, false)?,
            F::InfoVec => t.visit_field::<ForwardsUOffset<Vector<'_, ForwardsUOffset<InfoBin>>>>(
                "infos", slot, false,
            )?,
            F::HandleVec => t
                .visit_field::<ForwardsUOffset<Vector<'_, ForwardsUOffset<HandleBin>>>>(
                    "handles", slot, false,
                )?,
            F::Handle => t.visit_field::<ForwardsUOffset<HandleBin>>("handle", slot, false)?,
        };
    }
    t.finish();
    Ok(())
}

/// A verified table: reads never leave the buffer.
struct Tab<'a> {
    kind: i64,
    tab: Table<'a>,
}

impl<'a> Tab<'a> {
    /// Verifies `buf` as a table with `fields` and returns it.
    fn new(kind: i64, buf: &'a [u8], fields: &[F]) -> Result<Self> {
        let root = buf
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or(Error::MissingField {
                kind,
                field: "root table",
            })?;
        let opts = VerifierOptions {
            max_tables: MAX_IDS_PER_REQUEST * 2 + 16,
            max_apparent_size: 1 << 31,
            ..VerifierOptions::default()
        };
        let mut v = Verifier::new(&opts, buf);
        visit(&mut v, root, fields).map_err(|source| Error::Flatbuffer { kind, source })?;
        // SAFETY: `visit` verified that a table with these field types
        // starts at `root` and that every field lies inside `buf`.
        let tab = unsafe { Table::new(buf, root) };
        Ok(Self { kind, tab })
    }

    fn slot(i: usize) -> u16 {
        (4 + 2 * i) as u16
    }

    fn bytes(&self, i: usize) -> Option<&'a [u8]> {
        // SAFETY: slot `i` was verified as a byte vector (or string).
        unsafe { self.tab.get::<Bytes<'a>>(Self::slot(i), None) }.map(|v| v.bytes())
    }

    fn req_bytes(&self, i: usize, field: &'static str) -> Result<&'a [u8]> {
        self.bytes(i).ok_or(Error::MissingField {
            kind: self.kind,
            field,
        })
    }

    fn id(&self, i: usize) -> Result<ObjectId> {
        ObjectId::from_slice(self.req_bytes(i, "object_id")?)
    }

    fn bytes_vec(&self, i: usize) -> Option<Vector<'a, ForwardsUOffset<Vector<'a, u8>>>> {
        // SAFETY: slot `i` was verified as a vector of byte vectors.
        unsafe { self.tab.get::<BytesVec<'a>>(Self::slot(i), None) }
    }

    fn byte_list(&self, i: usize) -> Result<Vec<Vec<u8>>> {
        let v = self
            .bytes_vec(i)
            .map(|v| v.iter().map(|b| b.bytes().to_vec()).collect());
        Ok(v.unwrap_or_default())
    }

    fn ids(&self, i: usize) -> Result<Vec<ObjectId>> {
        let Some(v) = self.bytes_vec(i) else {
            return Ok(Vec::new());
        };
        if v.len() > MAX_IDS_PER_REQUEST {
            return Err(Error::TooManyIds {
                count: v.len(),
                max: MAX_IDS_PER_REQUEST,
            });
        }
        v.iter().map(|b| ObjectId::from_slice(b.bytes())).collect()
    }

    fn scalar<T: flatbuffers::Follow<'a, Inner = T> + Copy + 'a>(&self, i: usize, default: T) -> T {
        // SAFETY: slot `i` was verified as a scalar of type `T`.
        unsafe { self.tab.get::<T>(Self::slot(i), Some(default)) }.unwrap_or(default)
    }

    fn spec(&self, i: usize) -> Option<ObjectSpec> {
        // SAFETY: slot `i` was verified as an inline `PlasmaObjectSpec`.
        unsafe { self.tab.get::<&fb::PlasmaObjectSpec>(Self::slot(i), None) }
            .map(ObjectSpec::from_fb)
    }

    fn specs(&self, i: usize) -> Vec<ObjectSpec> {
        // SAFETY: slot `i` was verified as a vector of `PlasmaObjectSpec`.
        let v = unsafe {
            self.tab
                .get::<ForwardsUOffset<Vector<'a, fb::PlasmaObjectSpec>>>(Self::slot(i), None)
        };
        v.map(|v| v.iter().map(ObjectSpec::from_fb).collect())
            .unwrap_or_default()
    }

    fn i32s(&self, i: usize) -> Vec<i32> {
        // SAFETY: slot `i` was verified as a vector of i32.
        let v = unsafe {
            self.tab
                .get::<ForwardsUOffset<Vector<'a, i32>>>(Self::slot(i), None)
        };
        v.map(|v| v.iter().collect()).unwrap_or_default()
    }

    fn i64s(&self, i: usize) -> Vec<i64> {
        // SAFETY: slot `i` was verified as a vector of i64.
        let v = unsafe {
            self.tab
                .get::<ForwardsUOffset<Vector<'a, i64>>>(Self::slot(i), None)
        };
        v.map(|v| v.iter().collect()).unwrap_or_default()
    }

    fn infos(&self, i: usize) -> Result<Vec<ObjectInfo>> {
        // SAFETY: slot `i` was verified as a vector of `ObjectInfo` tables.
        let v = unsafe {
            self.tab
                .get::<ForwardsUOffset<Vector<'a, ForwardsUOffset<Table<'a>>>>>(Self::slot(i), None)
        };
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        v.iter()
            .map(|table| {
                let t = Tab {
                    kind: self.kind,
                    tab: table,
                };
                Ok(ObjectInfo {
                    object_id: t.id(0)?,
                    data_size: t.scalar(1, 0i64),
                    metadata_size: t.scalar(2, 0i64),
                    ref_count: t.scalar(3, 0i32),
                    create_time: t.scalar(4, 0i64),
                    construct_duration: t.scalar(5, 0i64),
                    digest: t.bytes(6).map(<[u8]>::to_vec).unwrap_or_default(),
                    is_deletion: t.scalar(7, false),
                })
            })
            .collect()
    }

    fn status(&self, i: usize) -> Result<Status> {
        Status::from_i32(self.scalar(i, 0i32))
    }
}

/// Decodes `ObjectInfo`s from a notification body.
pub(crate) fn decode_notification(body: &[u8]) -> Result<Vec<ObjectInfo>> {
    Tab::new(MessageType::Notification.as_i64(), body, &[F::InfoVec])?.infos(0)
}

fn check_len(kind: i64, field: &'static str, found: usize, expected: usize) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            kind,
            field,
            found,
            expected,
        })
    }
}

pub(crate) fn decode(kind: i64, body: &[u8]) -> Result<Message> {
    use MessageType as T;
    let t = MessageType::from_i64(kind).ok_or(Error::UnknownType { kind })?;
    let tab = |fields: &[F]| Tab::new(kind, body, fields);
    Ok(match t {
        T::ConnectRequest => Message::ConnectRequest,
        T::ListRequest => Message::ListRequest,
        T::SubscribeRequest => Message::SubscribeRequest,
        T::GetDebugStringRequest => Message::GetDebugStringRequest,
        T::RefreshLruReply => Message::RefreshLruReply,
        T::ConnectReply => Message::ConnectReply {
            memory_capacity: tab(&[F::I64])?.scalar(0, 0i64),
        },
        T::CreateRequest => {
            let m = tab(&[F::Bytes, F::Bool, F::I64, F::I64, F::I32])?;
            Message::CreateRequest {
                object_id: m.id(0)?,
                evict_if_full: m.scalar(1, false),
                data_size: m.scalar(2, 0u64),
                metadata_size: m.scalar(3, 0u64),
                device_num: m.scalar(4, 0i32),
            }
        }
        T::CreateReply => {
            let m = tab(&[F::Bytes, F::Spec, F::I32, F::I32, F::I64, F::Handle])?;
            Message::CreateReply {
                object_id: m.id(0)?,
                object: m.spec(1).ok_or(Error::MissingField {
                    kind,
                    field: "plasma_object",
                })?,
                error: m.status(2)?,
                store_fd: m.scalar(3, 0i32),
                mmap_size: m.scalar(4, 0i64),
            }
        }
        T::CreateAndSealRequest => {
            let m = tab(&[F::Bytes, F::Bool, F::Bytes, F::Bytes, F::Bytes])?;
            Message::CreateAndSealRequest {
                object_id: m.id(0)?,
                evict_if_full: m.scalar(1, false),
                data: m.bytes(2).unwrap_or_default().to_vec(),
                metadata: m.bytes(3).unwrap_or_default().to_vec(),
                digest: m.bytes(4).unwrap_or_default().to_vec(),
            }
        }
        T::CreateAndSealReply => Message::CreateAndSealReply {
            error: tab(&[F::I32])?.status(0)?,
        },
        T::CreateAndSealBatchRequest => {
            let m = tab(&[F::BytesVec, F::Bool, F::BytesVec, F::BytesVec, F::BytesVec])?;
            let object_ids = m.ids(0)?;
            let data = m.byte_list(2)?;
            let metadata = m.byte_list(3)?;
            let digest = m.byte_list(4)?;
            check_len(kind, "data", data.len(), object_ids.len())?;
            check_len(kind, "metadata", metadata.len(), object_ids.len())?;
            check_len(kind, "digest", digest.len(), object_ids.len())?;
            Message::CreateAndSealBatchRequest {
                object_ids,
                evict_if_full: m.scalar(1, false),
                data,
                metadata,
                digest,
            }
        }
        T::CreateAndSealBatchReply => Message::CreateAndSealBatchReply {
            error: tab(&[F::I32])?.status(0)?,
        },
        T::AbortRequest => Message::AbortRequest {
            object_id: tab(&[F::Bytes])?.id(0)?,
        },
        T::AbortReply => Message::AbortReply {
            object_id: tab(&[F::Bytes])?.id(0)?,
        },
        T::SealRequest => {
            let m = tab(&[F::Bytes, F::Bytes])?;
            Message::SealRequest {
                object_id: m.id(0)?,
                digest: m.bytes(1).unwrap_or_default().to_vec(),
            }
        }
        T::SealReply => {
            let m = tab(&[F::Bytes, F::I32])?;
            Message::SealReply {
                object_id: m.id(0)?,
                error: m.status(1)?,
            }
        }
        T::GetRequest => {
            let m = tab(&[F::BytesVec, F::I64])?;
            Message::GetRequest {
                object_ids: m.ids(0)?,
                timeout_ms: m.scalar(1, 0i64),
            }
        }
        T::GetReply => {
            let m = tab(&[F::BytesVec, F::SpecVec, F::I32Vec, F::I64Vec, F::HandleVec])?;
            let object_ids = m.ids(0)?;
            let objects = m.specs(1);
            let store_fds = m.i32s(2);
            let mmap_sizes = m.i64s(3);
            check_len(kind, "plasma_objects", objects.len(), object_ids.len())?;
            check_len(kind, "mmap_sizes", mmap_sizes.len(), store_fds.len())?;
            Message::GetReply {
                object_ids,
                objects,
                store_fds,
                mmap_sizes,
            }
        }
        T::ReleaseRequest => Message::ReleaseRequest {
            object_id: tab(&[F::Bytes])?.id(0)?,
        },
        T::DeleteRequest => {
            // `count` is ignored: the vector's own length bounds the loop.
            let m = tab(&[F::I32, F::BytesVec])?;
            Message::DeleteRequest {
                object_ids: m.ids(1)?,
            }
        }
        T::DeleteReply => {
            let m = tab(&[F::I32, F::BytesVec, F::I32Vec])?;
            let object_ids = m.ids(1)?;
            let errors = m
                .i32s(2)
                .into_iter()
                .map(Status::from_i32)
                .collect::<Result<Vec<_>>>()?;
            check_len(kind, "errors", errors.len(), object_ids.len())?;
            Message::DeleteReply { object_ids, errors }
        }
        T::ContainsRequest => Message::ContainsRequest {
            object_id: tab(&[F::Bytes])?.id(0)?,
        },
        T::ContainsReply => {
            let m = tab(&[F::Bytes, F::I32])?;
            Message::ContainsReply {
                object_id: m.id(0)?,
                has_object: m.scalar(1, 0i32) != 0,
            }
        }
        T::ListReply => Message::ListReply {
            objects: tab(&[F::InfoVec])?.infos(0)?,
        },
        T::EvictRequest => Message::EvictRequest {
            num_bytes: tab(&[F::I64])?.scalar(0, 0u64),
        },
        T::EvictReply => Message::EvictReply {
            num_bytes: tab(&[F::I64])?.scalar(0, 0u64),
        },
        T::SetOptionsRequest => {
            let m = tab(&[F::Bytes, F::I64])?;
            Message::SetOptionsRequest {
                client_name: String::from_utf8_lossy(m.bytes(0).unwrap_or_default()).into_owned(),
                output_memory_quota: m.scalar(1, 0i64),
            }
        }
        T::SetOptionsReply => Message::SetOptionsReply {
            error: tab(&[F::I32])?.status(0)?,
        },
        T::GetDebugStringReply => {
            let m = tab(&[F::Bytes])?;
            Message::GetDebugStringReply {
                debug_string: String::from_utf8_lossy(m.bytes(0).unwrap_or_default()).into_owned(),
            }
        }
        T::RefreshLruRequest => Message::RefreshLruRequest {
            object_ids: tab(&[F::BytesVec])?.ids(0)?,
        },
        T::DisconnectClient
        | T::ReleaseReply
        | T::UnsubscribeRequest
        | T::DataRequest
        | T::DataReply
        | T::Notification => return Err(Error::UnknownType { kind }),
    })
}
