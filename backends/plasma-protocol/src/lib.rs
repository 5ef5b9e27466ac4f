//! The Plasma wire protocol of Apache Arrow 11.0.0, shared by the `plasma-store` server and
//! the tensor-ipc Plasma client (neither depends on the other; this crate depends on neither).
//!
//! * [`Message`]: each request and reply is a type in [`messages`], encoded to and decoded
//!   from FlatBuffers laid out exactly as Arrow 11's `plasma.fbs` (object ids are 20-byte
//!   binary strings). Every body is checked by the flatc-generated verifier before it is read.
//!   A [`Request`] names its reply type, so a client call is `request -> Reply`; a store
//!   decodes frames into [`AnyRequest`].
//! * [`frame`]: the 24-byte frame header (`version`, `type`, `length`), reading frames from
//!   any `Read`, and [`frame::send_all`], the one socket write (with `MSG_NOSIGNAL`).
//! * [`fdpass`]: file descriptor passing, one fd per 1-byte `SCM_RIGHTS` message.
//! * [`notification`]: the length-prefixed notification stream.
//! * [`poll`]: the short busy-poll both sides use before sleeping on a socket.
//!
//! Limits that bound what a peer can make us allocate are constants here:
//! [`MAX_MESSAGE_SIZE`] and [`MAX_IDS_PER_REQUEST`].
//!
//! No code of this crate is `unsafe` except the flatc-generated module (`unsafe_code` is
//! denied everywhere else); fd passing goes through rustix's safe API.

#![deny(unsafe_code)]

mod any;
mod error;
pub mod fdpass;
pub mod frame;
mod id;
mod message;
pub mod messages;
pub mod notification;
pub mod poll;

#[allow(
    unsafe_code,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    unused,
    unused_imports,
    non_snake_case,
    non_camel_case_types,
    non_upper_case_globals,
    unsafe_op_in_unsafe_fn,
    mismatched_lifetime_syntaxes,
    deprecated
)]
#[path = "generated/plasma_generated.rs"]
mod generated;

pub use any::{AnyReply, AnyRequest};
pub use error::{Error, Result};
pub use id::ObjectId;
pub use message::{Message, MessageType, ObjectInfo, ObjectSpec, Request, Status};

/// The protocol version every frame header carries (`kPlasmaProtocolVersion`).
pub const PROTOCOL_VERSION: i64 = 0;

/// Largest frame body accepted (1 GiB). `CreateAndSeal` carries object data
/// inline, so this also bounds an inline object.
pub const MAX_MESSAGE_SIZE: u64 = 1 << 30;

/// Most object ids accepted in one request (Get, Delete, RefreshLRU, batch create).
pub const MAX_IDS_PER_REQUEST: usize = 1 << 20;

/// Size of an object id in bytes.
pub const OBJECT_ID_SIZE: usize = 20;
