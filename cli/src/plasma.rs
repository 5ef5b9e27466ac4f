//! The CLI's uses of the Plasma client, in one place: connecting, parsing ids, getting an
//! object's bytes, and a sink that creates one object.

use std::path::Path;
use std::time::Duration;

pub(crate) use tensor_ipc_plasma_client::ObjectId;
use tensor_ipc_plasma_client::{PlasmaClient, PlasmaSink};

use crate::error::{Result, fail};

/// Reads 40 hex digits as a 20-byte object id.
pub(crate) fn parse_id(hex: &str) -> Result<ObjectId> {
    let digits = hex.as_bytes();
    if digits.len() != 40 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return fail(format!(
            "plasma:{hex}: a Plasma object id is 40 hex digits (20 bytes)"
        ));
    }
    let mut id = [0u8; 20];
    for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).expect("hex digits are ASCII");
        *byte = u8::from_str_radix(pair, 16).expect("checked hex digits");
    }
    Ok(ObjectId(id))
}

/// A connection to the store at `socket` (`--socket`), which a Plasma location needs.
pub(crate) fn connect(socket: Option<&Path>, id: ObjectId) -> Result<PlasmaClient> {
    let Some(socket) = socket else {
        return fail(format!(
            "plasma:{id}: a Plasma object needs the store's socket (--socket PATH)"
        ));
    };
    PlasmaClient::connect(socket).map_err(|e| crate::Error::command(format!("plasma:{id}: {e}")))
}

/// The data of sealed object `id` (not waiting for it), shared with the store.
pub(crate) fn get(client: &PlasmaClient, id: ObjectId) -> Result<arrow_buffer::Buffer> {
    let mut got = client
        .get(&[id], Some(Duration::ZERO))
        .map_err(|e| crate::Error::command(format!("plasma:{id}: {e}")))?;
    match got.pop().flatten() {
        Some(object) => Ok(object.data),
        None => fail(format!("plasma:{id}: no such object in the store")),
    }
}

/// A sink that writes one message (or one stream, with `write_parts`) into object `id`.
pub(crate) fn sink(client: &PlasmaClient, id: ObjectId) -> PlasmaSink {
    PlasmaSink::new(client, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_forty_hex_digits() {
        assert_eq!(parse_id(&"31".repeat(20)).unwrap(), ObjectId([b'1'; 20]));
        assert_eq!(parse_id(&"aB".repeat(20)).unwrap(), ObjectId([0xab; 20]));
        for bad in ["", "31", &"3g".repeat(20), &"31".repeat(21)] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }
}
