//! A raw Plasma client written with the protocol crate only, and an in-process store to point
//! it at: the store's integration tests drive every message through it, and the client
//! crate's chaos test uses it for clients that hang up in every state. (The client crate's
//! test binary includes this file with `#[path]`.)

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use tensor_ipc_plasma_protocol::fdpass::{recv_with_fds, send_fd};
use tensor_ipc_plasma_protocol::frame::read_frame;
use tensor_ipc_plasma_protocol::messages::*;
use tensor_ipc_plasma_protocol::{
    Message, ObjectId, ObjectInfo, ObjectSpec, Request, Status, notification,
};
use tensor_ipc_plasma_store::{StoreBuilder, StoreHandle};

pub(crate) struct Store {
    pub(crate) handle: Option<StoreHandle>,
    pub(crate) _dir: tempfile::TempDir,
}

impl Store {
    pub(crate) fn path(&self) -> PathBuf {
        self.handle.as_ref().unwrap().socket_path().to_path_buf()
    }
    pub(crate) fn client(&self) -> Client {
        Client::connect(&self.path())
    }
}

pub(crate) fn store_with(memory: u64, f: impl FnOnce(StoreBuilder) -> StoreBuilder) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let builder = StoreBuilder::new()
        .socket(dir.path().join("plasma.sock"))
        .memory(memory);
    let handle = f(builder).spawn().unwrap();
    Store {
        handle: Some(handle),
        _dir: dir,
    }
}

pub(crate) fn store(memory: u64) -> Store {
    store_with(memory, |b| b)
}

pub(crate) fn id(n: u8) -> ObjectId {
    ObjectId([n; 20])
}

pub(crate) const DIGEST: [u8; 8] = [7; 8];

/// A raw Plasma client.
pub(crate) struct Client {
    pub(crate) stream: UnixStream,
    pub(crate) fds: Vec<OwnedFd>,
    /// Segment key -> mapping.
    pub(crate) maps: HashMap<i32, memmap2::MmapRaw>,
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        recv_with_fds(self.stream.as_fd(), buf, &mut self.fds)
    }
}

impl Client {
    pub(crate) fn connect(path: &std::path::Path) -> Self {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Self {
            stream,
            fds: Vec::new(),
            maps: HashMap::new(),
        }
    }

    pub(crate) fn send<M: Message>(&mut self, m: &M) {
        self.stream.write_all(&m.encode_frame()).unwrap();
    }

    /// The next frame, which must be an `R`.
    pub(crate) fn recv<R: Message>(&mut self) -> R {
        let frame = read_frame(self, 1 << 31).unwrap();
        assert_eq!(frame.kind, R::TYPE.0, "expected {:?}", R::TYPE);
        R::decode(&frame.body).unwrap()
    }

    pub(crate) fn request<R: Request>(&mut self, m: &R) -> R::Reply {
        self.send(m);
        self.recv()
    }

    /// Receives a segment fd (1-byte message) and maps it.
    pub(crate) fn take_segment(&mut self, key: i32, mmap_size: i64) {
        if self.maps.contains_key(&key) {
            return;
        }
        let fd = match self.fds.pop() {
            Some(fd) => fd,
            None => {
                let mut byte = [0u8; 1];
                let n = recv_with_fds(self.stream.as_fd(), &mut byte, &mut self.fds).unwrap();
                assert_eq!(n, 1);
                assert_eq!(byte[0], 0x14);
                self.fds.pop().expect("an fd with the 1-byte message")
            }
        };
        let file = std::fs::File::from(fd);
        let len = usize::try_from(mmap_size - 8).unwrap();
        let map = memmap2::MmapOptions::new().len(len).map_raw(&file).unwrap();
        self.maps.insert(key, map);
    }

    pub(crate) fn connect_msg(&mut self) -> i64 {
        self.request(&ConnectRequest).memory_capacity
    }

    pub(crate) fn create_full(
        &mut self,
        oid: ObjectId,
        data: u64,
        meta: u64,
        evict: bool,
    ) -> Result<ObjectSpec, Status> {
        let reply = self.request(&CreateRequest {
            object_id: oid,
            evict_if_full: evict,
            data_size: data,
            metadata_size: meta,
            device_num: 0,
        });
        let CreateReply {
            object_id,
            object,
            error,
            store_fd,
            mmap_size,
        } = reply;
        assert_eq!(object_id, oid);
        if error != Status::Ok {
            assert_eq!(object, ObjectSpec::default());
            return Err(error);
        }
        assert_eq!(object.data_offset % 64, 0);
        assert_eq!(object.metadata_offset, object.data_offset + data);
        assert_eq!(object.segment_index, store_fd);
        self.take_segment(store_fd, mmap_size);
        Ok(object)
    }

    pub(crate) fn create(&mut self, oid: ObjectId, data: u64) -> ObjectSpec {
        self.create_full(oid, data, 0, true).unwrap()
    }

    pub(crate) fn write(&self, spec: &ObjectSpec, offset: u64, bytes: &[u8]) {
        let map = &self.maps[&spec.segment_index];
        let at = usize::try_from(spec.data_offset + offset).unwrap();
        assert!(at + bytes.len() <= map.len());
        // SAFETY: the range is inside the mapping (checked above); the object
        // is unsealed and owned by this test.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr().add(at), bytes.len())
        }
    }

    pub(crate) fn read(&self, spec: &ObjectSpec) -> Vec<u8> {
        let map = &self.maps[&spec.segment_index];
        let at = usize::try_from(spec.data_offset).unwrap();
        let len = usize::try_from(spec.data_size + spec.metadata_size).unwrap();
        assert!(at + len <= map.len());
        // SAFETY: the range is inside the mapping (checked above).
        unsafe { std::slice::from_raw_parts(map.as_ptr().add(at), len).to_vec() }
    }

    pub(crate) fn seal(&mut self, oid: ObjectId) -> Status {
        let SealReply { object_id, error } = self.request(&SealRequest {
            object_id: oid,
            digest: DIGEST.to_vec(),
        });
        assert_eq!(object_id, oid);
        error
    }

    pub(crate) fn put(&mut self, oid: ObjectId, data: &[u8]) {
        let spec = self.create(oid, data.len() as u64);
        self.write(&spec, 0, data);
        assert_eq!(self.seal(oid), Status::Ok);
    }

    pub(crate) fn release(&mut self, oid: ObjectId) {
        self.send(&ReleaseRequest { object_id: oid });
    }

    pub(crate) fn get(&mut self, ids: &[ObjectId], timeout_ms: i64) -> Vec<ObjectSpec> {
        let reply = self.request(&GetRequest {
            object_ids: ids.to_vec(),
            timeout_ms,
        });
        let GetReply {
            object_ids,
            objects,
            store_fds,
            mmap_sizes,
        } = reply;
        assert_eq!(object_ids, ids);
        assert_eq!(store_fds.len(), mmap_sizes.len());
        for (key, size) in store_fds.iter().zip(&mmap_sizes) {
            self.take_segment(*key, *size);
        }
        objects
    }

    pub(crate) fn contains(&mut self, oid: ObjectId) -> bool {
        let ContainsReply {
            object_id,
            has_object,
        } = self.request(&ContainsRequest { object_id: oid });
        assert_eq!(object_id, oid);
        has_object
    }

    pub(crate) fn delete(&mut self, ids: &[ObjectId]) -> Vec<Status> {
        let DeleteReply { object_ids, errors } = self.request(&DeleteRequest {
            object_ids: ids.to_vec(),
        });
        assert_eq!(object_ids, ids);
        errors
    }

    pub(crate) fn evict(&mut self, n: u64) -> u64 {
        self.request(&EvictRequest { num_bytes: n }).num_bytes
    }

    pub(crate) fn list(&mut self) -> Vec<ObjectInfo> {
        self.request(&ListRequest).objects
    }

    /// Subscribes; returns our end of the notification socket.
    pub(crate) fn subscribe(&mut self) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        self.send(&SubscribeRequest);
        send_fd(self.stream.as_fd(), theirs.as_fd()).unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        ours
    }

    /// True once the store has closed this connection.
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

pub(crate) fn next_notification(sock: &mut UnixStream) -> Vec<ObjectInfo> {
    let mut len = [0u8; 8];
    sock.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; usize::try_from(i64::from_le_bytes(len)).unwrap()];
    sock.read_exact(&mut body).unwrap();
    notification::decode(&body).unwrap()
}

/// Checks that the store still serves a fresh client.
pub(crate) fn assert_alive(store: &Store) {
    let mut c = store.client();
    assert_eq!(
        c.connect_msg(),
        i64::try_from(store.handle.as_ref().unwrap().capacity()).unwrap()
    );
    c.put(id(0xee), b"alive");
    let spec = c.get(&[id(0xee)], 0)[0];
    assert_eq!(c.read(&spec), b"alive");
    assert_eq!(c.delete(&[id(0xee)]), vec![Status::ObjectInUse]);
    c.release(id(0xee));
    c.release(id(0xee));
    assert!(!c.contains(id(0xee)));
}

/// A raw frame header.
pub(crate) fn header(version: i64, kind: i64, len: i64) -> Vec<u8> {
    [version, kind, len]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}
