"""pytest plugin: make pyarrow 11's ``plasma.start_plasma_store`` launch the
store named by ``$PLASMA_STORE_EXECUTABLE`` instead of the wheel's bundled
``plasma-store-server``.

Load it with ``-p plasma_store_override`` (its folder on ``PYTHONPATH``). It
keeps the original's behaviour: same command line (``-s SOCK -m BYTES [-d DIR]
[-h] [-e ENDPOINT]``), a temp dir holding ``plasma.sock``, the 0.1 s start-up
check, the ``(socket, proc)`` yield, kill on exit and temp-dir removal, and the
DeprecationWarning that ``test_plasma_deprecated`` expects.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings

import pyarrow.plasma as plasma


@contextlib.contextmanager
def start_plasma_store(plasma_store_memory, use_valgrind=False,
                       use_profiler=False, plasma_directory=None,
                       use_hugepages=False, external_store=None):
    warnings.warn(
        "Plasma is deprecated since Arrow 10.0.0. It will be removed in "
        "12.0.0 or so.",
        DeprecationWarning)
    executable = os.environ["PLASMA_STORE_EXECUTABLE"]
    tmpdir = tempfile.mkdtemp(prefix='test_plasma-')
    proc = None
    try:
        sock = os.path.join(tmpdir, 'plasma.sock')
        command = [executable, "-s", sock, "-m", str(plasma_store_memory)]
        if plasma_directory:
            command += ["-d", plasma_directory]
        if use_hugepages:
            command += ["-h"]
        if external_store is not None:
            command += ["-e", external_store]
        proc = subprocess.Popen(command)
        time.sleep(0.1)
        rc = proc.poll()
        if rc is not None:
            raise RuntimeError(
                "plasma_store exited unexpectedly with code %d" % (rc,))
        yield sock, proc
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        shutil.rmtree(tmpdir)


if os.environ.get("PLASMA_STORE_EXECUTABLE"):
    plasma.start_plasma_store = start_plasma_store
