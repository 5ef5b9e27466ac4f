//! The tensor-ipc backend: [`PlasmaSink`] writes each message straight into a
//! new Plasma object, [`PlasmaSource`] reads messages from objects zero-copy.

use std::collections::VecDeque;
use std::time::Duration;

use arrow_buffer::Buffer;
use tensor_ipc::{Error, Result, TensorData, TensorSink, TensorSource};

use crate::{ClientError, CreatedObject, ObjectBuffers, ObjectId, PlasmaClient};

/// A [`TensorSink`] that stores each message as one Plasma object.
///
/// `reserve(len)` creates an object of exactly `len` bytes and lends its
/// shared memory, so the writer's one copy lands in the store; `commit`
/// seals it. [`new`](PlasmaSink::new) takes one object id (one message);
/// [`with_ids`](PlasmaSink::with_ids) takes a sequence for several messages.
///
/// ```no_run
/// use tensor_ipc::{Tensor, write_tensor};
/// use tensor_ipc_plasma_client::{ObjectId, PlasmaClient, PlasmaSink};
///
/// let client = PlasmaClient::connect("/tmp/plasma")?;
/// let tensor = Tensor::from_vec(vec![2.0f32; 1000], vec![1000])?;
/// write_tensor(&tensor, &mut PlasmaSink::new(&client, ObjectId([b'1'; 20])))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PlasmaSink {
    client: PlasmaClient,
    ids: Box<dyn Iterator<Item = ObjectId> + Send>,
    metadata: Vec<u8>,
    pending: Option<CreatedObject>,
    sealed: Vec<ObjectId>,
}

impl std::fmt::Debug for PlasmaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlasmaSink")
            .field("pending", &self.pending)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

impl PlasmaSink {
    /// A sink that writes one message into object `id`.
    pub fn new(client: &PlasmaClient, id: ObjectId) -> Self {
        Self::with_ids(client, std::iter::once(id))
    }

    /// A sink that writes message *k* into the *k*-th id of `ids`.
    pub fn with_ids(
        client: &PlasmaClient,
        ids: impl IntoIterator<Item = ObjectId, IntoIter: Send + 'static>,
    ) -> Self {
        Self {
            client: client.clone(),
            ids: Box::new(ids.into_iter()),
            metadata: Vec::new(),
            pending: None,
            sealed: Vec::new(),
        }
    }

    /// Plasma metadata stored with every object (default: none).
    pub fn with_metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// The ids of the objects sealed so far, in order.
    pub fn object_ids(&self) -> &[ObjectId] {
        &self.sealed
    }
}

impl TensorSink for PlasmaSink {
    fn reserve(&mut self, len: usize) -> Result<&mut [u8]> {
        if self.pending.is_some() {
            return Err(Error::SinkState("reserve called twice without commit"));
        }
        let id = self.ids.next().ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the PlasmaSink has no object id left (one object per message)",
        })?;
        let created = self.client.create(id, len, &self.metadata)?;
        Ok(self.pending.insert(created).data_mut())
    }

    fn commit(&mut self) -> Result<()> {
        let created = self
            .pending
            .take()
            .ok_or(Error::SinkState("commit without reserve"))?;
        let id = created.id();
        created.seal()?;
        self.sealed.push(id);
        Ok(())
    }

    /// Creates the object, copies the parts into it while computing the seal digest on each
    /// piece (on several threads for large messages), and seals it: the message is read once.
    fn write_parts(&mut self, len: usize, parts: &[&[u8]]) -> Result<()> {
        if self.pending.is_some() {
            return Err(Error::SinkState(
                "write_parts called between reserve and commit",
            ));
        }
        // Refuse bad parts before an object id is used up.
        tensor_ipc::check_parts_len(len, parts)?;
        let id = self.ids.next().ok_or(Error::SinkFull {
            requested: len as u64,
            reason: "the PlasmaSink has no object id left (one object per message)",
        })?;
        let created = self.client.create(id, len, &self.metadata)?;
        created.fill_and_seal(parts)?;
        self.sealed.push(id);
        Ok(())
    }
}

/// A [`TensorSource`] over sealed Plasma objects, read in order as one
/// stream (each object holds whole messages). Reads are zero-copy: a tensor's
/// data is a [`Buffer`] over the shared memory whose owner keeps the object
/// referenced in the store until the last clone is dropped.
///
/// Shared memory can be rewritten by any peer that breaks the protocol, so what the reader
/// validates (each message's prefix and flatbuffer metadata, returned by `peek`) is copied
/// into memory of this process first; only bodies are read in place.
#[derive(Debug, Default)]
pub struct PlasmaSource {
    objects: VecDeque<Buffer>,
    current: Option<Buffer>,
    pos: usize,
    /// The private copy `peek` returns.
    peeked: Vec<u8>,
}

impl PlasmaSource {
    /// Gets object `id`, waiting up to `timeout` (`None`: forever) for it
    /// to be sealed; a missing object is [`ClientError::ObjectNotFound`].
    pub fn get(client: &PlasmaClient, id: ObjectId, timeout: Option<Duration>) -> Result<Self> {
        Self::get_many(client, &[id], timeout)
    }

    /// Gets several objects (one request) to read as one stream.
    pub fn get_many(
        client: &PlasmaClient,
        ids: &[ObjectId],
        timeout: Option<Duration>,
    ) -> Result<Self> {
        let got = client.get(ids, timeout)?;
        let mut buffers = Vec::with_capacity(got.len());
        for (entry, &id) in got.into_iter().zip(ids) {
            buffers.push(entry.ok_or(ClientError::ObjectNotFound(id))?.data);
        }
        Ok(Self::from_buffers(buffers))
    }

    /// A source over objects already fetched.
    pub fn from_objects(objects: impl IntoIterator<Item = ObjectBuffers>) -> Self {
        Self::from_buffers(objects.into_iter().map(|o| o.data))
    }

    /// A source over buffers (each holding whole messages).
    pub fn from_buffers(buffers: impl IntoIterator<Item = Buffer>) -> Self {
        Self {
            objects: buffers.into_iter().collect(),
            current: None,
            pos: 0,
            peeked: Vec::new(),
        }
    }

    /// The unread bytes of the current object, moving on to the next object
    /// when the current one is used up.
    fn rest(&mut self) -> &[u8] {
        loop {
            let exhausted = self.current.as_ref().is_none_or(|b| self.pos >= b.len());
            if !exhausted {
                break;
            }
            match self.objects.pop_front() {
                Some(next) => {
                    self.current = Some(next);
                    self.pos = 0;
                }
                None => {
                    self.current = None;
                    self.pos = 0;
                    return &[];
                }
            }
        }
        match &self.current {
            Some(b) => &b.as_slice()[self.pos..],
            None => &[],
        }
    }
}

impl TensorSource<'static> for PlasmaSource {
    /// Copies up to `len` upcoming bytes out of the shared memory and returns the copy.
    fn peek(&mut self, len: usize) -> Result<&[u8]> {
        let mut peeked = std::mem::take(&mut self.peeked);
        peeked.clear();
        let rest = self.rest();
        peeked.extend_from_slice(&rest[..len.min(rest.len())]);
        self.peeked = peeked;
        Ok(&self.peeked)
    }

    fn take(&mut self, len: usize) -> Result<TensorData<'static>> {
        let available = self.rest().len();
        if len > available {
            return Err(Error::Truncated {
                part: "input",
                expected: len as u64,
                available: available as u64,
            });
        }
        if len == 0 {
            return Ok(TensorData::Shared(Buffer::from_vec(Vec::<u8>::new())));
        }
        let buffer = match &self.current {
            Some(b) => b.slice_with_length(self.pos, len),
            None => return Err(Error::SinkState("no current object")),
        };
        self.pos += len;
        Ok(TensorData::Shared(buffer))
    }
}
