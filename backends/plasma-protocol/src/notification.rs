//! The notification stream: `[i64 length][PlasmaNotification body]` per message, with no
//! frame header.

use flatbuffers::FlatBufferBuilder;

use crate::Result;
use crate::generated::plasma::flatbuf as fb;
use crate::message::{MessageType, ObjectInfo, root};

/// Encodes one notification message, length prefix included. Seal entries carry ids, sizes
/// and digests; deletion entries carry only the id and `is_deletion`, as the original store
/// sends them.
pub fn encode(infos: &[ObjectInfo]) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let entries: Vec<_> = infos
        .iter()
        .map(|info| {
            if info.is_deletion {
                let bare = ObjectInfo {
                    object_id: info.object_id,
                    is_deletion: true,
                    ..ObjectInfo::default()
                };
                bare.build(&mut fbb, false)
            } else {
                let seal = ObjectInfo {
                    object_id: info.object_id,
                    data_size: info.data_size,
                    metadata_size: info.metadata_size,
                    digest: info.digest.clone(),
                    ..ObjectInfo::default()
                };
                seal.build(&mut fbb, true)
            }
        })
        .collect();
    let object_info = Some(fbb.create_vector(&entries));
    let root =
        fb::PlasmaNotification::create(&mut fbb, &fb::PlasmaNotificationArgs { object_info });
    fbb.finish_minimal(root);
    let body = fbb.finished_data();
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(body.len() as i64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Decodes a notification body (without its length prefix), verifying it first.
pub fn decode(body: &[u8]) -> Result<Vec<ObjectInfo>> {
    let kind = MessageType::PlasmaNotification;
    let message = root::<fb::PlasmaNotification>(kind, body)?;
    message
        .object_info()
        .map(|v| {
            v.iter()
                .map(|info| ObjectInfo::from_fb(kind, info))
                .collect()
        })
        .unwrap_or_else(|| Ok(Vec::new()))
}
