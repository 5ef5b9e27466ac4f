//! The Plasma wire protocol of Apache Arrow 11.0.0, shared by the `plasma-store`
//! server and the (future) tensor-ipc Plasma client.
//!
//! * [`frame`]: the 24-byte frame header (`version`, `type`, `length`) and its body.
//! * [`Message`]: every request and reply, encoded to and decoded from FlatBuffers
//!   laid out exactly as Arrow 11's `plasma.fbs` (object ids are 20-byte binary
//!   strings; every body is verified before it is read).
//! * [`fdpass`]: file descriptor passing, one fd per 1-byte `SCM_RIGHTS` message.
//! * [`notification`]: the length-prefixed notification stream.
//! * [`client`]: a `Send + Sync` Rust client for any Arrow 11 Plasma store, and
//!   the tensor-ipc backend on top of it (`PlasmaSink`, `PlasmaSource`).
//!
//! Limits that bound what a peer can make us allocate are constants here:
//! [`MAX_MESSAGE_SIZE`] and [`MAX_IDS_PER_REQUEST`].

pub mod client;
mod error;
pub mod fdpass;
pub mod frame;
mod id;
mod message;
pub mod notification;
pub mod poll;
mod wire;

#[allow(
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

pub use error::{Error, Result};
pub use id::ObjectId;
pub use message::{Message, MessageType, ObjectInfo, ObjectSpec, Status};

/// The protocol version every frame header carries (`kPlasmaProtocolVersion`).
pub const PROTOCOL_VERSION: i64 = 0;

/// Largest frame body accepted (1 GiB). `CreateAndSeal` carries object data
/// inline, so this also bounds an inline object.
pub const MAX_MESSAGE_SIZE: u64 = 1 << 30;

/// Most object ids accepted in one request (Get, Delete, RefreshLRU, batch create).
pub const MAX_IDS_PER_REQUEST: usize = 1 << 20;

/// Size of an object id in bytes.
pub const OBJECT_ID_SIZE: usize = 20;
