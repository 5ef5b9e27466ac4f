"""The package's commands: ``plasma-store`` and ``tensor-ipc``, run in this
process from the Rust libraries (``python -m tensor_ipc._cli plasma-store ...``
does the same)."""

import os
import signal
import sys

from tensor_ipc import _native


def plasma_store():
    """``plasma-store [flags]``: run a Plasma store until SIGTERM or SIGINT
    (the flags of the Rust binary: ``plasma-store --help``)."""
    # The store handles SIGINT and SIGTERM itself (closing its socket); Python's
    # own SIGINT handler would raise KeyboardInterrupt on the way out.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _exit(_native.run_plasma_store(["plasma-store"] + sys.argv[1:]))


def tensor_ipc():
    """``tensor-ipc inspect|convert ...``: the tensor-ipc CLI."""
    _exit(_native.run_tensor_ipc(["tensor-ipc"] + sys.argv[1:]))


def _exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    # The store's threads are Rust threads; leave without interpreter shutdown,
    # as the Rust binary does.
    os._exit(code)


if __name__ == "__main__":
    commands = {"plasma-store": plasma_store, "tensor-ipc": tensor_ipc}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.stderr.write("usage: python -m tensor_ipc._cli plasma-store|tensor-ipc [args]\n")
        sys.exit(2)
    command = commands[sys.argv.pop(1)]
    command()
