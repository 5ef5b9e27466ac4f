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
}
