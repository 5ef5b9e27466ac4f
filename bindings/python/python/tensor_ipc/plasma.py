"""tensor_ipc.plasma: what ``pyarrow.plasma`` was, on current Python, numpy and pyarrow.

Code written for pyarrow 11's ``pyarrow.plasma`` runs with only its import
changed::

    import tensor_ipc.plasma as plasma      # was: import pyarrow.plasma as plasma

    client = plasma.connect("/tmp/plasma")
    [buf] = client.get_buffers([plasma.ObjectID(20 * b"1")])
    arr = pa.ipc.read_tensor(pa.BufferReader(buf)).to_numpy()

It talks to this project's ``plasma-store`` and to Arrow 11's
``plasma-store-server`` alike.

* Buffers: with pyarrow installed, ``create`` returns a mutable
  ``pyarrow.Buffer`` and ``get_buffers`` read-only ones, over the shared memory
  (no copy); without pyarrow, ``memoryview``\\ s. An object stays referenced in
  the store while any view of it lives.
* ``put`` of a numpy array (int8 ... uint64, float16/32/64, any layout) writes
  an Arrow tensor message (readable by C++ ``ReadTensor`` and
  ``pa.ipc.read_tensor``); other values are pickled with protocol 5, their
  buffers out of band. ``get`` returns read-only numpy arrays over the shared
  memory. (``pa.serialize``, which pyarrow.plasma used, was removed from
  pyarrow.) ``get`` unpickles: use it only on stores whose writers you trust.
* Blocking calls release the GIL; Ctrl-C interrupts a blocking ``get``; a
  client may be used from many threads; a dead store raises
  :class:`PlasmaConnectionError` (never a hang without a timeout, nor SIGPIPE).
"""

import contextlib
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence

import numpy as np

from tensor_ipc import _native
from tensor_ipc._errors import (  # noqa: F401
    PlasmaConnectionError,
    PlasmaError,
    PlasmaIOError,
    PlasmaObjectExists,
    PlasmaObjectInUse,
    PlasmaObjectNotFound,
    PlasmaObjectNotSealed,
    PlasmaProtocolError,
    PlasmaStoreFull,
    PlasmaTimeoutError,
)
from tensor_ipc._native import ObjectID

__all__ = [
    "ObjectID",
    "ObjectNotAvailable",
    "PlasmaBuffer",
    "PlasmaClient",
    "PlasmaConnectionError",
    "PlasmaError",
    "PlasmaIOError",
    "PlasmaObjectExists",
    "PlasmaObjectInUse",
    "PlasmaObjectNotFound",
    "PlasmaObjectNotSealed",
    "PlasmaProtocolError",
    "PlasmaStoreFull",
    "PlasmaTimeoutError",
    "connect",
    "start_plasma_store",
]

_DEPRECATION = ("Plasma is deprecated in Apache Arrow since 10.0.0 and was "
                "removed in 12.0.0; tensor_ipc.plasma keeps its API for "
                "existing code")

_pa = None
if not os.environ.get("TENSOR_IPC_NO_PYARROW"):
    try:
        import pyarrow as _pa
    except ImportError:  # pragma: no cover - depends on the environment
        _pa = None


class ObjectNotAvailable:
    """Placeholder for an object that was not available within the given
    timeout: ``get`` returns this class itself for each such object."""


if _pa is not None:
    #: The type of the buffers ``create`` and ``get_buffers`` return.
    PlasmaBuffer = _pa.Buffer
    _foreign_buffer = _pa.foreign_buffer
    _py_buffer = _pa.py_buffer

    def _data_buffer(obj):
        return _foreign_buffer(obj.data_address, obj.data_size, obj)

    def _metadata_buffer(obj):
        return _foreign_buffer(obj.metadata_address, obj.metadata_size, obj)

    def _writable_buffer(array):
        return _py_buffer(array)
else:
    PlasmaBuffer = memoryview

    def _data_buffer(obj):
        return memoryview(obj.data_view())

    def _metadata_buffer(obj):
        return memoryview(obj.metadata_view())

    def _writable_buffer(array):
        return memoryview(array)


def _bytes(value):
    return value if type(value) is bytes else bytes(value)


def _byte_array(obj):
    return np.frombuffer(obj, dtype=np.uint8)


# The data of a pickled object: u64 pickle length, u64 buffer count, then per
# buffer u64 offset and u64 length, then the pickle, then each out-of-band
# buffer at a 64-byte aligned offset. Little-endian.
_COUNTS = struct.Struct("<QQ")
_ENTRY = struct.Struct("<QQ")
_ALIGNMENT = 64


def _pickle_parts(value):
    """The parts of the object data of a pickled ``value``."""
    buffers = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raws = []
    for b in buffers:
        try:
            raws.append(b.raw())
        except BufferError:  # not contiguous: copied once
            raws.append(memoryview(memoryview(b).tobytes()))
    offset = _COUNTS.size + _ENTRY.size * len(raws) + len(data)
    entries = []
    tail = []
    for raw in raws:
        aligned = -(-offset // _ALIGNMENT) * _ALIGNMENT
        if aligned > offset:
            tail.append(bytes(aligned - offset))
        tail.append(raw)
        entries.append(_ENTRY.pack(aligned, raw.nbytes))
        offset = aligned + raw.nbytes
    head = _COUNTS.pack(len(data), len(raws)) + b"".join(entries)
    return [head, data] + tail


def _unpickle(obj):
    """The value of an object ``put`` pickled, its buffers mapped, not copied."""
    view = memoryview(obj.data_view())
    size = len(view)

    def bad(why):
        return PlasmaProtocolError(
            "object %s: not a valid tensor_ipc pickle (%s)" % (obj.object_id, why))

    if size < _COUNTS.size:
        raise bad("too short")
    pickle_len, count = _COUNTS.unpack_from(view, 0)
    if count > (size - _COUNTS.size) // _ENTRY.size:
        raise bad("buffer count %d" % count)
    start = _COUNTS.size + _ENTRY.size * count
    if pickle_len > size - start:
        raise bad("pickle length %d" % pickle_len)
    buffers = []
    for i in range(count):
        offset, length = _ENTRY.unpack_from(view, _COUNTS.size + _ENTRY.size * i)
        if offset > size or length > size - offset:
            raise bad("buffer %d at %d+%d" % (i, offset, length))
        buffers.append(pickle.PickleBuffer(view[offset:offset + length]))
    return pickle.loads(view[start:start + pickle_len], buffers=buffers)


def _value(item):
    if item is None:
        return ObjectNotAvailable
    if isinstance(item, _native.PlasmaObject):
        return _unpickle(item)
    return item


class PlasmaClient:
    """A connection to a Plasma store; make one with :func:`connect`.

    Thread-safe: one client may be used from many threads (requests share its
    one socket, one at a time).
    """

    __slots__ = ("_client", "__weakref__")

    def __init__(self):
        raise TypeError("make a PlasmaClient with tensor_ipc.plasma.connect(socket)")

    @classmethod
    def _connect(cls, store_socket_name, num_retries):
        self = object.__new__(cls)
        self._client = _native.Client.connect(os.fspath(store_socket_name),
                                              int(num_retries))
        return self

    def __repr__(self):
        return "PlasmaClient(%r)" % self._client.socket_name

    @property
    def store_socket_name(self):
        """The socket path this client connected to."""
        return self._client.socket_name

    def create(self, object_id, data_size, metadata=b""):
        """Create a new buffer in the store for ``object_id``.

        The returned buffer is writable (a mutable ``pyarrow.Buffer``, or a
        ``memoryview`` without pyarrow) and maps the object's shared memory;
        ``seal()`` publishes it. It stays valid after the seal, and keeps the
        object referenced until it is collected.

        Raises :class:`PlasmaObjectExists` if the id exists,
        :class:`PlasmaStoreFull` if the object does not fit.
        """
        return _writable_buffer(
            self._client.create(object_id, data_size, _bytes(metadata)))

    def create_and_seal(self, object_id, data, metadata=b""):
        """Store ``data`` (bytes-like) and ``metadata`` as a new sealed object."""
        self._client.create_and_seal(object_id, _byte_array(data), _bytes(metadata))

    def seal(self, object_id):
        """Seal an object this client created: it becomes immutable and
        visible to every client."""
        self._client.seal(object_id)

    def abort(self, object_id):
        """Delete an object this client created and has not sealed (once the
        buffer ``create`` returned is gone)."""
        self._client.abort(object_id)

    def get_buffers(self, object_ids, timeout_ms=-1, with_meta=False):
        """The data buffers of ``object_ids``, waiting up to ``timeout_ms``
        (-1: forever, 0: not at all) for objects not sealed yet.

        Returns a list: a read-only buffer over the shared memory per object,
        ``None`` for objects still missing; with ``with_meta=True``, tuples
        ``(metadata bytes, buffer)`` (``(None, None)`` when missing).
        """
        objects = self._client.get_objects(object_ids, timeout_ms)
        if with_meta:
            return [(None, None) if o is None else (o.metadata(), _data_buffer(o))
                    for o in objects]
        return [None if o is None else _data_buffer(o) for o in objects]

    def get_metadata(self, object_ids, timeout_ms=-1):
        """The metadata buffers of ``object_ids`` (read-only, zero-copy;
        ``None`` for objects missing at the timeout)."""
        objects = self._client.get_objects(object_ids, timeout_ms)
        return [None if o is None else _metadata_buffer(o) for o in objects]

    def put_raw_buffer(self, value, object_id=None, metadata=b"",
                       memcopy_threads=6):
        """Store the bytes of ``value`` (any bytes-like object) as a new
        object; returns its ObjectID. (The copy runs on up to 8 threads for
        large objects whatever ``memcopy_threads`` says.)"""
        return self._client.put_parts(object_id, [_byte_array(value)],
                                      _bytes(metadata))

    def put(self, value, object_id=None, memcopy_threads=6,
            serialization_context=None):
        """Store a Python value; returns its ObjectID.

        A numpy array of a tensor dtype (int8 ... uint64, float16/32/64) is
        written as an Arrow tensor message (metadata empty); any other value
        is pickled (protocol 5, buffers such as numpy arrays out of band and
        64-byte aligned; metadata ``b"tensor_ipc.pickle5"``).
        """
        if serialization_context is not None:
            raise TypeError(
                "serialization_context is not supported: pa.serialize was "
                "removed from pyarrow; put pickles values with protocol 5 "
                "(customise with __reduce__ / copyreg)")
        if type(value) is np.ndarray:
            stored = self._client.put_array(object_id, value)
            if stored is not None:
                return stored
        parts = [_byte_array(p) for p in _pickle_parts(value)]
        return self._client.put_parts(object_id, parts, _native.PICKLE_METADATA)

    def get(self, object_ids, timeout_ms=-1, serialization_context=None):
        """The values of an ObjectID (or a list of them), waiting up to
        ``timeout_ms`` (-1: forever).

        Arrays come back as read-only numpy arrays over the shared memory
        (the object stays referenced while they live); missing objects as
        :class:`ObjectNotAvailable`.
        """
        if serialization_context is not None:
            raise TypeError("serialization_context is not supported (see put)")
        if type(object_ids) is ObjectID:  # the common case, without the ABC check
            return _value(self._client.get_values((object_ids,), timeout_ms)[0])
        if isinstance(object_ids, Sequence):
            return [_value(v) for v in self._client.get_values(object_ids, timeout_ms)]
        return _value(self._client.get_values([object_ids], timeout_ms)[0])

    def contains(self, object_id):
        """Whether the store holds the object, sealed."""
        return self._client.contains(object_id)

    def hash(self, object_id):
        """The object's 8-byte digest, as Arrow 11 computes it (XXH64)."""
        return self._client.hash(object_id)

    def delete(self, object_ids):
        """Delete objects (those in use are deleted once released)."""
        self._client.delete(object_ids)

    def evict(self, num_bytes):
        """Evict unused objects, least recently used first, until at least
        ``num_bytes`` are freed; returns the number of bytes freed."""
        return self._client.evict(num_bytes)

    def list(self):
        """Every object in the store: a dict from ObjectID to a dict with
        ``data_size``, ``metadata_size``, ``ref_count``, ``create_time`` (Unix
        seconds), ``construct_duration`` (seconds, -1 while unsealed) and
        ``state`` ("created" or "sealed")."""
        return {
            oid: {
                "data_size": data_size,
                "metadata_size": metadata_size,
                "ref_count": ref_count,
                "create_time": create_time,
                "construct_duration": construct_duration,
                "state": "sealed" if sealed else "created",
            }
            for (oid, data_size, metadata_size, ref_count, create_time,
                 construct_duration, sealed) in self._client.list()
        }

    def store_capacity(self):
        """The store's capacity in bytes."""
        return self._client.store_capacity()

    def subscribe(self):
        """Subscribe to notifications of sealed and deleted objects."""
        self._client.subscribe()

    def get_notification_socket(self):
        """The notification socket, as a ``socket.socket`` (over a duplicate
        of the client's descriptor). Each message is an 8-byte native-endian
        length, then that many bytes for :meth:`decode_notifications`."""
        fd = os.dup(self._client.notification_fd())
        return socket.socket(family=socket.AF_UNIX, type=socket.SOCK_STREAM,
                             fileno=fd)

    def decode_notifications(self, buf):
        """Decode one notification message (without its length):
        ``([ObjectID], [data_size], [metadata_size])``, sizes -1 for
        deletions."""
        return _native.decode_notifications(_bytes(buf))

    def get_next_notification(self):
        """Wait for the next notification: ``(ObjectID, data_size,
        metadata_size)``, sizes -1 for a deletion."""
        return self._client.next_notification()

    def debug_string(self):
        """The store's debug text."""
        return self._client.debug_string()

    def set_client_options(self, client_name, limit_output_memory):
        """Name this client and ask the store for a private memory quota."""
        self._client.set_client_options(client_name, limit_output_memory)

    def disconnect(self):
        """Stop using this client. Buffers and arrays obtained from it stay
        valid; the connection closes once they are all gone."""
        self._client.disconnect()


def connect(store_socket_name, num_retries=-1):
    """Connect to the Plasma store listening at ``store_socket_name``.

    Tries ``num_retries`` times, 100 ms apart (-1: 80 times, Arrow 11's
    default), then raises :class:`PlasmaConnectionError` (an ``OSError``).
    """
    client = PlasmaClient._connect(store_socket_name, num_retries)
    warnings.warn(_DEPRECATION, DeprecationWarning, stacklevel=2)
    return client


def _store_command():
    """The command that runs a store: ``$TENSOR_IPC_PLASMA_STORE`` if set,
    else this package's ``plasma-store``, in a new interpreter."""
    override = os.environ.get("TENSOR_IPC_PLASMA_STORE")
    if override:
        return [override]
    return [sys.executable, "-m", "tensor_ipc._cli", "plasma-store"]


@contextlib.contextmanager
def start_plasma_store(plasma_store_memory, use_valgrind=False,
                       use_profiler=False, plasma_directory=None,
                       use_hugepages=False, external_store=None):
    """Start a Plasma store process (this package's ``plasma-store``) on a
    socket in a new temporary directory.

    A context manager yielding ``(socket_name, process)``; on exit the store
    is killed (if still running) and the directory removed.

    Parameters
    ----------
    plasma_store_memory : int
        Capacity in bytes.
    use_valgrind, use_profiler : bool
        Run the store under valgrind (memcheck or callgrind).
    plasma_directory : str, optional
        Directory for the shared-memory segment (``-d``).
    use_hugepages : bool
        Back the segment with huge pages (``-h``).
    external_store : str, optional
        Where evicted objects go (``-e``): ``hashtable://NAME`` or
        ``file://DIR``.
    """
    warnings.warn(_DEPRECATION, DeprecationWarning)
    if use_valgrind and use_profiler:
        raise Exception("Cannot use valgrind and profiler at the same time.")
    tmpdir = tempfile.mkdtemp(prefix="test_plasma-")
    proc = None
    try:
        name = os.path.join(tmpdir, "plasma.sock")
        command = _store_command() + ["-s", name, "-m", str(plasma_store_memory)]
        if plasma_directory:
            command += ["-d", plasma_directory]
        if use_hugepages:
            command += ["-h"]
        if external_store is not None:
            command += ["-e", external_store]
        if use_valgrind:
            command = ["valgrind", "--track-origins=yes", "--leak-check=full",
                       "--error-exitcode=1"] + command
        elif use_profiler:
            command = ["valgrind", "--tool=callgrind"] + command
        proc = subprocess.Popen(command)
        deadline = time.monotonic() + (60 if use_valgrind or use_profiler else 10)
        while not os.path.exists(name):
            rc = proc.poll()
            if rc is not None:
                raise RuntimeError(
                    "plasma_store exited unexpectedly with code %d" % (rc,))
            if time.monotonic() > deadline:
                raise RuntimeError("plasma_store did not create its socket %s" % name)
            time.sleep(0.005)
        yield name, proc
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
