//! NumPy `.npy` headers: parsing and formatting, no I/O.
//!
//! A `.npy` file is a magic string, a version, a header length, a Python dict literal and the
//! raw array data:
//!
//! ```text
//! \x93NUMPY | major minor | HLEN (u16 LE for 1.0, u32 LE for 2.0 / 3.0) | {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), } | spaces | \n | data
//! ```
//!
//! [`parse_header`] reads versions 1.0, 2.0 and 3.0 and validates the dict strictly (exactly
//! the keys `descr`, `fortran_order` and `shape`; an element type among the eleven tensor
//! types or `bool`, spelled as below; non-negative integer dimensions whose byte size fits in
//! an `i64`). Hostile headers give [`Error::Npy`], never a panic.
//!
//! **The dtype rule.** A `descr` is accepted exactly in the form numpy's `dtype.descr` holds
//! and `np.save` writes: a byte-order character (`<`, `>`, `|` or `=`), then the kind and
//! the size in bytes, one of `i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 b1` (`'<f8'`, `'|u1'`,
//! `'|b1'`, `'=i4'`, `'<i1'`...). The byte order of one-byte types is ignored and `=` is this
//! machine's. Every other spelling numpy reads for a supported type (`'d'`, `'<d'`,
//! `'float64'`, `'l'`, `'int'`, `'b'`, `'?'`, `'f8'` without a byte order...) is refused,
//! naming the canonical form to write instead (`np.save` never writes them, so only a
//! hand-made header has them). Structured dtypes (a list-valued `descr`) are refused as
//! such.
//! [`format_header`] writes exactly the bytes `numpy.save` writes for the same array.
//!
//! ```
//! use tensor_ipc::DType;
//! use tensor_ipc_cli::npy;
//!
//! let header = npy::format_header(DType::Float32, &[2, 3], false)?;
//! assert_eq!(header.len(), 128); // the data starts 64-byte aligned, as numpy writes it
//! let parsed = npy::parse_header(&header)?;
//! assert_eq!((parsed.dtype, parsed.shape.as_slice()), (DType::Float32, &[2, 3][..]));
//! assert_eq!(parsed.data_offset, 128);
//! assert_eq!(parsed.data_len, 24);
//! # Ok::<(), tensor_ipc_cli::Error>(())
//! ```
//!
//! Big-endian element types (`>i4`, `>f8`, ...) are refused: pyarrow's `Tensor.from_numpy`
//! writes their bytes unswapped into a tensor that Arrow then reads as little-endian, so no
//! conversion would agree with both NumPy's values and pyarrow's bytes.

use crate::error::{Error, Result};
use tensor_ipc::{DType, layout};

/// The six bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The alignment numpy gives the start of the array data.
pub const ARRAY_ALIGN: usize = 64;

/// Spare spaces numpy leaves after the dict so the growth axis may gain digits in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The decoded header of a `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// The format version `(major, minor)`: `(1, 0)`, `(2, 0)` or `(3, 0)`.
    pub version: (u8, u8),
    /// The element type. NumPy `bool` maps to [`DType::UInt8`], as pyarrow maps it.
    pub dtype: DType,
    /// Whether the file's element type was NumPy `bool` (`|b1`), read as `uint8`.
    pub is_bool: bool,
    /// The shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The header length field: the bytes of the dict, its padding and the final newline.
    pub header_len: usize,
    /// The offset of the array data from the start of the file.
    pub data_offset: usize,
    /// The number of data bytes the shape and element type require.
    pub data_len: usize,
}

fn npy_err(reason: impl Into<String>) -> Error {
    Error::Npy {
        reason: reason.into(),
    }
}

/// Parses the header at the start of `bytes` (the whole file, or at least its header).
///
/// Validates the magic, the version, the header length against `bytes`, and the dict: its
/// syntax (a Python dict literal of strings, booleans and a tuple of integers), its keys, the
/// element type and the shape. The data itself is not looked at; the caller compares
/// [`NpyHeader::data_len`] with the bytes after [`NpyHeader::data_offset`].
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(npy_err(if bytes.is_empty() {
            "empty input, not a .npy file".to_owned()
        } else {
            "not a .npy file (missing the \\x93NUMPY magic)".to_owned()
        }));
    }
    if bytes.len() < 8 {
        return Err(npy_err("truncated header: no format version"));
    }
    let version = (bytes[6], bytes[7]);
    let (prefix_len, header_len): (usize, usize) = match version {
        (1, 0) => {
            let field = bytes
                .get(8..10)
                .ok_or_else(|| npy_err("truncated header: no header length"))?;
            (10, u16::from_le_bytes([field[0], field[1]]) as usize)
        }
        (2, 0) | (3, 0) => {
            let field = bytes
                .get(8..12)
                .ok_or_else(|| npy_err("truncated header: no header length"))?;
            let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
            let len = usize::try_from(len).map_err(|_| npy_err("header length too large"))?;
            (12, len)
        }
        (major, minor) => {
            return Err(npy_err(format!(
                "unsupported format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            )));
        }
    };
    let data_offset = prefix_len
        .checked_add(header_len)
        .ok_or_else(|| npy_err("header length too large"))?;
    let text = bytes.get(prefix_len..data_offset).ok_or_else(|| {
        npy_err(format!(
            "truncated header: the header length is {header_len} bytes, only {} available",
            bytes.len() - prefix_len.min(bytes.len())
        ))
    })?;
    // Version 1.0 and 2.0 headers are latin-1, 3.0 is UTF-8; the dict we accept is ASCII in
    // both, so any other byte is an error either way.
    if let Some(pos) = text.iter().position(|b| !b.is_ascii()) {
        return Err(npy_err(format!(
            "non-ASCII byte 0x{:02x} at offset {} of the header dict",
            text[pos], pos
        )));
    }
    let dict = parse_dict(text)?;
    let (dtype, is_bool) = parse_descr(&dict.descr)?;
    let data_len = layout::dense_byte_len(&dict.shape, dtype.byte_width()).map_err(|_| {
        npy_err(format!(
            "shape {:?} of {} is too large (its byte size overflows 64 bits)",
            dict.shape, dict.descr
        ))
    })?;
    Ok(NpyHeader {
        version,
        dtype,
        is_bool,
        shape: dict.shape,
        fortran_order: dict.fortran_order,
        header_len,
        data_offset,
        data_len,
    })
}

/// The header `numpy.save` writes for an array of this element type, shape and order: the
/// dict with its keys sorted, 21 spare spaces minus the digits of the growth axis, then
/// spaces and a newline so that the data starts at a multiple of 64; version 1.0 when the
/// header length fits in 16 bits, else 2.0. [`Error::Npy`] for an element type `.npy` has
/// no spelling for (none of the current eleven).
pub fn format_header(dtype: DType, shape: &[usize], fortran_order: bool) -> Result<Vec<u8>> {
    let descr = match dtype {
        DType::Int8 => "|i1",
        DType::UInt8 => "|u1",
        DType::Int16 => "<i2",
        DType::Int32 => "<i4",
        DType::Int64 => "<i8",
        DType::UInt16 => "<u2",
        DType::UInt32 => "<u4",
        DType::UInt64 => "<u8",
        DType::Float16 => "<f2",
        DType::Float32 => "<f4",
        DType::Float64 => "<f8",
        other => return Err(npy_err(format!("no .npy element type for {other}"))),
    };
    let shape_repr = match shape {
        [] => "()".to_owned(),
        [d] => format!("({d},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    };
    let order = if fortran_order { "True" } else { "False" };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_repr}, }}");
    let growth_axis = if fortran_order {
        shape.last()
    } else {
        shape.first()
    };
    if let Some(axis) = growth_axis {
        let digits = axis.to_string().len();
        dict.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
        ));
    }
    // numpy's `_wrap_header`: hlen counts the newline; the padding is 1 to 64 spaces.
    let hlen = dict.len() + 1;
    let wrap = |prefix_len: usize| {
        let padlen = ARRAY_ALIGN - (prefix_len + hlen) % ARRAY_ALIGN;
        (padlen, hlen + padlen)
    };
    let (padlen, total) = wrap(10);
    let mut out = Vec::with_capacity(12 + total);
    out.extend_from_slice(MAGIC);
    let padlen = if let Ok(len16) = u16::try_from(total) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&len16.to_le_bytes());
        padlen
    } else {
        let (padlen, total) = wrap(12);
        out.extend_from_slice(&[2, 0]);
        // A header longer than 4 GiB would need a shape of hundreds of millions of axes.
        let len32 = u32::try_from(total).unwrap_or(u32::MAX);
        out.extend_from_slice(&len32.to_le_bytes());
        padlen
    };
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padlen));
    out.push(b'\n');
    Ok(out)
}

/// The three entries of the header dict.
struct Dict {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A value of the header dict.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A recursive-descent parser of the subset of Python literal syntax numpy headers use.
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.get(self.pos).copied()
    }

    fn fail(&self, what: &str) -> Error {
        npy_err(format!(
            "malformed header dict: {what} at offset {} in {:?}",
            self.pos,
            String::from_utf8_lossy(&self.text[..self.text.len().min(200)])
        ))
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(&format!("expected '{}'", byte as char)))
        }
    }

    fn string(&mut self) -> Result<String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.fail("expected a string")),
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(&b) = self.text.get(self.pos) {
            if b == quote {
                let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                self.pos += 1;
                return Ok(s);
            }
            if b == b'\\' || b == b'\n' {
                return Err(self.fail("unsupported character in a string"));
            }
            self.pos += 1;
        }
        Err(self.fail("unterminated string"))
    }

    fn integer(&mut self) -> Result<usize> {
        self.skip_ws();
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.fail("expected a non-negative integer"));
        }
        let digits = std::str::from_utf8(&self.text[start..self.pos]).expect("ASCII digits");
        if digits.len() > 1 && digits.starts_with('0') {
            // Python 3 rejects `01`; so do we.
            return Err(self.fail("integer with a leading zero"));
        }
        // numpy's dimensions are `intp` and Arrow's are int64: at most 2^63 - 1 on both
        // sides ("Maximum allowed dimension exceeded", numpy says of a larger one).
        digits
            .parse::<i64>()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.fail("dimension too large (at most 2^63 - 1)"))
    }

    fn tuple(&mut self) -> Result<Vec<usize>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(b')') {
                self.pos += 1;
                break;
            }
            items.push(self.integer()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    // `(5)` is an int in Python, not a tuple.
                    if items.len() == 1 {
                        return Err(self.fail("a one-element shape needs a trailing comma"));
                    }
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.fail("expected ',' or ')' in the shape")),
            }
        }
        Ok(items)
    }

    fn word(&mut self) -> Result<bool> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if rest.starts_with(word)
                && !rest
                    .get(word.len())
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                self.pos += word.len();
                return Ok(value);
            }
        }
        Err(self.fail("expected a string, True, False or a tuple"))
    }

    fn value(&mut self) -> Result<Value> {
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'(') => self.tuple().map(Value::Tuple),
            _ => self.word().map(Value::Bool),
        }
    }
}

fn parse_dict(text: &[u8]) -> Result<Dict> {
    let mut p = Parser { text, pos: 0 };
    p.expect(b'{')?;
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    loop {
        if p.peek() == Some(b'}') {
            p.pos += 1;
            break;
        }
        let key = p.string()?;
        if !matches!(key.as_str(), "descr" | "fortran_order" | "shape") {
            return Err(npy_err(format!(
                "unexpected key {key:?} in the header dict"
            )));
        }
        p.expect(b':')?;
        if key == "descr" && matches!(p.peek(), Some(b'[' | b'{')) {
            // numpy writes a structured dtype's descr as a list of fields.
            return Err(npy_err(
                "structured dtypes are not supported ('descr' is a list of fields): save each \
                 field as an array of its own",
            ));
        }
        let value = p.value()?;
        let slot_taken = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("fortran_order", Value::Bool(b)) => fortran_order.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            ("descr", _) => {
                return Err(npy_err(
                    "'descr' is not a string (structured dtypes are not supported)",
                ));
            }
            ("fortran_order", _) => return Err(npy_err("'fortran_order' is not True or False")),
            (_, _) => return Err(npy_err("'shape' is not a tuple of integers")),
        };
        if slot_taken {
            return Err(npy_err(format!("duplicate key {key:?} in the header dict")));
        }
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b'}') => {}
            _ => return Err(p.fail("expected ',' or '}'")),
        }
    }
    // After the dict: only the padding spaces and the newline numpy writes.
    if p.peek().is_some() {
        return Err(p.fail("unexpected text after the dict"));
    }
    let missing = |key| npy_err(format!("the header dict has no {key:?} key"));
    Ok(Dict {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// The element types a `.npy` file may hold, as numpy's `descr` spells them after the byte
/// order: kind and size in bytes.
const CANONICAL_CODES: [(&str, DType, bool); 12] = [
    ("i1", DType::Int8, false),
    ("i2", DType::Int16, false),
    ("i4", DType::Int32, false),
    ("i8", DType::Int64, false),
    ("u1", DType::UInt8, false),
    ("u2", DType::UInt16, false),
    ("u4", DType::UInt32, false),
    ("u8", DType::UInt64, false),
    ("f2", DType::Float16, false),
    ("f4", DType::Float32, false),
    ("f8", DType::Float64, false),
    ("b1", DType::UInt8, true),
];

/// Other names numpy accepts for the supported types (type characters and type names, as
/// `np.dtype(name)` reads them on a 64-bit Linux or macOS machine), with the canonical code.
/// Only used to say what to write instead.
const ALIASES: &[(&str, &str)] = &[
    ("?", "b1"),
    ("bool", "b1"),
    ("bool_", "b1"),
    ("b", "i1"),
    ("byte", "i1"),
    ("int8", "i1"),
    ("B", "u1"),
    ("ubyte", "u1"),
    ("uint8", "u1"),
    ("h", "i2"),
    ("short", "i2"),
    ("int16", "i2"),
    ("H", "u2"),
    ("ushort", "u2"),
    ("uint16", "u2"),
    ("i", "i4"),
    ("intc", "i4"),
    ("int32", "i4"),
    ("I", "u4"),
    ("uintc", "u4"),
    ("uint32", "u4"),
    ("l", "i8"),
    ("q", "i8"),
    ("p", "i8"),
    ("long", "i8"),
    ("longlong", "i8"),
    ("intp", "i8"),
    ("int", "i8"),
    ("int64", "i8"),
    ("L", "u8"),
    ("Q", "u8"),
    ("P", "u8"),
    ("ulong", "u8"),
    ("ulonglong", "u8"),
    ("uintp", "u8"),
    ("uint64", "u8"),
    ("e", "f2"),
    ("half", "f2"),
    ("float16", "f2"),
    ("f", "f4"),
    ("single", "f4"),
    ("float32", "f4"),
    ("d", "f8"),
    ("double", "f8"),
    ("float", "f8"),
    ("float64", "f8"),
];

/// Maps a NumPy type string to an element type, and whether it is bool.
///
/// The one rule: a `descr` is accepted exactly in the form numpy's `descr` holds (what
/// `np.save` writes): a byte-order character (`<`, `>`, `|` or `=`) then the kind and size,
/// one of `i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 b1` (`<f8`, `|u1`, `|b1`, `=i4`...). The byte
/// order of a one-byte type is ignored; `=` is this machine's order; big-endian types of
/// more than one byte are refused. Any other spelling numpy reads for a supported type (a
/// type character `d`, `<d`, `?`, `b`, `l`..., a name `float64`, `int`..., a code without
/// byte order `f8`) is refused with the canonical form to write instead.
fn parse_descr(descr: &str) -> Result<(DType, bool)> {
    let (order, code) = match descr.as_bytes().first() {
        Some(&o @ (b'<' | b'>' | b'|' | b'=')) => (Some(o), &descr[1..]),
        _ => (None, descr),
    };
    let canonical = CANONICAL_CODES.iter().find(|(c, ..)| *c == code);
    let Some(&(_, dtype, is_bool)) = canonical.filter(|_| order.is_some()) else {
        return Err(not_canonical(descr, order, code));
    };
    let big_endian = order == Some(b'>') || (order == Some(b'=') && cfg!(target_endian = "big"));
    if big_endian && dtype.byte_width() > 1 {
        return Err(npy_err(format!(
            "big-endian dtype {descr:?} is not supported: convert the array to little-endian \
             first (e.g. a.astype(a.dtype.newbyteorder('<')))"
        )));
    }
    Ok((dtype, is_bool))
}

/// The error for a `descr` not in the canonical form: an alias numpy reads for a supported
/// type names that form, anything else is an unsupported type.
fn not_canonical(descr: &str, order: Option<u8>, code: &str) -> Error {
    let alias = ALIASES
        .iter()
        .find(|(name, _)| *name == code)
        .map(|&(_, canonical)| canonical)
        .or_else(|| {
            CANONICAL_CODES
                .iter()
                .find(|(c, ..)| *c == code)
                .map(|(c, ..)| *c)
        });
    let Some(canonical) = alias else {
        return npy_err(format!(
            "unsupported dtype {descr:?} (supported: int8-64, uint8-64, float16/32/64, bool)"
        ));
    };
    let order = match order {
        _ if canonical.ends_with('1') => '|',
        Some(b'>') => '>',
        _ => '<',
    };
    npy_err(format!(
        "dtype {descr:?} is not in the form np.save writes: spell it {:?} (a byte order \
         <, >, | or =, then the kind and size in bytes)",
        format!("{order}{canonical}")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(version: (u8, u8), dict: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if version.0 == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out
    }

    fn err(bytes: &[u8]) -> String {
        match parse_header(bytes) {
            Err(Error::Npy { reason }) => reason,
            other => panic!("expected an npy error, got {other:?}"),
        }
    }

    #[test]
    fn numpy_save_headers_byte_for_byte() {
        // Bytes of numpy 2 `np.save` for np.zeros((2, 3)) and np.zeros((), 'u1') and a
        // Fortran-order int32 (3, 4).
        let expect = |dtype, shape: &[usize], f, text: &str| {
            let h = format_header(dtype, shape, f).unwrap();
            assert_eq!(h.len() % 64, 0);
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
            let dict = std::str::from_utf8(&h[10..]).unwrap();
            assert_eq!(dict.trim_end(), text);
            assert!(dict.ends_with('\n'));
        };
        expect(
            DType::Float64,
            &[2, 3],
            false,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
        );
        expect(
            DType::UInt8,
            &[],
            false,
            "{'descr': '|u1', 'fortran_order': False, 'shape': (), }",
        );
        expect(
            DType::Int32,
            &[3, 4],
            true,
            "{'descr': '<i4', 'fortran_order': True, 'shape': (3, 4), }",
        );
        expect(
            DType::Float16,
            &[7],
            false,
            "{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }",
        );
        // The growth-axis spaces: 21 minus the digits of shape[0] (C) or shape[-1] (F).
        let h = format_header(DType::Float64, &[2, 3], false).unwrap();
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(
            &h[10..10 + dict.len() + 20],
            format!("{dict}{}", " ".repeat(20)).as_bytes()
        );
    }

    #[test]
    fn format_then_parse_round_trips() {
        for dtype in DType::ALL {
            for (shape, f) in [
                (vec![], false),
                (vec![0], false),
                (vec![5], false),
                (vec![2, 0, 3], true),
                (vec![3, 4], true),
                (vec![1_000_000, 7, 1], false),
            ] {
                let h = format_header(dtype, &shape, f).unwrap();
                let p = parse_header(&h).unwrap();
                assert_eq!(p.version, (1, 0));
                assert_eq!(p.dtype, dtype);
                assert!(!p.is_bool);
                assert_eq!(p.shape, shape);
                assert_eq!(p.fortran_order, f);
                assert_eq!(p.data_offset, h.len());
                assert_eq!(p.header_len, h.len() - 10);
                assert_eq!(
                    p.data_len,
                    shape.iter().product::<usize>() * dtype.byte_width()
                );
            }
        }
    }

    #[test]
    fn long_headers_use_version_2() {
        // Enough dimensions to exceed a 16-bit header length.
        let shape = vec![1usize; 30_000];
        let h = format_header(DType::Int8, &shape, false).unwrap();
        assert_eq!(&h[6..8], &[2, 0]);
        assert_eq!(h.len() % 64, 0);
        let p = parse_header(&h).unwrap();
        assert_eq!(p.version, (2, 0));
        assert_eq!(p.shape.len(), 30_000);
        assert_eq!(p.data_offset, h.len());
    }

    #[test]
    fn versions_and_dict_variants() {
        for v in [(1, 0), (2, 0), (3, 0)] {
            let p = parse_header(&npy(
                v,
                "{\"shape\": ( 4 , 5 ,) , \"fortran_order\":True,'descr':'<u2'}  \n",
            ))
            .unwrap();
            assert_eq!(p.version, v);
            assert_eq!(p.dtype, DType::UInt16);
            assert_eq!(p.shape, [4, 5]);
            assert!(p.fortran_order);
            assert_eq!(p.data_len, 40);
        }
        let p = parse_header(&npy(
            (1, 0),
            "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n",
        ))
        .unwrap();
        assert_eq!((p.dtype, p.is_bool), (DType::UInt8, true));
        // Byte order is irrelevant for one-byte types.
        let p = parse_header(&npy(
            (1, 0),
            "{'descr': '>i1', 'fortran_order': False, 'shape': (), }",
        ))
        .unwrap();
        assert_eq!((p.dtype, p.shape.len(), p.data_len), (DType::Int8, 0, 1));
    }

    #[test]
    fn hostile_headers_are_errors() {
        let dict = |d: &str| npy((1, 0), d);
        let ok = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n";
        assert!(err(b"").contains("empty"));
        assert!(err(b"PK\x03\x04").contains("magic"));
        assert!(err(b"\x93NUMPY").contains("version"));
        assert!(err(b"\x93NUMPY\x01\x00\x10").contains("header length"));
        assert!(err(b"\x93NUMPY\x04\x00\x10\x00").contains("version 4.0"));
        assert!(err(b"\x93NUMPY\x01\x01\x10\x00").contains("version 1.1"));
        // Header length past the end, including the largest 32-bit length.
        let mut cut = dict(ok);
        cut.truncate(30);
        assert!(err(&cut).contains("truncated"));
        assert!(err(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}").contains("truncated"));
        for (d, what) in [
            ("", "expected '{'"),
            ("{", "expected a string"),
            ("{'descr' '<f8'}", "expected ':'"),
            ("{'descr': '<f8}", "unterminated"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }}",
                "after the dict",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)",
                "expected ','",
            ),
            (
                "{'descr': '<f8', 'fortran_order': false, 'shape': (2,)}",
                "True, False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2,)}",
                "True, False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}",
                "True, False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2)}",
                "trailing comma",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}",
                "non-negative",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}",
                "expected ','",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (02,)}",
                "leading zero",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': [2]}",
                "True, False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                "unexpected key",
            ),
            (
                "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': ()}",
                "duplicate",
            ),
            ("{'descr': '<f8', 'fortran_order': False}", "no \"shape\""),
            ("{'fortran_order': False, 'shape': ()}", "no \"descr\""),
            ("{'descr': '<f8', 'shape': ()}", "no \"fortran_order\""),
            (
                "{'descr': 'a\\'b', 'fortran_order': False, 'shape': ()}",
                "unsupported character",
            ),
            (
                "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': ()}",
                "structured dtypes are not supported",
            ),
            (
                "{'descr': [('a', '<i4'), ('b', [('c', '<f8')])], 'fortran_order': False, 'shape': (2,)}",
                "structured dtypes are not supported",
            ),
            (
                "{'fortran_order': False, 'shape': (2,), 'descr': [('x', '|u1')], }",
                "structured dtypes are not supported",
            ),
            (
                "{'descr': '<c16', 'fortran_order': False, 'shape': ()}",
                "unsupported dtype",
            ),
            (
                "{'descr': '<M8[s]', 'fortran_order': False, 'shape': ()}",
                "unsupported dtype",
            ),
            (
                "{'descr': 'O', 'fortran_order': False, 'shape': ()}",
                "unsupported dtype",
            ),
            (
                "{'descr': '>f8', 'fortran_order': False, 'shape': ()}",
                "big-endian",
            ),
            (
                "{'descr': '>i4', 'fortran_order': False, 'shape': ()}",
                "big-endian",
            ),
            (
                "{'descr': 5, 'fortran_order': False, 'shape': ()}",
                "True, False",
            ),
            (
                "{'descr': True, 'fortran_order': False, 'shape': ()}",
                "not a string",
            ),
            (
                "{'descr': '<f8', 'fortran_order': (), 'shape': ()}",
                "not True or False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': 'x'}",
                "not a tuple",
            ),
            // Huge dimensions: one that does not fit usize, products that overflow.
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
                "too large",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
                "too large",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1152921504606846976,)}",
                "too large",
            ),
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (18446744073709551615,)}",
                "too large",
            ),
        ] {
            let reason = err(&dict(d));
            assert!(reason.contains(what), "{d}: {reason}");
        }
        // Non-ASCII bytes anywhere in the dict.
        let mut bad = dict(ok);
        bad[20] = 0xe9;
        assert!(err(&bad).contains("non-ASCII"));
        // A zero-size axis makes a huge shape harmless, up to the largest dimension numpy
        // and Arrow have (found by the npy fuzz target: (0, 2^63) once parsed, and then its
        // tensor could not be written).
        let p = parse_header(&dict(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807)}",
        ))
        .unwrap();
        assert_eq!(p.data_len, 0);
        for shape in ["(0, 9223372036854775808)", "(0, 18446744073709551615)"] {
            let d = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}}}");
            assert!(err(&dict(&d)).contains("dimension too large"), "{shape}");
        }
    }

    /// The one dtype rule: the canonical form (byte order, kind, size) converts, every other
    /// spelling numpy reads for the same type is refused naming the canonical form.
    #[test]
    fn every_dtype_spelling_follows_one_rule() {
        let parse = |descr: &str| {
            parse_header(&npy(
                (1, 0),
                &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (), }}"),
            ))
        };
        for (descr, dtype, is_bool) in [
            ("<f8", DType::Float64, false),
            ("=f8", DType::Float64, false),
            ("|u1", DType::UInt8, false),
            ("<u1", DType::UInt8, false),
            ("|i1", DType::Int8, false),
            (">i1", DType::Int8, false),
            ("|b1", DType::UInt8, true),
            ("<i2", DType::Int16, false),
            ("<i4", DType::Int32, false),
            ("=i8", DType::Int64, false),
            ("<u2", DType::UInt16, false),
            ("<u4", DType::UInt32, false),
            ("<u8", DType::UInt64, false),
            ("<f2", DType::Float16, false),
            ("<f4", DType::Float32, false),
        ] {
            let h = parse(descr).unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!((h.dtype, h.is_bool), (dtype, is_bool), "{descr}");
        }
        for (descr, canonical) in [
            ("<d", "<f8"),
            ("d", "<f8"),
            ("=d", "<f8"),
            ("float64", "<f8"),
            ("float", "<f8"),
            ("double", "<f8"),
            ("f8", "<f8"),
            ("l", "<i8"),
            ("<l", "<i8"),
            ("q", "<i8"),
            ("int64", "<i8"),
            ("int", "<i8"),
            ("i", "<i4"),
            ("int32", "<i4"),
            ("h", "<i2"),
            ("H", "<u2"),
            ("I", "<u4"),
            ("L", "<u8"),
            ("uint64", "<u8"),
            ("b", "|i1"),
            ("int8", "|i1"),
            ("i1", "|i1"),
            ("B", "|u1"),
            ("uint8", "|u1"),
            ("u1", "|u1"),
            ("?", "|b1"),
            ("|?", "|b1"),
            ("bool", "|b1"),
            ("b1", "|b1"),
            ("e", "<f2"),
            ("float16", "<f2"),
            ("f", "<f4"),
            ("<f", "<f4"),
            ("float32", "<f4"),
            (">d", ">f8"),
        ] {
            let reason = match parse(descr) {
                Err(Error::Npy { reason }) => reason,
                other => panic!("{descr}: expected a refusal, got {other:?}"),
            };
            assert!(
                reason.contains("not in the form np.save writes")
                    && reason.contains(&format!("spell it {canonical:?}")),
                "{descr}: {reason}"
            );
        }
        // Unsupported types stay unsupported whatever their spelling.
        for descr in [
            "<c16",
            "complex128",
            "O",
            "<U3",
            "S5",
            "<M8[s]",
            "<f16",
            "g",
            "<i3",
        ] {
            let reason = match parse(descr) {
                Err(Error::Npy { reason }) => reason,
                other => panic!("{descr}: {other:?}"),
            };
            assert!(reason.contains("unsupported dtype"), "{descr}: {reason}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic fuzz: every prefix of a valid header, and random bytes after
        // the magic.
        let valid = format_header(DType::Float32, &[2, 3, 4], true).unwrap();
        for n in 0..valid.len() {
            let _ = parse_header(&valid[..n]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            let len = (state % 80) as usize;
            bytes.extend_from_slice(&(len as u16).to_le_bytes());
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(b"{}(),: '\"TrueFalsdcp0123456789<|fiu>\n"[(state % 36) as usize]);
            }
            let _ = parse_header(&bytes);
        }
    }
}
