"""Type stubs of tensor_ipc.plasma: pyarrow.plasma on current Python."""

import socket
import subprocess
from typing import (Any, ContextManager, Dict, List, Optional, Sequence, Tuple, Type,
                    Union, overload)

class ObjectID:
    """A Plasma object id: exactly 20 bytes. Hashable, ordered, picklable."""

    def __init__(self, object_id: bytes) -> None: ...
    @staticmethod
    def from_random() -> "ObjectID":
        """A random id from the operating system's random source."""
    def binary(self) -> bytes:
        """The 20 bytes."""
    def __eq__(self, other: object) -> bool: ...
    def __lt__(self, other: "ObjectID") -> bool: ...
    def __le__(self, other: "ObjectID") -> bool: ...
    def __gt__(self, other: "ObjectID") -> bool: ...
    def __ge__(self, other: "ObjectID") -> bool: ...
    def __hash__(self) -> int: ...

class ObjectNotAvailable:
    """What ``get`` returns (the class itself) for an object missing at the timeout."""

#: ``pyarrow.Buffer`` when pyarrow is installed, else ``memoryview``.
PlasmaBuffer: Type[Any]

class PlasmaError(Exception):
    """Base class of every error of the Plasma client (a pyarrow ArrowException
    when pyarrow is installed)."""
class PlasmaObjectExists(PlasmaError):
    """The id already exists in the store."""
class PlasmaObjectNotFound(PlasmaError):
    """The object does not exist (or is not sealed)."""
class PlasmaStoreFull(PlasmaError):
    """The object does not fit in the store."""
class PlasmaObjectNotSealed(PlasmaError):
    """The object is not sealed."""
class PlasmaObjectInUse(PlasmaError):
    """The object is in use."""
class PlasmaConnectionError(PlasmaError, ConnectionError):
    """The store is unreachable, closed the connection, or died."""
class PlasmaTimeoutError(PlasmaError, TimeoutError):
    """The store did not answer in time."""
class PlasmaProtocolError(PlasmaError):
    """The store's reply made no sense."""
class PlasmaIOError(PlasmaError, OSError):
    """A local system call failed."""

_Bytes = Union[bytes, bytearray, memoryview]

class PlasmaClient:
    """A connection to a Plasma store (thread-safe); make one with :func:`connect`."""

    @property
    def store_socket_name(self) -> str:
        """The socket path."""
    def create(self, object_id: ObjectID, data_size: int, metadata: _Bytes = ...) -> Any:
        """Create an object; returns a writable buffer over its shared memory."""
    def create_and_seal(self, object_id: ObjectID, data: Any, metadata: _Bytes = ...) -> None:
        """Store bytes as a new sealed object."""
    def seal(self, object_id: ObjectID) -> None:
        """Seal an object this client created."""
    def abort(self, object_id: ObjectID) -> None:
        """Delete an unsealed object this client created."""
    def get_buffers(self, object_ids: Sequence[ObjectID], timeout_ms: int = ...,
                    with_meta: bool = ...) -> List[Any]:
        """Read-only buffers of the objects (``None`` when missing); with
        ``with_meta``, ``(metadata bytes, buffer)`` tuples."""
    def get_metadata(self, object_ids: Sequence[ObjectID], timeout_ms: int = ...) -> List[Any]:
        """The metadata buffers (``None`` when missing)."""
    def put_raw_buffer(self, value: Any, object_id: Optional[ObjectID] = ...,
                       metadata: _Bytes = ..., memcopy_threads: int = ...) -> ObjectID:
        """Store the bytes of a bytes-like object; returns its id."""
    def put(self, value: Any, object_id: Optional[ObjectID] = ..., memcopy_threads: int = ...,
            serialization_context: None = ...) -> ObjectID:
        """Store a value (numpy arrays as Arrow tensors, anything else pickled)."""
    @overload
    def get(self, object_ids: ObjectID, timeout_ms: int = ...,
            serialization_context: None = ...) -> Any: ...
    @overload
    def get(self, object_ids: Sequence[ObjectID], timeout_ms: int = ...,
            serialization_context: None = ...) -> List[Any]: ...
    def contains(self, object_id: ObjectID) -> bool:
        """Whether the store holds the object, sealed."""
    def hash(self, object_id: ObjectID) -> bytes:
        """The object's 8-byte digest."""
    def delete(self, object_ids: Sequence[ObjectID]) -> None:
        """Delete objects."""
    def evict(self, num_bytes: int) -> int:
        """Evict unused objects; returns the bytes freed."""
    def list(self) -> Dict[ObjectID, Dict[str, Any]]:
        """Every object and its sizes, reference count, times and state."""
    def store_capacity(self) -> int:
        """The store's capacity in bytes."""
    def subscribe(self) -> None:
        """Subscribe to seal and deletion notifications."""
    def get_notification_socket(self) -> socket.socket:
        """The notification socket."""
    def decode_notifications(self, buf: _Bytes) -> Tuple[List[ObjectID], List[int], List[int]]:
        """Decode one notification message."""
    def get_next_notification(self) -> Tuple[ObjectID, int, int]:
        """Wait for the next notification."""
    def debug_string(self) -> str:
        """The store's debug text."""
    def set_client_options(self, client_name: str, limit_output_memory: int) -> None:
        """Name this client and ask for a memory quota."""
    def disconnect(self) -> None:
        """Stop using this client (held buffers stay valid)."""

def connect(store_socket_name: str, num_retries: int = ...) -> PlasmaClient:
    """Connect to the store at ``store_socket_name``."""

def start_plasma_store(plasma_store_memory: int, use_valgrind: bool = ...,
                       use_profiler: bool = ..., plasma_directory: Optional[str] = ...,
                       use_hugepages: bool = ..., external_store: Optional[str] = ...
                       ) -> ContextManager[Tuple[str, subprocess.Popen]]:
    """Start this package's store; yields ``(socket_name, process)``."""
