"""Fixtures and peers of the tensor_ipc tests.

Peers (found through environment variables that ``.ci/python.sh`` exports,
else at their default places under the repository's ``target/``):

* ``PLASMA_STORE_ORIGINAL``: Arrow 11's ``plasma-store-server`` (pyarrow 11 wheel);
* ``PLASMA_PYTHON11``: a Python with pyarrow 11.0.0 (its ``pyarrow.plasma``);
* ``TENSOR_IPC_SEED_CPP``: the seed's C++ producer built against libplasma 11;
* ``TENSOR_IPC_RUST_BIN``: the directory of the Rust binaries (``tensor-ipc``,
  ``examples/seed_producer``, ``examples/seed_consumer``).

A missing peer skips its tests loudly, and fails them when ``CI`` is set.
Tests that need pyarrow are marked ``needs_pyarrow`` (the numpy 1.26 run,
which has no pyarrow, deselects them).
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TARGET = os.path.join(ROOT, "target")
UNDER_CI = bool(os.environ.get("CI"))

def pytest_configure(config):
    config.addinivalue_line("markers", "needs_pyarrow: the test needs pyarrow")
    # The warning pyarrow.plasma gave (and tensor_ipc.plasma keeps); tested where it matters.
    config.addinivalue_line("filterwarnings", "ignore:Plasma:DeprecationWarning")


def missing(what):
    """Fail under CI, skip (loudly, and recorded in target/peer-skips.log, which the test
    command lists at its end) otherwise."""
    message = "peer missing: %s" % what
    if UNDER_CI:
        pytest.fail(message + " (CI is set: missing peers fail)")
    try:
        with open(os.path.join(TARGET, "peer-skips.log"), "a") as log:
            log.write("a Python package cross-check: %s\n" % message)
    except OSError:
        pass
    pytest.skip(message)


def peer(var, default):
    """The path of a peer program: ``$var``, else ``default`` under target/."""
    path = os.environ.get(var) or os.path.join(TARGET, default)
    if not os.path.exists(path):
        missing("%s (%s); run .ci/python.sh to install the peers" % (var, path))
    return path


@pytest.fixture(scope="session")
def original_store_exe():
    return peer("PLASMA_STORE_ORIGINAL",
                "venv-pyarrow11/lib/python3.11/site-packages/pyarrow/plasma-store-server")


@pytest.fixture(scope="session")
def python11():
    return peer("PLASMA_PYTHON11", "venv-pyarrow11/bin/python")


@pytest.fixture(scope="session")
def seed_cpp():
    return peer("TENSOR_IPC_SEED_CPP", "seed-cpp/seed_producer")


@pytest.fixture(scope="session")
def rust_bin():
    directory = os.environ.get("TENSOR_IPC_RUST_BIN") or os.path.join(TARGET, "release")
    for name in ("tensor-ipc", "examples/seed_producer", "examples/seed_consumer"):
        if not os.path.exists(os.path.join(directory, name)):
            missing("the Rust binary %s in %s (cargo build --release --bin tensor-ipc "
                    "--example seed_producer --example seed_consumer)" % (name, directory))
    return directory


OUR_STORE = [sys.executable, "-m", "tensor_ipc._cli", "plasma-store"]


@contextlib.contextmanager
def running_store(command, memory=100_000_000, extra=()):
    """Runs a store (``command`` then ``-s SOCKET -m MEMORY``) until the block ends."""
    tmp = tempfile.mkdtemp(prefix="tensor-ipc-test-")
    sock = os.path.join(tmp, "plasma.sock")
    proc = subprocess.Popen(list(command) + ["-s", sock, "-m", str(memory)] + list(extra),
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(sock):
            assert proc.poll() is None, "the store exited with %s" % proc.returncode
            assert time.monotonic() < deadline, "the store did not start"
            time.sleep(0.01)
        yield sock, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


@pytest.fixture
def store():
    """Our store (the package's plasma-store), 100 MB: ``(socket, process)``."""
    with running_store(OUR_STORE) as s:
        yield s


@pytest.fixture
def original_store(original_store_exe):
    """Arrow 11's plasma-store-server, 100 MB: ``(socket, process)``."""
    with running_store([original_store_exe]) as s:
        yield s


@pytest.fixture(params=["ours", "original"])
def any_store(request):
    """Each store in turn: ``(kind, socket, process)``."""
    if request.param == "ours":
        with running_store(OUR_STORE) as (sock, proc):
            yield "ours", sock, proc
    else:
        exe = request.getfixturevalue("original_store_exe")
        with running_store([exe]) as (sock, proc):
            yield "original", sock, proc


@pytest.fixture
def client(store):
    import tensor_ipc.plasma as plasma

    c = plasma.connect(store[0])
    yield c
    c.disconnect()


def run_python(code, *args, env=None, timeout=60, python=None):
    """Runs ``code`` in a new interpreter; returns the completed process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([python or sys.executable, "-c", code] + list(args),
                          capture_output=True, text=True, env=full_env, timeout=timeout)


def has_pyarrow():
    if os.environ.get("TENSOR_IPC_NO_PYARROW"):
        return False
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True
