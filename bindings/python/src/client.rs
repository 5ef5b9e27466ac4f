//! The native Plasma client behind `tensor_ipc.plasma.PlasmaClient`.
//!
//! Every call that talks to the store runs without the GIL. Waits (a `get` of objects not
//! sealed yet, the next notification) are cut into slices of [`WAIT_SLICE`], between which
//! pending signals are handled, so Ctrl-C interrupts them; the connection stays in step because
//! each slice is a complete request with its own timeout. A store that dies is an exception
//! (its socket closes), one that hangs is a timeout exception after the client's request
//! timeout (30 s).
//!
//! Objects come back as [`PlasmaObject`]s holding the Rust client's zero-copy buffers; numpy
//! arrays and pyarrow buffers made from them keep them (and so the store reference) alive.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tensor_ipc::{Header, ReadOptions, read_message, tensor_size, write_tensor};
use tensor_ipc_plasma_client::{
    ClientError, ClientOptions, CreatedObject, ObjectBuffers, ObjectId, PlasmaClient, PlasmaSink,
    PlasmaSource, Subscription,
};

use crate::errors::{ClientResultExt, CodecResult, client_error, plasma_exception};
use crate::numpy_view::{ArrayMemory, bytes_over};
use crate::object_id::{ObjectID, random_id};
use crate::sparse::SparseTensor;
use crate::tensor::{Tensor, array_tensor, contiguous_array};

/// The metadata of objects that `put` stores as a pickle (protocol 5, buffers out of band);
/// objects holding a tensor message have none.
pub(crate) const PICKLE_METADATA: &[u8] = b"tensor_ipc.pickle5";

/// The longest a blocking call waits before it checks for signals (Ctrl-C).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// Objects up to this size are sent inline (one `CreateAndSeal` request, one round trip)
/// rather than created, written in shared memory and sealed (two).
const INLINE_LIMIT: usize = 64 << 10;

/// Connection attempts when `connect` is given `num_retries < 0` (Arrow 11's default).
const DEFAULT_CONNECT_ATTEMPTS: i64 = 80;

/// The pause between connection attempts (Arrow 11's).
const CONNECT_RETRY_DELAY: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ids of a sequence of `ObjectID`s.
fn parse_ids(ids: &Bound<'_, PyAny>) -> PyResult<Vec<ObjectId>> {
    ids.try_iter()?
        .map(|item| {
            let item = item?;
            item.cast::<ObjectID>()
                .map(|id| id.get().0)
                .map_err(|_| PyTypeError::new_err(format!("expected an ObjectID, got {item:?}")))
        })
        .collect()
}

/// An object created by this client and not sealed yet, shared by the client (until `seal` or
/// `abort`) and the writable view `create` returned (until it is collected).
struct CreatedSlot {
    /// The object, until sealed or aborted.
    object: Mutex<Option<CreatedObject>>,
    /// After the seal: the sealed object's buffers, which keep the store reference (and the
    /// mapping) for as long as the view lives, as `pyarrow.plasma`'s buffers did.
    sealed: Mutex<Option<ObjectBuffers>>,
}

/// The owner (numpy `base`) of the writable view `create` returns.
#[pyclass(module = "tensor_ipc._native", frozen)]
pub struct CreatedBuffer {
    _slot: Arc<CreatedSlot>,
}

/// A sealed object this client holds: its data and metadata in shared memory. The store
/// reference is released when this object and every view made from it are gone.
#[pyclass(module = "tensor_ipc._native", frozen)]
pub struct PlasmaObject {
    buffers: ObjectBuffers,
}

#[pymethods]
impl PlasmaObject {
    /// The object's id.
    #[getter]
    fn object_id(&self) -> ObjectID {
        ObjectID(self.buffers.id)
    }

    /// The address of the data in this process.
    #[getter]
    fn data_address(&self) -> usize {
        self.buffers.data.as_ptr() as usize
    }

    /// The number of data bytes.
    #[getter]
    fn data_size(&self) -> usize {
        self.buffers.data.len()
    }

    /// The address of the metadata in this process.
    #[getter]
    fn metadata_address(&self) -> usize {
        self.buffers.metadata.as_ptr() as usize
    }

    /// The number of metadata bytes.
    #[getter]
    fn metadata_size(&self) -> usize {
        self.buffers.metadata.len()
    }

    /// The metadata, copied into `bytes`.
    fn metadata<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.buffers.metadata.as_slice())
    }

    /// A read-only `uint8` numpy array over the data (zero-copy; keeps this object alive).
    fn data_view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let data = &slf.get().buffers.data;
        // SAFETY: the bytes belong to the buffer held by `slf`, the array's base.
        unsafe {
            bytes_over(
                slf.py(),
                slf.clone().into_any(),
                data.as_ptr(),
                data.len(),
                false,
            )
        }
    }

    /// A read-only `uint8` numpy array over the metadata (zero-copy; keeps this object alive).
    fn metadata_view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let metadata = &slf.get().buffers.metadata;
        // SAFETY: as in `data_view`.
        unsafe {
            bytes_over(
                slf.py(),
                slf.clone().into_any(),
                metadata.as_ptr(),
                metadata.len(),
                false,
            )
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "PlasmaObject({}, data_size={}, metadata_size={})",
            self.buffers.id,
            self.buffers.data.len(),
            self.buffers.metadata.len()
        )
    }
}

/// A connection to a Plasma store (ours or Arrow 11's `plasma-store-server`).
#[pyclass(module = "tensor_ipc._native")]
pub struct Client {
    /// `None` once disconnected.
    client: Mutex<Option<PlasmaClient>>,
    socket: String,
    capacity: i64,
    created: Mutex<HashMap<ObjectId, Arc<CreatedSlot>>>,
    subscription: Mutex<Option<Subscription>>,
}

impl Client {
    fn client(&self) -> PyResult<PlasmaClient> {
        lock(&self.client).clone().ok_or_else(|| {
            client_error(&ClientError::Disconnected("disconnect() was called".into()))
        })
    }

    /// Gets `ids`, waiting up to `timeout_ms` (negative: forever) in slices, handling signals
    /// between slices. One entry per id, `None` for objects still missing at the end.
    fn fetch(
        &self,
        py: Python<'_>,
        ids: &[ObjectId],
        timeout_ms: i64,
    ) -> PyResult<Vec<Option<ObjectBuffers>>> {
        let client = self.client()?;
        let deadline = u64::try_from(timeout_ms)
            .ok()
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        if deadline.is_none() {
            let created = lock(&self.created);
            if let Some(id) = ids.iter().find(|id| created.contains_key(id)) {
                return Err(client_error(&ClientError::InvalidCall(format!(
                    "object {id} was created by this client and is not sealed: a get without a \
                     timeout would wait for ever"
                ))));
            }
        }
        let mut found: Vec<Option<ObjectBuffers>> = vec![None; ids.len()];
        loop {
            let missing: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
            let ask: Vec<ObjectId> = missing.iter().map(|&i| ids[i]).collect();
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
            };
            let got = py.detach(|| client.get(&ask, Some(slice))).py()?;
            for (&i, entry) in missing.iter().zip(got) {
                found[i] = entry;
            }
            let done =
                found.iter().all(Option::is_some) || deadline.is_some_and(|d| Instant::now() >= d);
            if done {
                return Ok(found);
            }
            py.check_signals()?;
        }
    }

    /// Stores `parts`, one after another, as the data of a new object.
    fn store_parts(
        py: Python<'_>,
        client: &PlasmaClient,
        id: ObjectId,
        parts: &[&[u8]],
        metadata: &[u8],
    ) -> PyResult<()> {
        let total = parts
            .iter()
            .try_fold(0usize, |sum, p| sum.checked_add(p.len()))
            .ok_or_else(|| PyValueError::new_err("the object size overflows"))?;
        py.detach(|| {
            if total <= INLINE_LIMIT {
                client.create_and_seal(id, &parts.concat(), metadata)
            } else {
                client
                    .create(id, total, metadata)?
                    .fill_and_seal(parts)
                    .map(drop)
            }
        })
        .py()
    }
}

/// A sealed object as the value `get` returns: a read-only numpy array (a tensor message), a
/// `SparseTensor`, or the object itself for the Python side to unpickle.
fn decode_value(py: Python<'_>, object: ObjectBuffers) -> PyResult<Bound<'_, PyAny>> {
    if object.metadata.as_slice() == PICKLE_METADATA {
        return Ok(Bound::new(py, PlasmaObject { buffers: object })?.into_any());
    }
    let id = object.id;
    let in_object = |e: tensor_ipc::Error| {
        crate::errors::TensorIpcError::new_err(format!(
            "object {id} holds no tensor message ({e}); read it with get_buffers"
        ))
    };
    let mut source = PlasmaSource::from_objects([object]);
    let message = match read_message(&mut source, &ReadOptions::default()) {
        Ok(Some(m)) => m,
        Ok(None) => return Err(in_object(tensor_ipc::Error::EndOfStream)),
        Err(e) => return Err(in_object(e)),
    };
    match &message.header {
        Header::Tensor(_) => {
            let tensor = message.into_tensor(&ReadOptions::default()).py()?;
            Tensor::numpy_of(py, tensor)
        }
        Header::SparseTensor(_) => {
            let sparse = message.into_sparse_tensor(&ReadOptions::default()).py()?;
            Ok(Bound::new(py, SparseTensor::from(sparse))?.into_any())
        }
        other => Err(in_object(tensor_ipc::Error::UnexpectedHeader {
            found: other.type_name(),
            expected: "Tensor",
        })),
    }
}

#[pymethods]
impl Client {
    /// Connects to the store at `socket`, trying `num_retries` times (negative: 80) 100 ms
    /// apart.
    #[staticmethod]
    fn connect(py: Python<'_>, socket: PathBuf, num_retries: i64) -> PyResult<Client> {
        let attempts = if num_retries < 0 {
            DEFAULT_CONNECT_ATTEMPTS
        } else {
            num_retries.max(1)
        };
        let options = ClientOptions {
            connect_retries: 1,
            ..ClientOptions::default()
        };
        let mut attempt = 1;
        let client = loop {
            match py.detach(|| PlasmaClient::connect_with(&socket, options.clone())) {
                Ok(client) => break client,
                Err(ClientError::Connect { .. }) if attempt < attempts => {
                    attempt += 1;
                    py.check_signals()?;
                    py.detach(|| std::thread::sleep(CONNECT_RETRY_DELAY));
                }
                Err(e) => return Err(client_error(&e)),
            }
        };
        Ok(Client {
            capacity: client.capacity(),
            client: Mutex::new(Some(client)),
            socket: socket.display().to_string(),
            created: Mutex::new(HashMap::new()),
            subscription: Mutex::new(None),
        })
    }

    /// The socket path.
    #[getter]
    fn socket_name(&self) -> &str {
        &self.socket
    }

    /// The store's capacity in bytes.
    fn store_capacity(&self) -> i64 {
        self.capacity
    }

    /// Creates an object; returns a writable `uint8` numpy array over its data.
    fn create<'py>(
        &self,
        py: Python<'py>,
        object_id: ObjectID,
        data_size: i64,
        metadata: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        let size = usize::try_from(data_size)
            .map_err(|_| PyValueError::new_err(format!("negative data_size {data_size}")))?;
        let client = self.client()?;
        let id = object_id.0;
        let mut created = py.detach(|| client.create(id, size, metadata)).py()?;
        let data = created.data_mut().as_mut_ptr();
        let slot = Arc::new(CreatedSlot {
            object: Mutex::new(Some(created)),
            sealed: Mutex::new(None),
        });
        lock(&self.created).insert(id, slot.clone());
        let base = Bound::new(py, CreatedBuffer { _slot: slot })?.into_any();
        // SAFETY: `size` writable bytes of the unsealed object, whose regions (and mapping)
        // the slot keeps until sealed, and whose sealed buffers it keeps afterwards; the slot
        // lives as long as `base`.
        unsafe { bytes_over(py, base, data, size, true) }
    }

    /// Seals an object this client created; the view `create` returned stays valid (and the
    /// object referenced) until it is collected.
    fn seal(&self, py: Python<'_>, object_id: ObjectID) -> PyResult<()> {
        let id = object_id.0;
        let slot = lock(&self.created)
            .remove(&id)
            .ok_or_else(|| client_error(&ClientError::ObjectNotFound(id)))?;
        let object = lock(&slot.object).take();
        let Some(object) = object else {
            return Err(client_error(&ClientError::ObjectNotFound(id)));
        };
        let kept = py.detach(|| object.seal_and_keep()).py()?;
        *lock(&slot.sealed) = Some(kept);
        Ok(())
    }

    /// Deletes an object this client created and has not sealed. Refused while the view
    /// `create` returned is alive (as `pyarrow.plasma` refused it).
    fn abort(&self, py: Python<'_>, object_id: ObjectID) -> PyResult<()> {
        let id = object_id.0;
        let slot = {
            let mut created = lock(&self.created);
            let Some(slot) = created.get(&id) else {
                return Err(client_error(&ClientError::ObjectNotFound(id)));
            };
            if Arc::strong_count(slot) > 1 {
                return Err(client_error(&ClientError::InvalidCall(format!(
                    "cannot abort object {id}: the buffer create() returned is still alive \
                     (delete every reference to it first)"
                ))));
            }
            created.remove(&id)
        };
        let object = slot.and_then(|s| lock(&s.object).take());
        match object {
            Some(object) => py.detach(|| object.abort()).py(),
            None => Err(client_error(&ClientError::ObjectNotFound(id))),
        }
    }

    /// Creates and seals an object from bytes (a contiguous `uint8` array) and metadata.
    fn create_and_seal(
        &self,
        py: Python<'_>,
        object_id: ObjectID,
        data: &Bound<'_, PyAny>,
        metadata: &[u8],
    ) -> PyResult<()> {
        let client = self.client()?;
        let memory = ArrayMemory::of(data)?;
        memory.byte_len()?;
        // SAFETY: `data` is alive for the whole call.
        let bytes = unsafe { memory.bytes() };
        Self::store_parts(py, &client, object_id.0, &[bytes], metadata)
    }

    /// Stores the concatenation of `parts` (contiguous `uint8` arrays) as a new object.
    #[pyo3(signature = (object_id, parts, metadata))]
    fn put_parts(
        &self,
        py: Python<'_>,
        object_id: Option<ObjectID>,
        parts: Vec<Bound<'_, PyAny>>,
        metadata: &[u8],
    ) -> PyResult<ObjectID> {
        let client = self.client()?;
        let id = match object_id {
            Some(id) => id.0,
            None => random_id()?,
        };
        let memories = parts
            .iter()
            .map(|p| {
                let m = ArrayMemory::of(p)?;
                m.byte_len()?;
                Ok(m)
            })
            .collect::<PyResult<Vec<_>>>()?;
        // SAFETY: every part is alive (held in `parts`) for the whole call.
        let slices: Vec<&[u8]> = memories.iter().map(|m| unsafe { m.bytes() }).collect();
        Self::store_parts(py, &client, id, &slices, metadata)?;
        Ok(ObjectID(id))
    }

    /// Stores a numpy array as an Arrow tensor message; `None` when its dtype is not one of
    /// the 11 tensor types (the caller pickles it instead).
    #[pyo3(signature = (object_id, array, dim_names=None))]
    fn put_array(
        &self,
        py: Python<'_>,
        object_id: Option<ObjectID>,
        array: &Bound<'_, PyAny>,
        dim_names: Option<Vec<String>>,
    ) -> PyResult<Option<ObjectID>> {
        let array = contiguous_array(array)?;
        let memory = ArrayMemory::of(&array)?;
        if memory.dtype.is_none() {
            return Ok(None);
        }
        let client = self.client()?;
        let id = match object_id {
            Some(id) => id.0,
            None => random_id()?,
        };
        // SAFETY: `array` is alive for the whole call.
        let tensor = unsafe { array_tensor(&memory, dim_names.unwrap_or_default())? };
        py.detach(|| -> tensor_ipc::Result<()> {
            let size = tensor_size(&tensor)?;
            if size <= INLINE_LIMIT {
                let mut message = Vec::with_capacity(size);
                write_tensor(&tensor, &mut message)?;
                client.create_and_seal(id, &message, b"")?;
            } else {
                write_tensor(&tensor, &mut PlasmaSink::new(&client, id))?;
            }
            Ok(())
        })
        .py()?;
        Ok(Some(ObjectID(id)))
    }

    /// The sealed objects among `object_ids` (a sequence of ObjectIDs), waiting up to
    /// `timeout_ms` (negative: forever); `None` for those still missing.
    fn get_objects(
        &self,
        py: Python<'_>,
        object_ids: &Bound<'_, PyAny>,
        timeout_ms: i64,
    ) -> PyResult<Vec<Option<PlasmaObject>>> {
        let ids = parse_ids(object_ids)?;
        Ok(self
            .fetch(py, &ids, timeout_ms)?
            .into_iter()
            .map(|o| o.map(|buffers| PlasmaObject { buffers }))
            .collect())
    }

    /// The values of `object_ids`: a read-only numpy array for a tensor message, a
    /// `SparseTensor`, a `PlasmaObject` to unpickle, or `None` when missing.
    fn get_values<'py>(
        &self,
        py: Python<'py>,
        object_ids: &Bound<'py, PyAny>,
        timeout_ms: i64,
    ) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
        let ids = parse_ids(object_ids)?;
        self.fetch(py, &ids, timeout_ms)?
            .into_iter()
            .map(|o| o.map(|object| decode_value(py, object)).transpose())
            .collect()
    }

    /// Whether the store holds the object sealed.
    fn contains(&self, py: Python<'_>, object_id: ObjectID) -> PyResult<bool> {
        let client = self.client()?;
        py.detach(|| client.contains(object_id.0)).py()
    }

    /// The object's digest (8 bytes), as Arrow 11 computes it.
    fn hash<'py>(&self, py: Python<'py>, object_id: ObjectID) -> PyResult<Bound<'py, PyBytes>> {
        let client = self.client()?;
        let digest = py.detach(|| client.hash(object_id.0)).py()?;
        Ok(PyBytes::new(py, &digest))
    }

    /// Deletes objects (those in use are deleted once released; unknown ones are ignored).
    fn delete(&self, py: Python<'_>, object_ids: &Bound<'_, PyAny>) -> PyResult<()> {
        let ids = parse_ids(object_ids)?;
        let client = self.client()?;
        py.detach(|| client.delete(&ids)).py()?;
        Ok(())
    }

    /// Every object: `(id, data_size, metadata_size, ref_count, create_time,
    /// construct_duration, sealed)`.
    #[allow(clippy::type_complexity)]
    fn list(&self, py: Python<'_>) -> PyResult<Vec<(ObjectID, i64, i64, i32, i64, i64, bool)>> {
        let client = self.client()?;
        let objects = py.detach(|| client.list()).py()?;
        Ok(objects
            .into_iter()
            .map(|o| {
                (
                    ObjectID(o.object_id),
                    o.data_size,
                    o.metadata_size,
                    o.ref_count,
                    o.create_time,
                    o.construct_duration,
                    !o.digest.is_empty(),
                )
            })
            .collect())
    }

    /// Evicts unused objects until at least `num_bytes` are freed; returns the bytes freed.
    fn evict(&self, py: Python<'_>, num_bytes: i64) -> PyResult<u64> {
        let client = self.client()?;
        let n = u64::try_from(num_bytes)
            .map_err(|_| PyValueError::new_err(format!("negative num_bytes {num_bytes}")))?;
        py.detach(|| client.evict(n)).py()
    }

    /// The store's debug text.
    fn debug_string(&self, py: Python<'_>) -> PyResult<String> {
        let client = self.client()?;
        py.detach(|| client.debug_string()).py()
    }

    /// Names this client and asks for a private memory quota.
    fn set_client_options(
        &self,
        py: Python<'_>,
        client_name: &str,
        limit_output_memory: i64,
    ) -> PyResult<()> {
        let client = self.client()?;
        py.detach(|| client.set_options(client_name, limit_output_memory))
            .py()
    }

    /// Subscribes to seal and deletion notifications.
    fn subscribe(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.client()?;
        let mut subscription = lock(&self.subscription);
        if subscription.is_some() {
            return Err(client_error(&ClientError::InvalidCall(
                "this client is already subscribed; connect another client".into(),
            )));
        }
        *subscription = Some(py.detach(|| client.subscribe()).py()?);
        Ok(())
    }

    /// The notification socket's file descriptor (owned by this client).
    fn notification_fd(&self) -> PyResult<i32> {
        match lock(&self.subscription).as_ref() {
            Some(s) => Ok(s.as_fd().as_raw_fd()),
            None => Err(not_subscribed()),
        }
    }

    /// The next notification: `(id, data_size, metadata_size)`, sizes -1 for a deletion.
    fn next_notification(&self, py: Python<'_>) -> PyResult<(ObjectID, i64, i64)> {
        loop {
            let got = py.detach(|| match lock(&self.subscription).as_mut() {
                Some(s) => s.recv_timeout(Some(WAIT_SLICE)).map_err(Some),
                None => Err(None),
            });
            match got {
                Ok(Some(n)) => return Ok((ObjectID(n.object_id), n.data_size, n.metadata_size)),
                Ok(None) => py.check_signals()?,
                Err(Some(e)) => return Err(client_error(&e)),
                Err(None) => return Err(not_subscribed()),
            }
        }
    }

    /// Closes this client: later calls fail. The connection itself closes once every object
    /// obtained through it is gone, so arrays and buffers still held stay valid.
    fn disconnect(&self) {
        lock(&self.created).clear();
        lock(&self.subscription).take();
        lock(&self.client).take();
    }

    /// The number of objects this client holds references to (for tests and diagnostics).
    fn held_objects(&self) -> PyResult<usize> {
        Ok(self.client()?.held_objects())
    }
}

fn not_subscribed() -> PyErr {
    Python::attach(|py| {
        plasma_exception(
            py,
            "PlasmaError",
            "this client is not subscribed: call subscribe() first".into(),
        )
    })
}

/// Decodes one notification message (the bytes after its 8-byte length):
/// `([ids], [data_sizes], [metadata_sizes])`, sizes -1 for deletions.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn decode_notifications(buf: &[u8]) -> PyResult<(Vec<ObjectID>, Vec<i64>, Vec<i64>)> {
    let infos = tensor_ipc_plasma_client::protocol::notification::decode(buf)
        .map_err(|e| client_error(&ClientError::Protocol(e)))?;
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for info in infos {
        out.0.push(ObjectID(info.object_id));
        let (d, m) = if info.is_deletion {
            (-1, -1)
        } else {
            (info.data_size, info.metadata_size)
        };
        out.1.push(d);
        out.2.push(m);
    }
    Ok(out)
}
