//! The eleven tensor element types Arrow allows, and the Rust types that hold them.

use std::fmt;

use arrow_buffer::ArrowNativeType;
use arrow_schema::DataType;
use half::f16;

use crate::error::{Error, Result};

/// The element type of a tensor: exactly the types Arrow C++ accepts in a tensor message.
///
/// Bool, decimal, date and time types are not tensor types in Arrow C++ (`is_tensor_supported`),
/// so they are not here either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DType {
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Unsigned 16-bit integer.
    UInt16,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// IEEE 754 half precision.
    Float16,
    /// IEEE 754 single precision.
    Float32,
    /// IEEE 754 double precision.
    Float64,
}

impl DType {
    /// All element types, integers first.
    pub const ALL: [DType; 11] = [
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
    ];

    /// Width of one element in bits.
    pub const fn bit_width(self) -> usize {
        match self {
            DType::Int8 | DType::UInt8 => 8,
            DType::Int16 | DType::UInt16 | DType::Float16 => 16,
            DType::Int32 | DType::UInt32 | DType::Float32 => 32,
            DType::Int64 | DType::UInt64 | DType::Float64 => 64,
        }
    }

    /// Width of one element in bytes.
    pub const fn byte_width(self) -> usize {
        self.bit_width() / 8
    }

    /// Whether this is a floating point type.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::Float16 | DType::Float32 | DType::Float64)
    }

    /// Whether this is a signed type (signed integers and floats).
    pub const fn is_signed(self) -> bool {
        !matches!(
            self,
            DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64
        )
    }

    /// The NumPy-style name: `int8` ... `uint64`, `float16`, `float32`, `float64`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }

    /// Parses a name as printed by [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The matching Arrow data type.
    pub const fn to_arrow(self) -> DataType {
        match self {
            DType::Int8 => DataType::Int8,
            DType::Int16 => DataType::Int16,
            DType::Int32 => DataType::Int32,
            DType::Int64 => DataType::Int64,
            DType::UInt8 => DataType::UInt8,
            DType::UInt16 => DataType::UInt16,
            DType::UInt32 => DataType::UInt32,
            DType::UInt64 => DataType::UInt64,
            DType::Float16 => DataType::Float16,
            DType::Float32 => DataType::Float32,
            DType::Float64 => DataType::Float64,
        }
    }

    /// The element type for an Arrow data type, or [`Error::UnsupportedType`] for types that
    /// are not tensor types.
    pub fn from_arrow(data_type: &DataType) -> Result<DType> {
        Ok(match data_type {
            DataType::Int8 => DType::Int8,
            DataType::Int16 => DType::Int16,
            DataType::Int32 => DType::Int32,
            DataType::Int64 => DType::Int64,
            DataType::UInt8 => DType::UInt8,
            DataType::UInt16 => DType::UInt16,
            DataType::UInt32 => DType::UInt32,
            DataType::UInt64 => DType::UInt64,
            DataType::Float16 => DType::Float16,
            DataType::Float32 => DType::Float32,
            DataType::Float64 => DType::Float64,
            other => {
                return Err(Error::UnsupportedType {
                    type_name: other.to_string(),
                });
            }
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<DType> for DataType {
    fn from(dtype: DType) -> DataType {
        dtype.to_arrow()
    }
}

impl TryFrom<&DataType> for DType {
    type Error = Error;
    fn try_from(data_type: &DataType) -> Result<DType> {
        DType::from_arrow(data_type)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that holds one tensor element: `i8` ... `u64`, [`half::f16`], `f32`, `f64`.
///
/// Sealed: every bit pattern of these types is a valid value, which is what lets the crate view
/// raw message bytes as typed slices.
pub trait Element: ArrowNativeType + bytemuck::Pod + sealed::Sealed {
    /// The element type this Rust type holds.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

element!(
    i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64,
    f16 => Float16, f32 => Float32, f64 => Float64,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_names() {
        let widths: Vec<usize> = DType::ALL.iter().map(|d| d.byte_width()).collect();
        assert_eq!(widths, [1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8]);
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
            assert_eq!(DType::from_arrow(&d.to_arrow()).unwrap(), d);
        }
        assert_eq!(DType::from_name("bool"), None);
    }

    #[test]
    fn non_tensor_arrow_types_are_refused() {
        for t in [DataType::Boolean, DataType::Date32, DataType::Utf8] {
            assert!(matches!(
                DType::from_arrow(&t),
                Err(Error::UnsupportedType { .. })
            ));
        }
    }

    #[test]
    fn element_dtypes() {
        assert_eq!(<f16 as Element>::DTYPE, DType::Float16);
        assert_eq!(<u64 as Element>::DTYPE, DType::UInt64);
        assert_eq!(std::mem::size_of::<f16>(), DType::Float16.byte_width());
    }
}
