//! The memory backend of tensor-ipc.
