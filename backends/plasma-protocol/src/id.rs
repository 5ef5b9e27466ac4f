use std::fmt;

use crate::{Error, OBJECT_ID_SIZE, Result};

/// A Plasma object id: exactly 20 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub [u8; OBJECT_ID_SIZE]);

impl ObjectId {
    /// Builds an id from a byte slice, which must be exactly 20 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let array: [u8; OBJECT_ID_SIZE] = bytes
            .try_into()
            .map_err(|_| Error::ObjectIdLength { len: bytes.len() })?;
        Ok(Self(array))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; OBJECT_ID_SIZE] {
        &self.0
    }

    /// Lower-case hex, as Arrow prints ids.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(2 * OBJECT_ID_SIZE);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses what [`hex`](Self::hex) writes: exactly 40 lower-case hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 2 * OBJECT_ID_SIZE {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut id = [0u8; OBJECT_ID_SIZE];
        for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Self(id))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.hex())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_length() {
        assert!(matches!(
            ObjectId::from_slice(&[1; 19]),
            Err(Error::ObjectIdLength { len: 19 })
        ));
        let id = ObjectId::from_slice(&[0xab; 20]).unwrap();
        assert_eq!(id.hex(), "ab".repeat(20));
    }

    #[test]
    fn hex_round_trips() {
        let id = ObjectId(std::array::from_fn(|n| n as u8 * 13));
        assert_eq!(ObjectId::from_hex(&id.hex()), Some(id));
        assert_eq!(ObjectId::from_hex(&"AB".repeat(20)), None);
        assert_eq!(ObjectId::from_hex(&"ab".repeat(19)), None);
        assert_eq!(ObjectId::from_hex(&"zz".repeat(20)), None);
        assert_eq!(ObjectId::from_hex(&format!("{}é", "a".repeat(38))), None);
    }
}
