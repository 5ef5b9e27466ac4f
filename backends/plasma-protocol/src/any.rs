//! Decoding a frame whose type is only known at run time: [`AnyRequest`] is every request a
//! store serves (the store matches on it), [`AnyReply`] every reply (for tools and tests).

use crate::messages::*;
use crate::{Error, Message, Result};

/// Declares an enum with one variant per message type, and its decoder by type word.
macro_rules! any_message {
    ($(#[$meta:meta])* $name:ident { $($variant:ident($message:ident),)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum $name {
            $($variant($message),)*
        }

        impl $name {
            /// Decodes a body of frame type `kind`, verifying it first;
            /// [`Error::UnknownType`] for a type word that is not one of these messages.
            pub fn decode(kind: i64, body: &[u8]) -> Result<Self> {
                $(
                    if kind == <$message as Message>::TYPE.0 {
                        return Ok(Self::$variant($message::decode(body)?));
                    }
                )*
                Err(Error::UnknownType { kind })
            }

            /// The frame type word of this message.
            pub fn kind(&self) -> crate::MessageType {
                match self {
                    $(Self::$variant(_) => <$message as Message>::TYPE,)*
                }
            }

            /// The whole frame of this message.
            pub fn encode_frame(&self) -> Vec<u8> {
                match self {
                    $(Self::$variant(m) => m.encode_frame(),)*
                }
            }
        }

        $(
            impl From<$message> for $name {
                fn from(m: $message) -> Self {
                    Self::$variant(m)
                }
            }
        )*
    };
}

any_message! {
    /// Every request a Plasma store serves.
    AnyRequest {
        Connect(ConnectRequest),
        Create(CreateRequest),
        CreateAndSeal(CreateAndSealRequest),
        CreateAndSealBatch(CreateAndSealBatchRequest),
        Abort(AbortRequest),
        Seal(SealRequest),
        Get(GetRequest),
        Release(ReleaseRequest),
        Delete(DeleteRequest),
        Contains(ContainsRequest),
        List(ListRequest),
        Evict(EvictRequest),
        Subscribe(SubscribeRequest),
        SetOptions(SetOptionsRequest),
        GetDebugString(GetDebugStringRequest),
        RefreshLru(RefreshLruRequest),
    }
}

any_message! {
    /// Every reply a Plasma store sends.
    AnyReply {
        Connect(ConnectReply),
        Create(CreateReply),
        CreateAndSeal(CreateAndSealReply),
        CreateAndSealBatch(CreateAndSealBatchReply),
        Abort(AbortReply),
        Seal(SealReply),
        Get(GetReply),
        Delete(DeleteReply),
        Contains(ContainsReply),
        List(ListReply),
        Evict(EvictReply),
        SetOptions(SetOptionsReply),
        GetDebugString(GetDebugStringReply),
        RefreshLru(RefreshLruReply),
    }
}
