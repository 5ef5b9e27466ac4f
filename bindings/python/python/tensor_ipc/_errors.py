"""The exceptions of tensor_ipc.plasma (defined here, re-exported there).

They derive from ``pyarrow.lib.ArrowException`` when pyarrow is installed, as
``pyarrow.plasma``'s did, so code that catches ``pa.lib.ArrowException`` keeps
working; from ``Exception`` otherwise. Connection and timeout errors are also
``ConnectionError`` / ``TimeoutError`` (both ``OSError``), as pyarrow's
``ArrowIOError`` was an ``IOError``. Messages are the Rust client's.
"""

import os

_Base = Exception
if not os.environ.get("TENSOR_IPC_NO_PYARROW"):
    try:
        from pyarrow.lib import ArrowException as _Base  # noqa: F811
    except ImportError:  # pragma: no cover - depends on the environment
        pass


class PlasmaError(_Base):
    """Base class of every error of the Plasma client."""


class PlasmaObjectExists(PlasmaError):
    """An object with this id already exists in the store."""


class PlasmaObjectNotFound(PlasmaError):
    """The object does not exist in the store (or is not sealed, or not
    created by this client where that is required)."""


class PlasmaStoreFull(PlasmaError):
    """The object does not fit in the store, even after evicting unused
    objects (or a memory quota was refused)."""


class PlasmaObjectNotSealed(PlasmaError):
    """The object is not sealed."""


class PlasmaObjectInUse(PlasmaError):
    """The object is in use and the request needs it unused."""


class PlasmaConnectionError(PlasmaError, ConnectionError):
    """The store could not be reached, closed the connection, or died; or
    the client was disconnected."""


class PlasmaTimeoutError(PlasmaError, TimeoutError):
    """The store did not answer within the client's request timeout."""


class PlasmaProtocolError(PlasmaError):
    """The store sent a reply that could not be decoded or made no sense."""


class PlasmaIOError(PlasmaError, OSError):
    """A local system call (mmap, socketpair) failed."""


for _cls in (PlasmaError, PlasmaObjectExists, PlasmaObjectNotFound,
             PlasmaStoreFull, PlasmaObjectNotSealed, PlasmaObjectInUse,
             PlasmaConnectionError, PlasmaTimeoutError, PlasmaProtocolError,
             PlasmaIOError):
    _cls.__module__ = "tensor_ipc.plasma"
del _cls
