//! The object-store backend's one integration test binary: the conformance suite and the
//! sink's and source's behaviour over in-memory stores, local files, and a real S3 server
//! (SeaweedFS, started by `.ci/s3-server.sh`), with its faults, a real HTTP server with
//! WebDAV (WsgiDAV, started by `.ci/webdav-server.sh`) and a real Azure Blob Storage server
//! (Azurite, started by `.ci/azurite.sh`).

mod azure;
mod faults;
mod http;
mod local;
mod memory;
#[path = "../../../tests/support/peers.rs"]
mod peers;
mod recording;
mod s3;
mod server;
