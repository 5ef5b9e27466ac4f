//! The file backend of tensor-ipc.
